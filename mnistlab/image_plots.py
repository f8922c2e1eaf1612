"""Figures of images: a batch of digits in a grid, one image's pixel values, and the first layer's
weights as images of the input's shape. Style and PNG tiles from `plot_style`."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from mnistlab.dataset import MNIST, Dataset
from mnistlab.plot_style import (
    DIGIT_LABEL_SIZE,
    DIVERGING,
    FONT_SIZE,
    GRAY,
    LABEL_SIZE,
    PREDICTED,
    TEXT,
    TRUE,
    _as_image,
    _image_axes,
    _layout,
    _np,
    _per_unit,
    _tile,
    from_dicts,
    image_axes,
    panel_axes,
    png_data_url,
    styled,
    subplot_layout,
)


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
    data = [{"type": "image", "source": png_data_url(np.dstack([gray, alpha])), "hoverinfo": "skip"}]
    if labels is not None:
        labels = _np(labels).astype(int).reshape(-1)
        preds = None if predictions is None else _np(predictions).astype(int).reshape(-1)
        # One text trace rather than an annotation per digit: Plotly builds 64 annotations slowly.
        rc = [divmod(i, columns) for i in range(len(labels))]
        arrow = "<br>→ " if words else "→"  # a true and a predicted name: one above the other
        text = [names[y] if preds is None else f"{names[y]}{arrow}{names[preds[i]]}"
                for i, y in enumerate(labels)]
        colors = TEXT if preds is None else [TRUE if p == y else PREDICTED for p, y in zip(preds, labels)]
        data.append({"type": "scatter", "x": [c * (w + gap) + (w - 1) / 2 for _, c in rc],
                     "y": [r * (h + gap) - 1 for r, _ in rc], "text": text, "mode": "text",
                     "textposition": "top center", "hoverinfo": "skip",
                     "textfont": {"size": LABEL_SIZE if words else DIGIT_LABEL_SIZE, "color": colors}})
    layout = {"xaxis": {}, "yaxis": {}}
    image_axes(layout["xaxis"], layout["yaxis"])
    rows = math.ceil(n / columns)
    layout["yaxis"]["range"] = [rows * (h + gap) - gap - 0.5, -gap]
    height = height or min(540 if not words else 720, max(220, (78 if not words else 100) * rows + 70))
    return from_dicts(data, styled(layout, title, height))


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
    scale = {"colorscale": GRAY, "zmin": min(lo, 0.0), "zmax": max(hi, lo + 1e-9), "showscale": False,
             "hovertemplate": f"row %{{y}}, col %{{x}}: %{{z:.{max(decimals, 2)}f}}<extra></extra>"}
    titles = (f"{name} {dataset.height} × {dataset.width}", f"rows {r0}–{rows[-1]}, cols {c0}–{cols[-1]}")
    if beside:
        layout = subplot_layout(titles, 0.08, column_widths=(0.3, 0.7))
    else:
        layout = subplot_layout(titles, 0.08, rows=2, row_heights=(0.22, 0.78))
    data = [{"type": "heatmap", "z": img, **scale, **panel_axes(1)},
            {"type": "heatmap", "z": img[r0:r0 + window, c0:c0 + window], "x": cols, "y": rows,
             # "-1", not "-1.0": the background's many numbers crowd a cell less
             "texttemplate": f"%{{z:.{decimals}~f}}", "textfont": {"size": FONT_SIZE}, **scale,
             **panel_axes(2)}]
    layout["shapes"] = [{"type": "rect", "x0": c0 - 0.5, "x1": cols[-1] + 0.5, "y0": r0 - 0.5,
                         "y1": rows[-1] + 0.5, "xref": "x", "yref": "y",
                         "line": {"color": PREDICTED, "width": 3}}]
    for x, y in (("xaxis", "yaxis"), ("xaxis2", "yaxis2")):
        image_axes(layout[x], layout[y], anchor=layout[y]["anchor"])
    step = 1 if window <= 10 else 2
    layout["xaxis2"].update(showticklabels=True, dtick=step)
    layout["yaxis2"].update(showticklabels=True, dtick=step)
    return from_dicts(data, styled(layout, title, height))


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
