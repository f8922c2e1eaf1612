"""Plotly figures for every page: one builder per kind of figure, each returning a `go.Figure`.

Builders take tensors or arrays and never touch Streamlit. Histograms are binned here with numpy,
so a layer with a million weights sends a few dozen bars to the browser, not a million numbers.
"""

from __future__ import annotations

import base64
import copy
import functools
import io
import math
import re
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from PIL import Image
from plotly.subplots import make_subplots

from mnistlab.dataset import MNIST, Dataset

FONT_SIZE = 16  # readable from the back of a classroom
TEXT = "#111111"
BAR = "#4c78a8"
PREDICTED = "#e45756"
TRUE = "#2ca02c"
GRAY = [[0.0, "black"], [1.0, "white"]]  # digits as MNIST stores them: white ink on black
DIGITS = MNIST.classes  # MNIST's class names, the default wherever classes are named
LABEL_SIZE = 11  # class names longer than a digit, above a tile of an image's size
DIVERGING = "RdBu"


def _np(x) -> np.ndarray:
    """A torch tensor, numpy array or sequence as a float numpy array on the CPU."""
    if hasattr(x, "detach"):
        x = x.detach().to("cpu").float().numpy()
    return np.asarray(x, dtype=np.float64)


def _as_image(image, dataset: Dataset = MNIST) -> np.ndarray:
    """(height, width) of `dataset`'s images, from (1, H, W), (1, 1, H, W) or a flattened image."""
    a = _np(image)
    if a.size != dataset.inputs:
        raise ValueError(f"{dataset.title}'s images have {dataset.inputs} pixels; got shape {a.shape}.")
    return a.reshape(dataset.height, dataset.width)


def _layout(fig: go.Figure, title: str | None, height: int) -> go.Figure:
    """Shared look: large dark text throughout (Streamlit's chart theme would make it small and grey)."""
    fig.update_layout(title=dict(text=title, font=dict(size=FONT_SIZE + 2, color=TEXT)) if title else None,
                      height=height, font=dict(size=FONT_SIZE, color=TEXT),
                      margin=dict(l=10, r=10, t=70 if title else 40, b=10), showlegend=False)
    axis_fonts = dict(tickfont=dict(size=FONT_SIZE - 2, color=TEXT),
                      title_font=dict(size=FONT_SIZE, color=TEXT))
    fig.update_xaxes(**axis_fonts)
    fig.update_yaxes(**axis_fonts)
    # Subplot titles and digit labels; a label already coloured (right/wrong) keeps its colour.
    # Rewritten as plain dicts in one go: update_annotations walks Plotly's objects, ~7 ms a label.
    notes = [a.to_plotly_json() for a in fig.layout.annotations]
    for a in notes:
        a["font"] = {"color": TEXT, **a.get("font", {}), "size": FONT_SIZE}
    fig.layout.annotations = notes
    return fig


def _image_axes(fig: go.Figure, row=None, col=None) -> None:
    """Square pixels, row 0 at the top, no tick clutter."""
    kw = {} if row is None else {"row": row, "col": col}
    fig.update_xaxes(showticklabels=False, ticks="", showgrid=False, zeroline=False, constrain="domain", **kw)
    fig.update_yaxes(showticklabels=False, ticks="", showgrid=False, zeroline=False, autorange="reversed",
                     scaleanchor="x" if row is None else None, constrain="domain", constraintoward="top",
                     **kw)


def _colored(text: str, color: str) -> str:
    return f"<span style='color:{color}'><b>{text}</b></span>"


# -- the lesson's view_classify -------------------------------------------------------------------

