"""The network drawn as a network: layers as columns of units, lines for the weights between them.

As TensorFlow Playground draws it: the input image is the input layer, each hidden unit is a dot
shaded by its activation for that image, each line is one weight (blue positive, red negative,
thicker for larger |w|), and the output column is the class probabilities. A wide layer shows
an evenly spaced sample of its units (the same units at every step of a run, so a live figure does
not jump), and says how many; of the weights, only each drawn unit's strongest incoming ones.

A CNN's convolutions and pools come first, each a stack of its first feature maps for the image
(shaded as the units are), then its linear layers, whose first lines start at the maps' pixels.

`diagram_data` computes what is drawn from the model's own weights and one forward pass;
`draw` turns it into a Plotly figure; `network_figure` does both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.colors import diverging
from torch import nn

from mnistlab import conv_plots, plots
from mnistlab.conv_plots import Stack
from mnistlab.dataset import MNIST, Dataset
from mnistlab.network import as_evaluated
from mnistlab.plot_style import diverging_png

MAX_UNITS = 16  # drawn per layer: a readable column
PIXELS_PER_UNIT = 3  # lines from the image into each drawn first-layer unit
EDGES_PER_UNIT = 3  # lines into each drawn unit of later layers
STACK_SCALE, STACK_OFFSET, STACK_GAP = 2.6, 1.3, 4.5  # a tile's size per √(map size); between tiles, stacks
STACK_TO_UNITS = 9.0  # from the last stack to the first column of units, and between columns
CNN_SPAN = 1.5  # a CNN's columns span 1.5 times the image's height
LEGEND = ("Each line is one weight: blue positive, red negative, thicker for a larger |weight| (each unit's "
          "strongest incoming ones). Each unit is shaded by its activation for this image: white 0, blue "
          "positive, red negative; the output column is the softmax's class probabilities. A layer wider "
          f"than {MAX_UNITS} units shows {MAX_UNITS} of them, evenly spaced.")
CNN_LEGEND = (LEGEND + " A convolution or a pool is a stack of its first maps for this image, shaded "
              "the same way (each layer on its own scale); the first linear layer's lines start at their "
              "pixels.")

_STOPS = diverging.RdBu  # red (negative) to blue (positive), as plots.DIVERGING draws weights
UNIT_SCALE = [[i / (len(_STOPS) - 1), c] for i, c in enumerate(_STOPS)]
POSITIVE, NEGATIVE = _STOPS[-2], _STOPS[1]
# Line width (px) and opacity for |w| in each quarter of the strongest drawn weight of its layer.
WIDTHS, OPACITIES = (0.6, 1.1, 1.8, 2.8), (0.3, 0.45, 0.6, 0.8)


@dataclass(frozen=True, eq=False)
class Column:
    """One layer's drawn units: which of them, and their values for the image."""

    header: str  # the modules that make these values, e.g. "fc1 → relu1"
    size: int  # units in the layer
    shown: np.ndarray  # indices of the drawn units
    values: np.ndarray  # the layer's output at those units (after its activation; softmax for the output)
    bound: float  # the shading's full colour: ±bound

    @property
    def showing(self) -> str:
        """E.g. "16 of 128 units" or "all 64 units"."""
        shown = len(self.shown)
        return f"all {self.size} units" if shown == self.size else f"{shown} of {self.size} units"


@dataclass(frozen=True, eq=False)
class Connections:
    """The weights drawn for one Linear layer: `weight[i]` is `layer.weight[target[i], source[i]]`."""

    layer: str  # e.g. "fc1"
    source: np.ndarray  # unit index in the layer before (a pixel index, row by row, for the first layer)
    target: np.ndarray  # unit index in this layer
    weight: np.ndarray


