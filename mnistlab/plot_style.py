"""The look every figure shares: large dark text, the colours, square-pixel image axes, and images
sent as PNG tiles (a few kilobytes, where a heatmap's numbers would be hundreds).

Every figure module (`plots`, `image_plots`, `training_plots`, `sweep_plots`, `conv_plots`,
`network_diagram`) takes its style from here, so a projector's larger text is one change.
"""

from __future__ import annotations

import base64
import copy
import functools
import io
import math

import numpy as np
import plotly.graph_objects as go
from PIL import Image
from plotly.colors import diverging, unlabel_rgb

from mnistlab.dataset import MNIST, Dataset

FONT_SIZE = 16  # readable from the back of a classroom
TEXT = "#111111"
BAR = "#4c78a8"
PREDICTED = "#e45756"
TRUE = "#2ca02c"
GRAY = [[0.0, "black"], [1.0, "white"]]  # digits as MNIST stores them: white ink on black
DIGITS = MNIST.classes  # MNIST's class names, the default wherever classes are named
LABEL_SIZE = 11  # class names longer than a digit, above a tile of an image's size
DIGIT_LABEL_SIZE = 20  # a digit (or "true→predicted") above its tile: the tiles are small, so larger
DIVERGING = "RdBu"
RUN_COLORS = ["#4c78a8", "#f58518", "#54a24b", "#b279a2", "#e45756", "#72b7b2", "#9d755d", "#bab0ac"]


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


# -- figures as plain dicts -------------------------------------------------------------------------
# Plotly's object API validates at every step: make_subplots, add_trace(row=, col=), update_xaxes and
# _layout above take 50-100 ms for a figure of two or three panels. A figure redrawn twice a second
# while a network trains (the Train page's live view) is built as Plotly's own dicts instead and made
# a Figure once, unchecked: ~2 ms. tests/test_plots.py checks each such figure against Plotly's
# validation, so a misspelt property still fails there.

def subplot_layout(titles: tuple[str, ...], spacing: float = 0.2, rows: int = 1, **grid) -> dict:
    """The layout of `make_subplots` with `rows` rows (by default one) of panels titled `titles` in
    order, their axes ("xaxis", "xaxis2", ...) as dicts to fill in; `grid` is more of make_subplots'
    arguments (column_widths, ...). The layout of a grid is made once: Plotly takes 10-30 ms for it.
    Panel n's traces (from 1, row by row) use `panel_axes(n)`."""
    layout = copy.deepcopy(_subplot_layout(len(titles), spacing, rows, tuple(sorted(grid.items()))))
    for note, text in zip(layout["annotations"], titles):
        note["text"] = text
    return layout


@functools.lru_cache(maxsize=32)
def _subplot_layout(panels: int, spacing: float, rows: int, grid: tuple) -> dict:
    from plotly.subplots import make_subplots

    kwargs = {k: list(v) if isinstance(v, tuple) else v for k, v in grid}
    spacing_kw = "horizontal_spacing" if rows == 1 else "vertical_spacing"
    return make_subplots(rows=rows, cols=panels // rows, subplot_titles=[f"{n}" for n in range(panels)],
                         **{spacing_kw: spacing}, **kwargs).layout.to_plotly_json()


def panel_axes(col: int) -> dict:
    """A trace's axes in panel `col` (from 1) of a `subplot_layout`."""
    return {"xaxis": "x" if col == 1 else f"x{col}", "yaxis": "y" if col == 1 else f"y{col}"}


def axes_of(layout: dict, which: str) -> list[dict]:
    """Every x (`which` "x") or y axis of a layout dict, as update_xaxes/update_yaxes would select."""
    return [v for k, v in layout.items() if k.startswith(f"{which}axis")]


def styled(layout: dict, title: str | None, height: int) -> dict:
    """`_layout`'s shared look, on a layout dict."""
    layout.update(title={"text": title, "font": {"size": FONT_SIZE + 2, "color": TEXT}} if title else {},
                  height=height, font={"size": FONT_SIZE, "color": TEXT},
                  margin={"l": 10, "r": 10, "t": 70 if title else 40, "b": 10}, showlegend=False)
    for axis in axes_of(layout, "x") + axes_of(layout, "y"):
        axis["tickfont"] = {"size": FONT_SIZE - 2, "color": TEXT}
        axis["title"] = {**axis.get("title", {}), "font": {"size": FONT_SIZE, "color": TEXT}}
    for a in layout.get("annotations", []):
        a["font"] = {"color": TEXT, **a.get("font", {}), "size": FONT_SIZE}
    return layout


def from_dicts(data: list[dict], layout: dict) -> go.Figure:
    """A Figure of Plotly's own dicts, not checked again (see above)."""
    return go.Figure({"data": data, "layout": layout}, _validate=False)


def image_axes(x: dict, y: dict, anchor: str | None = "x") -> None:
    """`_image_axes` on a layout's axis dicts: square pixels (y scaled to `anchor`), row 0 at the top."""
    x.update(showticklabels=False, ticks="", showgrid=False, zeroline=False, constrain="domain")
    y.update(showticklabels=False, ticks="", showgrid=False, zeroline=False, autorange="reversed",
             constrain="domain", constraintoward="top", **({"scaleanchor": anchor} if anchor else {}))


def _image_axes(fig: go.Figure, row=None, col=None) -> None:
    """Square pixels, row 0 at the top, no tick clutter (`image_axes`, on a figure's axes)."""
    kw = {} if row is None else {"row": row, "col": col}
    x, y = {}, {}
    image_axes(x, y, anchor="x" if row is None else None)
    fig.update_xaxes(**x, **kw)
    fig.update_yaxes(**y, **kw)


def _colored(text: str, color: str) -> str:
    return f"<span style='color:{color}'><b>{text}</b></span>"


# -- images as PNG tiles ------------------------------------------------------------------------

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


def _per_unit(w: np.ndarray) -> np.ndarray:
    """Each (H, W) unit divided by its own largest |weight|: -1 to 1, as float32."""
    bound = np.nanmax(np.abs(np.where(np.isfinite(w), w, np.nan)), axis=(1, 2), keepdims=True) \
        if np.isfinite(w).any() else np.ones((len(w), 1, 1))
    bound = np.where(np.isfinite(bound) & (bound > 0), bound, 1.0)
    return (w / bound).astype(np.float32)



def diverging_png(z: np.ndarray, gap: tuple[int, int, int] | None = None) -> str:
    """Values in [-1, 1] as an RGBA PNG in the DIVERGING colours: red negative, white 0, blue
    positive. NaN is a gap: transparent, or the colour `gap` (a frame that shows a white tile)."""
    stops = np.array([unlabel_rgb(c) for c in getattr(diverging, DIVERGING)], dtype=np.float64)
    t = (np.clip(np.nan_to_num(z, nan=0.0), -1, 1) + 1) / 2 * (len(stops) - 1)
    lo = np.floor(t).astype(int).clip(0, len(stops) - 2)
    frac = (t - lo)[..., None]
    rgb = stops[lo] * (1 - frac) + stops[lo + 1] * frac
    if gap is not None:
        rgb[np.isnan(z)] = gap
    alpha = np.where(np.isnan(z) & (gap is None), 0, 255)[..., None]
    return png_data_url(np.round(np.concatenate([rgb, alpha], axis=-1)).astype(np.uint8))


def diverging_scale() -> list[list]:
    """DIVERGING as a Plotly colour scale, stop by stop: the colours `diverging_png` paints."""
    stops = getattr(diverging, DIVERGING)
    return [[i / (len(stops) - 1), c] for i, c in enumerate(stops)]