def view_classify(image, probabilities, label: int | None = None, title: str | None = None,
                  height: int = 380, classes: Sequence[str] | None = None,
                  dataset: Dataset = MNIST) -> go.Figure:
    """The lesson's `view_classify`: the image beside its class-probability bars, as one figure.

    The most probable class is drawn in red; with `label` given, the true class is drawn in green
    (so a correct prediction is one green bar). The image has `dataset`'s shape; `classes` names the
    bars (by default `dataset`'s classes).
    """
    img = _as_image(image, dataset)
    classes = dataset.classes if classes is None else classes
    ps = _np(probabilities).reshape(-1)
    classes = tuple(map(str, classes))
    if ps.size != len(classes):
        raise ValueError(f"view_classify needs {len(classes)} class probabilities; got {ps.size}.")
    predicted = int(np.argmax(ps))
    colors = [BAR] * len(classes)
    colors[predicted] = PREDICTED
    if label is not None:
        colors[int(label)] = TRUE
    name = classes[predicted]
    image_title = "image" if label is None else f"image (label {classes[int(label)]})"
    lead = "class probability: " if max(map(len, classes)) <= 3 else ""  # class names: no room for it
    bars_title = f"{lead}{_colored(f'predicted {name}', PREDICTED)}"
    if label is not None and int(label) == predicted:
        bars_title = f"{lead}{_colored(f'predicted {name}, correct', TRUE)}"
    elif label is not None:
        bars_title += f", {_colored(f'true {classes[int(label)]}', TRUE)}"
    # The figure Plotly built and checked once for this title, height and classes, with this call's
    # numbers and words put in: building it anew took ~25 ms (a Draw page shows one per network).
    fig = copy.deepcopy(_view_classify_template(title, height, classes, img.shape))
    heatmap, bars = fig["data"]
    heatmap["z"] = img
    bars.update(x=ps, text=[f"{p:.2f}" for p in ps], marker={**bars["marker"], "color": colors})
    fig["layout"]["annotations"][0]["text"] = image_title
    fig["layout"]["annotations"][1]["text"] = bars_title
    return go.Figure(fig, _validate=False)


@functools.lru_cache(maxsize=64)
def _view_classify_template(title: str | None, height: int, classes: tuple[str, ...] = DIGITS,
                            shape: tuple[int, int] = MNIST.image_shape[1:]) -> dict:
    n = len(classes)
    return _view_classify_figure(np.zeros(shape), np.full(n, 1 / n), [BAR] * n, "image",
                                 "class probability", title, height, classes).to_dict()


def _view_classify_figure(img: np.ndarray, ps: np.ndarray, colors: list[str], image_title: str,
                          bars_title: str, title: str | None, height: int,
                          classes: Sequence[str] = DIGITS) -> go.Figure:
    """view_classify's figure, built through Plotly's checks (tests compare the quick one with it)."""
    words = max(len(str(c)) for c in classes) > 3  # "Ankle boot": room for the names between the two
    fig = make_subplots(rows=1, cols=2, column_widths=[0.42, 0.58], horizontal_spacing=0.2 if words else 0.08,
                        subplot_titles=(image_title, bars_title))
    fig.add_trace(go.Heatmap(z=img, colorscale=GRAY, showscale=False,
                             hovertemplate="row %{y}, col %{x}: %{z:.2f}<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Bar(x=ps, y=list(classes), orientation="h", marker_color=colors,
                         text=[f"{p:.2f}" for p in ps], textposition="outside", cliponaxis=False,
                         hovertemplate="class %{y}: %{x:.4f}<extra></extra>"), row=1, col=2)
    _image_axes(fig, row=1, col=1)
    fig.update_yaxes(scaleanchor="x", row=1, col=1)
    fig.update_xaxes(range=[0, 1.18], tickvals=[0, 0.25, 0.5, 0.75, 1], row=1, col=2)
    # No axis title: in a narrow figure it would be drawn over the image; the digits say "class".
    fig.update_yaxes(type="category", row=1, col=2)
    _layout(fig, title, height)
    if words:
        fig.update_yaxes(tickfont_size=13, row=1, col=2)
    return fig


# -- images -------------------------------------------------------------------------------------