@dataclass(frozen=True, eq=False)
class Diagram:
    """Everything the figure draws: the image, one Column per layer after it, the drawn weights."""

    image: np.ndarray  # (height, width), as the network reads it (normalized)
    columns: list[Column]  # the hidden layers, then the output (its values: the class probabilities)
    connections: list[Connections]  # connections[i] ends in columns[i]; a CNN's first from its last stack
    class_names: tuple[str, ...]
    stacks: tuple[Stack, ...] = ()  # a CNN's convolutions and pools (conv_plots.stacks); none for an MLP

    @property
    def probabilities(self) -> np.ndarray:
        return self.columns[-1].values

    def __repr__(self) -> str:
        layers = [f"{s.header}: {s.showing}" for s in self.stacks]
        layers += [f"{c.header}: {c.showing}" for c in self.columns]
        return "Diagram(" + " | ".join(layers) + ")"


def sample_units(size: int, most: int = MAX_UNITS) -> np.ndarray:
    """`most` evenly spaced unit indices from 0 to size - 1 (all of them when the layer is narrower)."""
    if size <= most:
        return np.arange(size)
    return np.round(np.linspace(0, size - 1, most)).astype(int)


def _groups(model: nn.Module) -> list[list[tuple[str, nn.Module]]]:
    """The model's children cut before each Linear: [[fc1, relu1], [fc2, relu2], [output, softmax]]."""
    groups: list[list[tuple[str, nn.Module]]] = [[]]
    for name, module in model.named_children():
        if isinstance(module, nn.Linear):
            groups.append([])
        groups[-1].append((name, module))
    return groups


def _strongest(magnitude: torch.Tensor, k: int) -> torch.Tensor:
    """Per row, the column indices of the k largest entries (NaN counts as 0)."""
    k = min(k, magnitude.shape[1])
    return torch.topk(torch.nan_to_num(magnitude, nan=0.0), k, dim=1).indices


@torch.no_grad()
def diagram_data(model: nn.Module, image: torch.Tensor, class_names: Sequence[str] | None = None,
                 max_units: int = MAX_UNITS, dataset: Dataset = MNIST) -> Diagram:
    """What the diagram draws for `model` (the lesson's named nn.Sequential) and one normalized image
    of `dataset`'s.

    One forward pass through the children, as in eval mode: dropout, if a model has it, is skipped
    and batch norm uses its running statistics (`network.as_evaluated`) rather than the model switched
    to eval(), since a training thread may be using it meanwhile (a CNN's maps: `conv_plots`'s).
    """
    groups = _groups(model)
    linears = [g for g in groups if g and isinstance(g[0][1], nn.Linear)]
    cnn = getattr(model, "image_shape", None) is not None
    if not linears or (not cnn and linears[0][0][1].in_features != dataset.inputs) \
            or (cnn and tuple(model.image_shape) != tuple(dataset.image_shape)):
        raise ValueError(f"The network diagram draws a network that reads {dataset.inputs} pixels "
                         f"({dataset.title}'s {dataset.shape_text()}) and ends in Linear layers.")
    weight = linears[0][0][1].weight
    stacks: tuple[Stack, ...] = ()
    if cnn:
        maps = conv_plots.feature_maps(model, image)
        stacks = conv_plots.stacks(maps)
        x = maps.maps[next(reversed(maps.maps))].reshape(1, -1).to(weight.device, weight.dtype)
    else:
        x = image.detach().reshape(1, -1).to(weight.device, weight.dtype)
        for _, module in groups[0]:  # anything before the first Linear
            x = module(x)
    columns, connections = [], []
    shown_before = None  # None: the image, every pixel
    for i, group in enumerate(linears):
        last = i == len(linears) - 1
        for _, module in group:
            x = as_evaluated(module, x)
        values = x[0]
        if last and not isinstance(group[-1][1], nn.Softmax):
            values = torch.softmax(values, dim=0)
        name, linear = group[0]
        shown = sample_units(linear.out_features, 10**6 if last else max_units)
        rows = linear.weight[torch.as_tensor(shown, device=linear.weight.device)]
        if shown_before is None and stacks:  # from the drawn maps' pixels
            _, h, w = stacks[-1].shape
            drawn = torch.cat([torch.arange(c * h * w, (c + 1) * h * w) for c in stacks[-1].shown.tolist()])
            drawn = drawn.to(rows.device)
            source = drawn[_strongest(rows[:, drawn].abs(), PIXELS_PER_UNIT)]
        elif shown_before is None:
            source = _strongest(rows.abs(), PIXELS_PER_UNIT)
        else:
            before = torch.as_tensor(shown_before, device=rows.device)
            source = before[_strongest(rows[:, before].abs(), EDGES_PER_UNIT)]
        w = rows.gather(1, source)
        connections.append(Connections(name, source.cpu().numpy().ravel(),
                                       np.repeat(shown, source.shape[1]), w.float().cpu().numpy().ravel()))
        layer_values = values.float().cpu().numpy()
        kinds = {type(m) for _, m in group[1:]}
        if last or kinds & {nn.Sigmoid, nn.Tanh}:
            bound = 1.0  # the activation's own range
        else:
            finite = np.abs(layer_values[np.isfinite(layer_values)])
            bound = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
        named = [n for n, m in group if not isinstance(m, nn.modules.dropout._DropoutNd)]  # as drawn: none
        columns.append(Column(" → ".join(named), linear.out_features, shown,
                              layer_values[shown], bound))
        shown_before = shown
    names = tuple(str(c) for c in (range(columns[-1].size) if class_names is None else class_names))
    if len(names) != columns[-1].size:
        raise ValueError(f"{columns[-1].size} outputs need {columns[-1].size} class names; got {len(names)}.")
    pixels = image.detach().to("cpu", torch.float32).reshape(-1, dataset.height, dataset.width)[0]
    return Diagram(pixels.numpy(), columns, connections, names, stacks)


