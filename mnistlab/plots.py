"""Plotly figures for every page: one builder per kind of figure, each returning a `go.Figure`.

Here: the lesson's `view_classify`, counts and histograms, the confusion matrix, and `enlarged` for a
projector. Figures of images are `image_plots`'s, the shared look `plot_style`'s; both are named
here too, so a page finds every figure as `plots.<name>`.

Builders take tensors or arrays and never touch Streamlit. Histograms are binned here with numpy,
so a layer with a million weights sends a few dozen bars to the browser, not a million numbers.
"""

from __future__ import annotations

import copy
import functools
import math
import re
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from mnistlab.dataset import MNIST, Dataset
from mnistlab.image_plots import digit_grid, pixel_values, pixel_window, weight_images  # noqa: F401
from mnistlab.plot_style import (  # noqa: F401 - the shared look, where callers find it
    BAR,
    DIGITS,
    DIVERGING,
    FONT_SIZE,
    GRAY,
    LABEL_SIZE,
    PREDICTED,
    RUN_COLORS,
    TEXT,
    TRUE,
    _as_image,
    _colored,
    _image_axes,
    _layout,
    _np,
    _per_unit,
    _tile,
    png_data_url,
)

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
    # The probabilities at the body text's size however thin the bars: Plotly would shrink them to a
    # bar's thickness, 11 px in a Draw or Mistakes figure, too small for a projector.
    fig.add_trace(go.Bar(x=ps, y=list(classes), orientation="h", marker_color=colors,
                         text=[f"{p:.2f}" for p in ps], textposition="outside", cliponaxis=False,
                         textfont_size=FONT_SIZE, constraintext="none",
                         hovertemplate="class %{y}: %{x:.4f}<extra></extra>"), row=1, col=2)
    _image_axes(fig, row=1, col=1)
    fig.update_yaxes(scaleanchor="x", row=1, col=1)
    fig.update_xaxes(range=[0, 1.18], tickvals=[0, 0.25, 0.5, 0.75, 1], row=1, col=2)
    # No axis title: in a narrow figure it would be drawn over the image; the digits say "class".
    fig.update_yaxes(type="category", row=1, col=2)
    _layout(fig, title, height)
    fig.update_yaxes(tickfont_size=13 if words else FONT_SIZE, row=1, col=2)  # a digit names its bar
    return fig


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