def _tile(images: np.ndarray, columns: int, gap: int) -> np.ndarray:
    """(N, H, W) laid out `columns` wide, with NaN gaps (drawn as background) between tiles."""
    n, h, w = images.shape
    rows = math.ceil(n / columns)
    # float32: Plotly sends it as compact binary; float64 with NaN falls back to slow, big JSON lists.
    out = np.full((rows * (h + gap) - gap, columns * (w + gap) - gap), np.nan, dtype=np.float32)
    for i, im in enumerate(images):
        r, c = divmod(i, columns)
        out[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = im
    return out


def png_data_url(image: np.ndarray) -> str:
    """A uint8 image, (H, W) gray or (H, W, 2) gray + alpha, as a PNG data URL.

    It travels inside the page (no file for the browser to fetch later) and is small: a batch's grid
    of digits is ~40 kB as PNG, against ~900 kB as a heatmap's numbers.
    """
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def digit_grid(images, labels=None, columns: int | None = None, title: str | None = None,
               predictions=None, height: int | None = None, classes: Sequence[str] | None = None,
               dataset: Dataset = MNIST) -> go.Figure:
    """A batch of `dataset`'s images in a grid, each with its label above it (and a prediction, when
    given), named by `classes` (by default the data set's: "Ankle boot", not 9).

    By default the grid is about twice as wide as tall, the shape of a page's main column. The tiles
    are one PNG, gray from the batch's lowest value (black) to its highest (white), as a heatmap
    would draw them; the page's pixel-value figures show the numbers.
    """
    h, w = dataset.height, dataset.width
    imgs = _np(images).reshape(-1, h, w)
    classes = dataset.classes if classes is None else classes
    n = len(imgs)
    names = [str(c) for c in classes]
    words = max(map(len, names)) > 3  # "Ankle boot", not 9: fewer, wider columns and smaller labels
    columns = max(1, min(columns or math.ceil(math.sqrt((1.2 if words else 2) * n)), n))
    gap = 16 if not (words and predictions is not None) else 30  # room for the label(s) above each tile
    z = _tile(imgs, columns, gap)
    lo, hi = float(np.nanmin(z)), float(np.nanmax(z))
    gray = np.round((np.nan_to_num(z, nan=lo) - lo) / max(hi - lo, 1e-9) * 255).astype(np.uint8)
    alpha = np.where(np.isnan(z), 0, 255).astype(np.uint8)  # the gaps show the background
    fig = go.Figure(go.Image(source=png_data_url(np.dstack([gray, alpha])), hoverinfo="skip"))
    if labels is not None:
        labels = _np(labels).astype(int).reshape(-1)
        preds = None if predictions is None else _np(predictions).astype(int).reshape(-1)
        # One text trace rather than an annotation per digit: Plotly builds 64 annotations slowly.
        rc = [divmod(i, columns) for i in range(len(labels))]
        arrow = "<br>→ " if words else "→"  # a true and a predicted name: one above the other
        text = [names[y] if preds is None else f"{names[y]}{arrow}{names[preds[i]]}"
                for i, y in enumerate(labels)]
        colors = TEXT if preds is None else [TRUE if p == y else PREDICTED for p, y in zip(preds, labels)]
        fig.add_trace(go.Scatter(x=[c * (w + gap) + (w - 1) / 2 for _, c in rc],
                                 y=[r * (h + gap) - 1 for r, _ in rc], text=text, mode="text",
                                 textposition="top center", hoverinfo="skip",
                                 textfont=dict(size=LABEL_SIZE if words else FONT_SIZE, color=colors)))
    _image_axes(fig)
    rows = math.ceil(n / columns)
    fig.update_yaxes(range=[rows * (h + gap) - gap - 0.5, -gap])
    return _layout(fig, title, height=height or min(540 if not words else 720,
                                                    max(220, (78 if not words else 100) * rows + 70)))


def pixel_window(image, size: int = 14, dataset: Dataset = MNIST) -> tuple[int, int]:
    """The (row, column) of the top-left pixel of the `size`×`size` window whose values vary most:
    ink and background both, across the stroke's edge. Of equal ones, the nearest the centre."""
    img = _as_image(image, dataset)
    h, w = img.shape
    if not 1 <= size <= min(h, w):
        raise ValueError(f"A window of {dataset.title}'s images is 1 to {min(h, w)} pixels wide; got {size}.")
    spread = np.lib.stride_tricks.sliding_window_view(img, (size, size)).var(axis=(2, 3))
    r, c = np.indices(spread.shape)
    from_centre = (r + size / 2 - h / 2) ** 2 + (c + size / 2 - w / 2) ** 2
    best = np.lexsort((from_centre.ravel(), -np.round(spread, 9).ravel()))[0]
    return divmod(int(best), spread.shape[1])


def pixel_values(image, decimals: int = 0, title: str | None = None, height: int = 520,
                 window: int = 14, beside: bool = True, name: str = "all",
                 dataset: Dataset = MNIST) -> go.Figure:
    """One of `dataset`'s images small, its window of `window`×`window` pixels across the stroke
    (`pixel_window`) outlined, and beside it (or, not `beside`, below it: a narrow column) that window
    enlarged with each pixel's value written in its cell at the body text's size: all of an image's
    numbers (784 for MNIST) that size do not fit a screen. Hovering over the whole image gives any
    pixel. `name` names the whole image in its title."""
    img = _as_image(image, dataset)
    r0, c0 = pixel_window(img, window, dataset)
    rows, cols = list(range(r0, r0 + window)), list(range(c0, c0 + window))
    lo, hi = float(np.min(img)), float(np.max(img))
    scale = dict(colorscale=GRAY, zmin=min(lo, 0.0), zmax=max(hi, lo + 1e-9), showscale=False,
                 hovertemplate=f"row %{{y}}, col %{{x}}: %{{z:.{max(decimals, 2)}f}}<extra></extra>")
    titles = (f"{name} {dataset.height} × {dataset.width}", f"rows {r0}–{rows[-1]}, cols {c0}–{cols[-1]}")
    if beside:
        fig = make_subplots(rows=1, cols=2, column_widths=[0.3, 0.7], horizontal_spacing=0.08,
                            subplot_titles=titles)
        where = [dict(row=1, col=1), dict(row=1, col=2)]
    else:
        fig = make_subplots(rows=2, cols=1, row_heights=[0.22, 0.78], vertical_spacing=0.08,
                            subplot_titles=titles)
        where = [dict(row=1, col=1), dict(row=2, col=1)]
    fig.add_trace(go.Heatmap(z=img, **scale), **where[0])
    fig.add_shape(type="rect", x0=c0 - 0.5, x1=cols[-1] + 0.5, y0=r0 - 0.5, y1=rows[-1] + 0.5,
                  line=dict(color=PREDICTED, width=3), **where[0])
    fig.add_trace(go.Heatmap(z=img[r0:r0 + window, c0:c0 + window], x=cols, y=rows,
                             # "-1", not "-1.0": the background's many numbers crowd a cell less
                             texttemplate=f"%{{z:.{decimals}~f}}", textfont=dict(size=FONT_SIZE), **scale),
                  **where[1])
    for at, x in zip(where, ("x", "x2")):
        _image_axes(fig, **at)
        fig.update_yaxes(scaleanchor=x, **at)
    step = 1 if window <= 10 else 2
    fig.update_xaxes(showticklabels=True, dtick=step, **where[1])
    fig.update_yaxes(showticklabels=True, dtick=step, **where[1])
    return _layout(fig, title, height)


def weight_images(weight, max_units: int = 64, columns: int | None = None, title: str | None = None,
                  shared_scale: bool = False, dataset: Dataset = MNIST) -> go.Figure:
    """The first layer's weights as images of `dataset`'s shape, one per hidden unit (the first
    `max_units`): each unit's weight on each pixel where that pixel is.

    Blue is positive, red negative, white zero. By default each unit has its own symmetric scale
    (its largest |weight| is full colour), so a unit with small weights still shows its pattern
    beside strong ones; `shared_scale` puts every unit on one scale, to compare their sizes.
    Hovering shows the weight itself either way.
    """
    w = _np(weight)
    if w.ndim != 2 or w.shape[1] != dataset.inputs:
        raise ValueError(f"First-layer weights are (hidden, {dataset.inputs}); got shape {w.shape}.")
    w = w[:max_units].reshape(-1, dataset.height, dataset.width)
    columns = max(1, min(columns or math.ceil(math.sqrt(2 * len(w))), len(w)))
    actual = _tile(w, columns, gap=3)
    rows = math.ceil(len(w) / columns)
    if shared_scale:
        bound = float(np.nanmax(np.abs(w))) if np.isfinite(w).any() else 1.0
        trace = go.Heatmap(z=actual, colorscale=DIVERGING, zmid=0, zmin=-bound, zmax=bound, hoverongaps=False,
                           colorbar=dict(thickness=14), hovertemplate="%{z:.3f}<extra></extra>")
    else:
        z = _tile(_per_unit(w), columns, gap=3)
        trace = go.Heatmap(z=z, customdata=actual, colorscale=DIVERGING, zmid=0, zmin=-1, zmax=1,
                           hoverongaps=False, hovertemplate="%{customdata:.3f}<extra></extra>",
                           colorbar=dict(thickness=14, tickvals=[-1, 0, 1],
                                         ticktext=["−max", "0", "+max"], title=dict(text="per unit")))
    fig = go.Figure(trace)
    _image_axes(fig)
    return _layout(fig, title, height=min(560, max(240, 90 * rows + 60)))


def _per_unit(w: np.ndarray) -> np.ndarray:
    """Each (H, W) unit divided by its own largest |weight|: -1 to 1, as float32."""
    bound = np.nanmax(np.abs(np.where(np.isfinite(w), w, np.nan)), axis=(1, 2), keepdims=True) \
        if np.isfinite(w).any() else np.ones((len(w), 1, 1))
    bound = np.where(np.isfinite(bound) & (bound > 0), bound, 1.0)
    return (w / bound).astype(np.float32)


# -- counts and distributions -------------------------------------------------------------------

def class_counts(counts: Sequence[int], title: str | None = None, height: int = 360,
                 classes: Sequence[str] = DIGITS) -> go.Figure:
    """How many images of each class (0 to 9 for digits)."""
    counts = [int(c) for c in counts]
    fig = go.Figure(go.Bar(x=[str(c) for c in classes], y=counts, marker_color=BAR,
                           text=[f"{c:,}" for c in counts], textposition="outside", cliponaxis=False,
                           hovertemplate="%{x}: %{y:,}<extra></extra>"))
    fig.update_xaxes(type="category", title_text="digit" if tuple(classes) == DIGITS else "class")
    fig.update_yaxes(title_text="images", range=[0, max(counts + [1]) * 1.15])
    return _layout(fig, title, height)


def histogram_counts(values, bins: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """(bin centers, counts) of finite values; a constant tensor gives one spike at its value."""
    v = _np(values).reshape(-1)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return np.zeros(0), np.zeros(0, dtype=int)
    lo, hi = float(v.min()), float(v.max())
    if lo == hi:
        return np.array([lo]), np.array([v.size])
    counts, edges = np.histogram(v, bins=bins, range=(lo, hi))
    return (edges[:-1] + edges[1:]) / 2, counts


def _log_counts(fig: go.Figure) -> None:
    """Log-scale count axes ticked at clean powers of ten (1, 10, 100, 1,000, ...) and nothing between."""
    fig.update_yaxes(type="log", dtick=1, tickformat=",d", minor=dict(showgrid=False, ticks=""))


def _panel_grid(names: list[str], columns: int) -> tuple[go.Figure, int, int]:
    """Subplots for named panels, `columns` wide (fewer if there are fewer panels): (fig, rows, columns)."""
    columns = max(1, min(columns, len(names)))
    rows = max(1, math.ceil(len(names) / columns))
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=names, vertical_spacing=min(0.3, 0.5 / rows),
                        horizontal_spacing=0.08)
    return fig, rows, columns


def histograms(panels: Mapping[str, object], columns: int = 2, bins: int = 40, title: str | None = None,
               x_title: str | None = None, panel_height: int = 230, log_y: bool = False) -> go.Figure:
    """One histogram per named tensor, in a grid: e.g. "fc1.weight", "fc1.bias", ... or activations.

    `log_y` keeps small bars visible beside a tall one (e.g. ReLU's spike of zeros).
    """
    names = list(panels)
    fig, rows, columns = _panel_grid(names, columns)
    for i, name in enumerate(names):
        r, c = divmod(i, columns)
        centers, counts = histogram_counts(panels[name], bins)
        width = (centers[1] - centers[0]) if len(centers) > 1 else None
        fig.add_trace(go.Bar(x=centers, y=counts, width=width, marker_color=BAR, marker_line_width=0,
                             name=name, hovertemplate="%{x:.3g}: %{y:,}<extra></extra>"),
                      row=r + 1, col=c + 1)
        if len(centers) == 1:  # a spike: give it a visible width and some room around it
            spread = max(abs(centers[0]) * 0.1, 0.05)
            fig.update_xaxes(range=[centers[0] - spread, centers[0] + spread], row=r + 1, col=c + 1)
            fig.update_traces(width=spread / 10, selector=dict(name=name))
        if x_title and r == rows - 1:
            fig.update_xaxes(title_text=x_title, row=r + 1, col=c + 1)
    if log_y:
        _log_counts(fig)
    fig.update_layout(bargap=0.02)
    return _layout(fig, title, height=panel_height * rows + (70 if title else 40))


# -- training (Train page) --------------------------------------------------------------------------

RUN_COLORS = ["#4c78a8", "#f58518", "#54a24b", "#b279a2", "#e45756", "#72b7b2", "#9d755d", "#bab0ac"]


def confusion_matrix(confusion, title: str | None = None, height: int = 560,
                     classes: Sequence[str] = DIGITS) -> go.Figure:
    """Test images by true class (rows) and predicted class (columns), with every count written in.

    The diagonal (right answers) and the mistakes have their own colour scales, so a handful of
    mistakes still shows beside a thousand right answers.
    """
    counts = _np(confusion).astype(int)
    diagonal = np.where(np.eye(len(counts), dtype=bool), counts, np.nan)
    mistakes = np.where(np.eye(len(counts), dtype=bool), np.nan, counts)
    digits = [str(c) for c in classes]
    hover = "true %{y}, predicted %{x}: %{z:,}<extra></extra>"
    fig = go.Figure([
        go.Heatmap(z=diagonal, x=digits, y=digits, colorscale="Greens", showscale=False, hoverongaps=False,
                   texttemplate="%{z:,}", hovertemplate=hover),
        go.Heatmap(z=mistakes, x=digits, y=digits, colorscale=[[0, "#ffffff"], [1, PREDICTED]], zmin=0,
                   zmax=max(1, np.nanmax(mistakes)), showscale=False, hoverongaps=False,
                   texttemplate="%{z:,}", hovertemplate=hover)])
    fig.update_xaxes(type="category", title_text="predicted", side="top")
    fig.update_yaxes(type="category", title_text="true digit" if tuple(classes) == DIGITS else "true class",
                     autorange="reversed", scaleanchor="x")
    _layout(fig, title, height)
    if max(len(str(c)) for c in classes) > 3:  # names slanted above the columns: room under the title
        fig.update_xaxes(tickangle=-40)
        fig.update_layout(margin=dict(t=160))
    return fig


def histograms_before_after(before: Mapping[str, object], after: Mapping[str, object], columns: int = 2,
                            bins: int = 40, title: str | None = None, panel_height: int = 230) -> go.Figure:
    """Each named tensor's histogram before (grey) and after (blue) training, on shared bins.

    No legend (it would sit on a panel's title): say "before (grey) and after (blue)" in `title`.
    """
    names = list(after)
    fig, rows, columns = _panel_grid(names, columns)
    for i, name in enumerate(names):
        r, c = divmod(i, columns)
        a, b = _np(before[name]).reshape(-1), _np(after[name]).reshape(-1)
        lo, hi = float(min(a.min(), b.min())), float(max(a.max(), b.max()))
        edges = np.linspace(lo, hi if hi > lo else lo + 1e-6, bins + 1)
        centers = (edges[:-1] + edges[1:]) / 2
        for values, label, color in ((a, "before", "#9e9e9e"), (b, "after", BAR)):
            fig.add_trace(go.Bar(x=centers, y=np.histogram(values, bins=edges)[0], width=edges[1] - edges[0],
                                 marker_color=color, opacity=0.65, marker_line_width=0, name=label,
                                 legendgroup=label, showlegend=i == 0,
                                 hovertemplate=f"{label} %{{x:.3g}}: %{{y:,}}<extra></extra>"),
                          row=r + 1, col=c + 1)
    fig.update_layout(barmode="overlay", bargap=0)
    return _layout(fig, title, height=panel_height * rows + (70 if title else 40))  # title names the colours


# -- for a projector --------------------------------------------------------------------------------

def enlarged(figure, size: int, line_chars: int | None = None) -> go.Figure:
    """A copy of `figure` with every text in it (titles, ticks, labels on bars and cells, legend,
    colour bars) at `size` px at least: read from the back of a room, as large as the text beside it.

    With `line_chars`, a title or subplot title longer than that breaks after its first colon (a
    narrow figure would cut it off at its edge), and the top margin makes room for the second line.
    """
    fig = go.Figure(figure)
    fig.update_layout(font_size=size, font_color=TEXT, title_font_size=size + 2, legend_font_size=size)
    fig.update_annotations(font_size=size)
    axis = dict(tickfont=dict(size=size, color=TEXT), title_font_size=size)  # dark: the theme's grey is faint
    fig.update_xaxes(**axis)
    fig.update_yaxes(**axis)
    fig.update_coloraxes(colorbar_tickfont=axis["tickfont"], colorbar_title_font_size=size)
    for trace in fig.data:
        if "textfont" in trace:
            trace.textfont.size = size
        if "colorbar" in trace:
            trace.colorbar.update(tickfont=axis["tickfont"], title_font_size=size)
    if line_chars:
        titles = [fig.layout.title, *fig.layout.annotations]
        broken = [t for t in titles if t.text and len(re.sub("<[^>]+>", "", t.text)) > line_chars
                  and ": " in t.text]
        for t in broken:
            t.text = t.text.replace(": ", ":<br>", 1)
        if broken:
            top = fig.layout.margin.t if fig.layout.margin.t is not None else 80
            fig.update_layout(margin_t=top + round(1.3 * size))
    return fig