# -- the figure ----------------------------------------------------------------------------------
# Data units: one per pixel of the image, which spans y 0 to its height - 1 (0-27 for MNIST); the axes
# keep pixels square, so a figure wider than the diagram gets white margins at the sides, a narrower
# one above and below.

MAX_SPACING = 3.0  # between units of a short column (a full one spans the image)
HEADER_PX, CHAR_PX = 44, 9  # a two-line column header's height, and a character's width, at FONT_SIZE
NETWORK = 70  # data units from the image's left edge to the output units, for a short network
NARROW_PX = 740  # the narrowest plot planned for (Build's tab at 1280 px), in px
# Right of the output units, in px at NARROW_PX: a gap, the class names, the bars, the probabilities.
NAME_GAP_PX, BAR_PX, VALUE_PX = 15, 90, 44


def _segments(x0, y0, x1, y1) -> tuple[list, list]:
    """Lines from (x0, y0) to (x1, y1), as one trace's x and y with None between lines."""
    n = len(x0)
    xs, ys = [None] * (3 * n), [None] * (3 * n)
    xs[0::3], xs[1::3] = list(map(float, x0)), list(map(float, x1))
    ys[0::3], ys[1::3] = list(map(float, y0)), list(map(float, y1))
    return xs, ys


def _spacing(n: int, span: int, most: float = MAX_SPACING) -> float:
    """Between `n` units of a column beside an image `span` pixels high."""
    return min((span - 1) / max(n - 1, 1), most)


def _column_y(n: int, span: int, most: float = MAX_SPACING) -> np.ndarray:
    return (span - 1) / 2 + (np.arange(n) - (n - 1) / 2) * _spacing(n, span, most)


def _fmt(v: float) -> str:
    return f"{v:.3f}" if np.isfinite(v) else str(v)


@dataclass(frozen=True)
class _Place:
    """Where a Stack's tiles go: the front tile's left edge and size, each further tile up and right."""

    left: float
    size: float
    tiles: int
    middle: float  # the stack's vertical centre

    @property
    def right(self) -> float:
        return self.left + self.size + (self.tiles - 1) * STACK_OFFSET

    def corner(self, t: int) -> tuple[float, float]:
        """(left, top) of tile t, 0 the front one."""
        back_top = self.middle - (self.size + (self.tiles - 1) * STACK_OFFSET) / 2
        return self.left + t * STACK_OFFSET, back_top + (self.tiles - 1 - t) * STACK_OFFSET


def _places(stacks: Sequence[Stack], image_w: int, image_h: int, span: int) -> list[_Place]:
    """Stacks left to right after the image, each tile sized by the square root of its maps' size
    (a pool's smaller maps look smaller, but a 4×4 map stays visible)."""
    places, left = [], image_w - 0.5
    for stack in stacks:
        size = min(STACK_SCALE * np.sqrt(stack.shape[1]), 0.6 * image_h)
        places.append(_Place(left + STACK_GAP, float(size), len(stack.shown), (span - 1) / 2))
        left = places[-1].right
    return places


def _stack_pixels(stack: Stack, place: _Place, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The centres of flattened features (channel, row, column of `stack`'s maps) on its drawn tiles."""
    _, h, w = stack.shape
    channel, pixel = np.divmod(features, h * w)
    row, column = np.divmod(pixel, w)
    tile = np.searchsorted(stack.shown, channel)
    corners = np.array([place.corner(t) for t in range(place.tiles)])
    step_x, step_y = place.size / w, place.size / h
    return corners[tile, 0] + (column + 0.5) * step_x, corners[tile, 1] + (row + 0.5) * step_y


def _stack_traces(stacks: Sequence[Stack], places: Sequence[_Place]) -> list[dict]:
    """Each stack's tiles, back to front, shaded as the units are, with a thin frame; on the image's
    axes, above the lines that start at their pixels."""
    traces, frame_x, frame_y = [], [], []
    for stack, place in zip(stacks, places):
        _, h, w = stack.shape
        for t in reversed(range(place.tiles)):
            x0, y0 = place.corner(t)
            traces.append(dict(type="image", xaxis="x2", yaxis="y2", hoverinfo="skip",
                               source=diverging_png(stack.maps[t] / stack.bound),
                               x0=x0 + place.size / w / 2, dx=place.size / w, y0=y0 + place.size / h / 2,
                               dy=place.size / h))
            x1, y1 = x0 + place.size, y0 + place.size
            frame_x += [x0, x1, x1, x0, x0, None]
            frame_y += [y0, y0, y1, y1, y0, None]
    traces.append(dict(type="scatter", xaxis="x2", yaxis="y2", x=frame_x, y=frame_y, mode="lines",
                       hoverinfo="skip", line=dict(color="#555555", width=1), name="feature maps"))
    return traces


def draw(diagram: Diagram, title: str | None = None, height: int = 440) -> go.Figure:
    """The Diagram as one Plotly figure: the image, a CNN's stacks of maps, a few traces of lines,
    a scatter per column."""
    cols, names = diagram.columns, diagram.class_names
    image_h, image_w = diagram.image.shape
    # A CNN's columns span more than the image: its stacks make it wide, so a unit has fewer px.
    span, most = image_h, MAX_SPACING
    if diagram.stacks:
        span, most = round(CNN_SPAN * image_h), CNN_SPAN * MAX_SPACING
    places = _places(diagram.stacks, image_w, image_h, span)
    if places:
        gap = STACK_TO_UNITS
        xs = [places[-1].right + gap * (i + 1) for i in range(len(cols))]
    else:
        gap = max(9.0, (NETWORK - image_w) / len(cols))
        xs = [image_w - 0.5 + gap * (i + 1) for i in range(len(cols))]
    # The labels take a fixed share of the narrowest figure; the network the rest.
    name_px = CHAR_PX * max(len(n) for n in names) + 6
    labels_px = NAME_GAP_PX + name_px + BAR_PX + VALUE_PX
    right = (xs[-1] + 1) / (1 - labels_px / NARROW_PX) - 1
    narrow_px = NARROW_PX / (right + 1)  # px per data unit in the narrowest figure planned for
    # Column headers: the layer, then how many of its units are drawn. Where neighbours' would
    # overlap in a narrow figure, the hidden layers' are shortened, then every other one goes below.
    # A stack's header is shortened to its first module (conv1), a column's to its last (relu1).
    heads = [(s.header, s.showing) for s in diagram.stacks]
    heads += [(c.header, c.showing.removesuffix(" units")) for c in cols[:-1]]
    middles = [(p.left + p.right) / 2 for p in places] + xs[:-1]
    room = gap if not places else float(np.diff([(image_w - 1) / 2, *middles, xs[-1]]).min())
    if max((len(a) for a, _ in heads), default=0) * CHAR_PX > room * narrow_px - 10:
        heads = [(a.split(" → ")[0 if i < len(places) else -1], b) for i, (a, b) in enumerate(heads)]
    widest = max((max(len(a), len(b)) for a, b in heads), default=0) * CHAR_PX
    below = widest > room * narrow_px - 10
    top = -HEADER_PX / narrow_px - 0.8
    bottom = span - 0.5 + (HEADER_PX / narrow_px + 0.6 if below else 0.5)
    # px per data unit: set by the height in a wide figure, by the width in a narrow one.
    unit_px = min((height - (70 if title else 40) - 10) / (bottom - top), narrow_px)
    ys = [_column_y(len(c.shown), span, most) for c in cols]

    traces: list[dict] = []
    # Weights: one trace per (sign, quarter of the layer's largest drawn |w|) over every layer.
    segments = {(s, q): ([], [], [], []) for s in (1, -1) for q in range(4)}
    for i, (c, col) in enumerate(zip(diagram.connections, cols)):
        if i == 0 and places:
            x0, y0 = _stack_pixels(diagram.stacks[-1], places[-1], c.source)  # under the last stack
        elif i == 0:
            x0, y0 = c.source % image_w, c.source // image_w  # the pixel's centre, under the image
        else:
            before = dict(zip(cols[i - 1].shown.tolist(), ys[i - 1]))
            x0, y0 = np.full(len(c.source), xs[i - 1]), np.array([before[s] for s in c.source.tolist()])
        at = dict(zip(col.shown.tolist(), ys[i]))
        x1, y1 = np.full(len(c.target), xs[i]), np.array([at[t] for t in c.target.tolist()])
        w = np.nan_to_num(c.weight)
        strongest = np.abs(w).max() if w.size else 0.0
        quarter = np.minimum((np.abs(w) / (strongest or 1.0) * 4).astype(int), 3)
        for k in range(len(w)):
            group = segments[(1 if w[k] >= 0 else -1, int(quarter[k]))]
            for points, v in zip(group, (x0[k], y0[k], x1[k], y1[k])):
                points.append(v)
    for (sign, q), (x0, y0, x1, y1) in segments.items():
        if x0:
            lx, ly = _segments(x0, y0, x1, y1)
            traces.append(dict(type="scatter", x=lx, y=ly, mode="lines", hoverinfo="skip",
                               opacity=OPACITIES[q], line=dict(color=POSITIVE if sign > 0 else NEGATIVE,
                                                               width=WIDTHS[q]),
                               name=f"{'positive' if sign > 0 else 'negative'} weights, quarter {q + 1}"))

    # The image, on a second pair of axes laid exactly over the first, so that it covers the lines
    # running to its pixels (Plotly draws a subplot's heatmaps under its lines).
    traces.append(dict(
        type="heatmap", xaxis="x2", yaxis="y2", z=diagram.image.astype(np.float32), x0=0, dx=1,
        y0=(span - image_h) // 2, dy=1,
        colorscale=plots.GRAY, zmin=float(np.nanmin(diagram.image)), zmax=float(np.nanmax(diagram.image)),
        showscale=False, hovertemplate="pixel row %{y}, column %{x}: %{z:.2f}<extra></extra>"))
    if places:
        traces += _stack_traces(diagram.stacks, places)

    # Units, shaded by their values; hovering says which unit and its value.
    for col, x, y in zip(cols, xs, ys):
        out_name = col.header.split(" → ")[-1]
        text = [f"{out_name} unit {u}: {_fmt(v)}" for u, v in zip(col.shown.tolist(), col.values.tolist())]
        size = float(np.clip(0.85 * min(_spacing(len(y), span, most), 2.2) * unit_px, 7, 22))
        traces.append(dict(type="scatter", x=[x] * len(y), y=y.tolist(), mode="markers", name=col.header,
                           text=text, hovertemplate="%{text}<extra></extra>",
                           marker=dict(size=size, color=np.nan_to_num(col.values).tolist(),
                                       colorscale=UNIT_SCALE, cmin=-col.bound, cmax=col.bound,
                                       line=dict(color="#555555", width=1.2))))

    # The output's class names, probability bars and values; the most probable class in red.
    ps, y = np.nan_to_num(diagram.probabilities), ys[-1]
    predicted = int(np.argmax(ps))
    name_x = xs[-1] + NAME_GAP_PX / narrow_px
    bar_x, bar = name_x + name_px / narrow_px, BAR_PX / narrow_px
    thickness = float(np.clip(0.45 * _spacing(len(y), span, most) * unit_px, 4, 14))
    for chosen, color in ((False, plots.BAR), (True, plots.PREDICTED)):
        rows = [r for r in range(len(ps)) if (r == predicted) == chosen]
        lx, ly = _segments([bar_x] * len(rows), y[rows], bar_x + bar * ps[rows], y[rows])
        traces.append(dict(type="scatter", x=lx, y=ly, mode="lines", hoverinfo="skip",
                           line=dict(color=color, width=thickness)))
    color = [plots.PREDICTED if r == predicted else plots.TEXT for r in range(len(ps))]
    bold = [f"<b>{n}</b>" if r == predicted else n for r, n in enumerate(names)]
    traces.append(dict(type="scatter", x=[name_x] * len(ps), y=y.tolist(), mode="text", text=bold,
                       textposition="middle right", hoverinfo="skip",
                       textfont=dict(size=plots.FONT_SIZE, color=color)))
    traces.append(dict(type="scatter", x=(bar_x + bar * ps + 4 / narrow_px).tolist(), y=y.tolist(),
                       mode="text", text=[f"{p:.2f}" for p in ps], textposition="middle right",
                       hoverinfo="skip",
                       textfont=dict(size=plots.FONT_SIZE, color=color)))

    # The headers; the output's runs to the right, over its labels, clear of the last hidden layer's.
    items = len(heads)  # stacks and hidden columns
    heads = [("input", f"{image_h}×{image_w} pixels"), *heads, (cols[-1].header, f"{cols[-1].size} classes")]
    head_x = [(image_w - 1) / 2] + middles + [xs[-1] - 1.2]
    # fc1, fc3, ... below; a CNN's every other one from the last, whose room is the output header's
    first = (items - 1) % 2 if places else 0
    down = [below and 0 <= i < items and i % 2 == first for i in range(-1, items + 1)]
    head_y = [span if d else top + 0.2 for d in down]
    traces.append(dict(type="scatter", x=head_x, y=head_y, mode="text",
                       text=[f"<b>{a}</b><br>{b}" for a, b in heads], hoverinfo="skip",
                       textposition=["bottom center"] * (len(heads) - 1) + ["bottom right"],
                       textfont=dict(size=plots.FONT_SIZE, color=plots.TEXT)))

    x_axis = dict(range=[-1, right], visible=False, fixedrange=True, constrain="domain")
    y_axis = dict(range=[bottom, top], visible=False, fixedrange=True, constrain="domain",
                  constraintoward="top")
    # plots._layout's look, written out: through Plotly's checks it took 4 of every 5 ms here.
    layout = dict(
        title=dict(text=title, font=dict(size=plots.FONT_SIZE + 2, color=plots.TEXT)) if title else None,
        height=height, font=dict(size=plots.FONT_SIZE, color=plots.TEXT), showlegend=False,
        margin=dict(l=10, r=10, t=70 if title else 40, b=10), plot_bgcolor="white", paper_bgcolor="white",
        meta={"figure": "network diagram"},  # what it is, for a page's tests to tell it from the others
        dragmode=False, hovermode="closest", xaxis=x_axis, yaxis={**y_axis, "scaleanchor": "x"},
        xaxis2={**x_axis, "overlaying": "x"}, yaxis2={**y_axis, "scaleanchor": "x2", "overlaying": "y"})
    return go.Figure(dict(data=traces, layout=layout), _validate=False)


def network_figure(model: nn.Module, image: torch.Tensor, class_names: Sequence[str] | None = None,
                   title: str | None = None, height: int = 440, dataset: Dataset = MNIST) -> go.Figure:
    """The network drawn for one normalized image of `dataset`'s, (1, 1, height, width): see the
    module's docstring."""
    return draw(diagram_data(model, image, class_names, dataset=dataset), title, height)
