"""A CNN's own pictures: each convolution's filters as small images, and one image's feature maps
through every convolution and pool, before and after the activation.

`feature_maps` computes the maps as the network reads the image (in eval mode, without switching
the model, which may be training in another thread); `filters_figure` and `feature_maps_figure`
draw them, and `stacks` picks what the network diagram draws of them. Each layer is one PNG of
tiles (`plot_style`): a few kilobytes per figure, however many filters, where a heatmap per filter
would be hundreds of traces re-sent on every rerun.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
import torch
from torch import nn

from mnistlab.network import as_evaluated
from mnistlab.plot_style import (
    FONT_SIZE,
    TEXT,
    _np,
    _tile,
    diverging_png,
    diverging_scale,
    png_data_url,
)

MAX_FILTERS = 16  # filters drawn per layer: "first 16 of 64"
MAX_MAPS = 8  # of a filter's input maps, the slices drawn
MAX_CHANNELS = 16  # feature maps drawn per layer
MAPS_PER_STACK = 3  # in the network diagram: a convolution's or pool's first maps, as stacked tiles
PER_BAND = 8  # feature maps a row: a band of 8 columns stays legible in a tab at 1280 px
DESIGN_PX = 900  # the plot's width the heights are planned for (a page's main column at 1280-1920 px)
BLOCK_GAP_PX = 56  # between blocks: room for a block's title
CHAR_PX = 8  # a character of a row label, at FONT_SIZE - 2
GAP_RGB = (217, 217, 217)  # between tiles: light gray, so a white (all-zero) tile still shows its edges
FILTERS_LEGEND = ("Each small square is one filter's weights on one input map: blue positive, red "
                  "negative, white 0, on one colour scale per layer (its largest |weight| is full colour). "
                  "A filter of a layer that reads several maps is a row of squares, one per map it reads.")
MAPS_LEGEND = ("Each column is one channel of a layer: its map before the activation (batch norm's output, "
               "when the network has it), after it, and after each pool. Blue positive, red negative, "
               "white 0, on one colour scale per layer: ReLU turns the red to white.")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def convolutions(model: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    """The model's convolutions by name, in order: [("conv1", Conv2d), ("conv2", Conv2d), ...]."""
    return [(name, m) for name, m in model.named_children() if isinstance(m, nn.Conv2d)]


def filter_strips(weight, most_maps: int = MAX_MAPS) -> np.ndarray:
    """Filters (units, maps, k, k) as (units, k, width): each filter's slices over its first
    `most_maps` input maps side by side, one column of NaN (a gap) between them."""
    w = _np(weight)
    units, maps, kh, kw = w.shape
    maps = min(maps, most_maps)
    out = np.full((units, kh, maps * (kw + 1) - 1), np.nan, dtype=np.float32)
    for m in range(maps):
        out[:, :, m * (kw + 1):m * (kw + 1) + kw] = w[:, m]
    return out


def symmetric_bound(values) -> float:
    """The largest finite |value| (1 when there is none, or it is 0): a symmetric scale's full colour."""
    a = np.abs(_np(values))
    a = a[np.isfinite(a)]
    return float(a.max()) if a.size and a.max() > 0 else 1.0


def _colorbar(bound: float, y: float, length: float) -> dict:
    """A colour bar from -bound to +bound beside one layer's block (a trace of no points)."""
    ticks = [-bound, 0.0, bound]
    bar = dict(x=1.0, xanchor="left", y=y, yanchor="middle", len=length, thickness=14, tickvals=ticks,
               ticktext=[f"{v:.2g}" for v in ticks], tickfont=dict(size=FONT_SIZE - 2, color=TEXT))
    return dict(type="scatter", x=[None], y=[None], mode="markers", hoverinfo="skip", showlegend=False,
                marker=dict(colorscale=diverging_scale(), cmin=-bound, cmax=bound, color=[0.0],
                            showscale=True, colorbar=bar))


def _blocks_figure(blocks: list[dict], title: str | None, height: int | None,
                   labels_px: int = 0) -> go.Figure:
    """One pair of axes per block, top to bottom, each an image in its own units, left-aligned:
    {"title", "width", "height" (units), "source" (its PNG), "bound" (None: no colour bar),
    "most_px" (the tallest it is drawn), "notes" [(y, text)]: row labels in the left margin,
    `labels_px` wide}. Written as Plotly's dicts: through make_subplots and its checks, ~10× slower
    (the look is plot_style's `_layout`, written out)."""
    room = DESIGN_PX - labels_px - 90  # the colour bars' column on the right
    plan = [min(room * b["height"] / b["width"], b["most_px"]) for b in blocks]
    total = sum(plan) + BLOCK_GAP_PX * (len(blocks) - 1)
    data, notes, layout = [], [], {}
    top = 1.0
    for i, (b, px) in enumerate(zip(blocks, plan), 1):
        n = i if i > 1 else ""
        x, y = f"x{n}", f"y{n}"
        lo = top - px / total
        bare = dict(showticklabels=False, ticks="", showgrid=False, zeroline=False, constrain="domain",
                    fixedrange=True)
        layout[f"xaxis{n}"] = dict(bare, domain=[0, 1], anchor=y, range=[-0.5, b["width"] - 0.5],
                                   constraintoward="left")
        layout[f"yaxis{n}"] = dict(bare, domain=[max(lo, 0), top], anchor=x, scaleanchor=x,
                                   range=[b["height"] - 0.5, -0.5], constraintoward="top")
        data.append(dict(type="image", source=b["source"], xaxis=x, yaxis=y, hoverinfo="skip"))
        if b["bound"] is not None:
            bar = _colorbar(b["bound"], (lo + top) / 2, max(top - lo, 110 / total))
            data.append(dict(bar, xaxis=x, yaxis=y))
        notes.append(dict(text=b["title"], x=0, xref="paper", xanchor="left", y=top, yref="paper",
                          yanchor="bottom", showarrow=False))
        notes += [dict(text=text, x=0, xref="paper", xanchor="right", xshift=-8, y=row, yref=y, align="right",
                       showarrow=False) for row, text in b.get("notes", ())]
        top = lo - BLOCK_GAP_PX / total
    for note in notes:
        note["font"] = dict(size=FONT_SIZE, color=TEXT)
    margin_top = (70 if title else 40) + 26  # the first block's title
    layout.update(
        title=dict(text=title, font=dict(size=FONT_SIZE + 2, color=TEXT)) if title else None,
        height=height or int(total + margin_top + 10), font=dict(size=FONT_SIZE, color=TEXT),
        margin=dict(l=labels_px + 10, r=90, t=margin_top, b=10), annotations=notes, showlegend=False,
        plot_bgcolor="white", paper_bgcolor="white", dragmode=False, meta={"figure": "cnn blocks"})
    return go.Figure(dict(data=data, layout=layout), _validate=False)


# -- filters ---------------------------------------------------------------------------------------

def filters_figure(model: nn.Module, title: str | None = None, most_filters: int = MAX_FILTERS,
                   most_maps: int = MAX_MAPS, height: int | None = None) -> go.Figure:
    """Every convolution's kernels as small images: one block per layer, on one colour scale per
    layer, symmetric around 0 and reaching that layer's largest |weight| (every kernel's, drawn or
    not). A layer over one map draws its filters side by side; over several, each filter is a row of
    its slices, one per map it reads (the first `most_maps`); the first `most_filters` are drawn."""
    convs = convolutions(model)
    if not convs:
        raise ValueError("This network has no convolutions, so it has no filters to draw.")
    blocks = []
    for name, conv in convs:
        w = conv.weight.detach()
        units, maps, k, _ = w.shape
        bound = symmetric_bound(w)
        strips = filter_strips(w[:most_filters], most_maps)
        n, sh, sw = strips.shape
        if maps == 1:  # single squares, PER_BAND a row
            gap, columns = 1, min(n, PER_BAND)
        else:  # rows of slices, a wider gap between filters; as many a row as keep the block ~3:1
            gap = max(2, k // 2 + 1)
            fits = [c for c in range(1, n + 1) if n % c == 0] or [1]
            columns = min(fits, key=lambda c: abs(math.log(c * (sw + gap) / (n / c * (sh + gap)) / 3)))
        z = _tile(strips, columns, gap)
        caps = [f"first {n}" if units > n else "", f"on maps 0–{most_maps - 1}" if maps > most_maps else ""]
        caps = ", ".join(c for c in caps if c)
        block_title = (f"<b>{name}</b>: {_plural(units, 'filter')} {k}×{k} over {_plural(maps, 'map')}"
                       + (f" ({caps})" if caps else ""))
        blocks.append(dict(title=block_title, width=z.shape[1], height=z.shape[0], bound=bound,
                           most_px=110 * math.ceil(n / columns) if maps == 1 else 420,
                           source=diverging_png(z / bound, GAP_RGB)))
    return _blocks_figure(blocks, title, height)


# -- feature maps ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Block:
    """What one block of the figure draws: a convolution's maps before its activation (batch norm's
    output, when it has it), after it, and after each pool that follows; or the input and its pools."""

    name: str  # "conv1", or "input"
    rows: tuple[str, ...]  # the modules whose outputs are drawn, e.g. ("conv1", "relu_conv1", "pool1")
    labels: tuple[str, ...]  # what each row is, e.g. ("before relu", "after relu", "max pool 2×2")


@dataclass(frozen=True, eq=False)
class FeatureMaps:
    """One image through a CNN's convolutions and pools, as in eval mode: each module's output by
    its name in the nn.Sequential (up to the flatten; dropout, which then passes its input on, has
    none), each (channels, height, width)."""

    image: torch.Tensor  # (channels, height, width), as the network reads it
    maps: dict[str, torch.Tensor]
    blocks: tuple[Block, ...]

    def __repr__(self) -> str:
        return "FeatureMaps(" + ", ".join(f"{k} {tuple(v.shape)}" for k, v in self.maps.items()) + ")"


def _blocks(model: nn.Module) -> tuple[Block, ...]:
    """The model's modules before its flatten, grouped as `feature_maps_figure` draws them."""
    blocks: list[list] = [["input", ["input"], ["as read"]]]
    for name, module in model.named_children():
        if isinstance(module, nn.Flatten):
            break
        rows, labels = blocks[-1][1], blocks[-1][2]
        if isinstance(module, nn.Conv2d):
            blocks.append([name, [name], ["before activation"]])
        elif isinstance(module, nn.modules.batchnorm._BatchNorm):
            rows[-1] = name  # batch norm's output is what the activation reads
        elif isinstance(module, nn.MaxPool2d):
            size = module.kernel_size if isinstance(module.kernel_size, int) else module.kernel_size[0]
            rows.append(name)
            labels.append(f"max pool {size}×{size}")
        elif not isinstance(module, nn.modules.dropout._DropoutNd):  # the activation
            activation = name.split("_")[0]
            labels[-1] = labels[-1].replace("activation", activation)
            rows.append(name)
            labels.append(f"after {activation}")
    return tuple(Block(n, tuple(r), tuple(lab)) for n, r, lab in blocks)


@torch.no_grad()
def feature_maps(model: nn.Module, image: torch.Tensor) -> FeatureMaps:
    """`image` (one, normalized as the network reads it: (1, 28, 28) or (1, 1, 28, 28)) through every
    module of a CNN before its flatten, as in eval mode (`network.as_evaluated`)."""
    shape = getattr(model, "image_shape", None)
    if shape is None:
        raise ValueError("Feature maps are a convolutional network's; this network has no convolutions.")
    weight = next(model.parameters())
    x = image.detach().reshape(1, *shape).to(weight.device, weight.dtype)
    maps = {}
    for name, module in model.named_children():
        if isinstance(module, nn.Flatten):
            break
        x = as_evaluated(module, x)
        if not isinstance(module, nn.modules.dropout._DropoutNd):
            maps[name] = x[0].detach().to("cpu", torch.float32)
    return FeatureMaps(image.detach().to("cpu", torch.float32).reshape(shape), maps, _blocks(model))


def _resized(maps: np.ndarray, h: int, w: int) -> np.ndarray:
    """(n, h', w') maps as (n, h, w), each pixel repeated (nearest neighbour: a pooled map's blocks stay
    sharp)."""
    _, mh, mw = maps.shape
    return maps[:, (np.arange(h) * mh) // h][:, :, (np.arange(w) * mw) // w]


def _gray_png(z: np.ndarray) -> str:
    """Values as gray, lowest black, highest white; NaN transparent."""
    lo, hi = float(np.nanmin(z)), float(np.nanmax(z))
    gray = np.round((np.nan_to_num(z, nan=lo) - lo) / max(hi - lo, 1e-9) * 255).astype(np.uint8)
    return png_data_url(np.dstack([gray, np.where(np.isnan(z), 0, 255).astype(np.uint8)]))


def feature_maps_figure(maps: FeatureMaps, title: str | None = None, most_channels: int = MAX_CHANNELS,
                        height: int | None = None) -> go.Figure:
    """The image, then a block per convolution: a column per channel (the first `most_channels`, in
    bands of PER_BAND), its map before the activation, after it, and after each pool below, a pooled
    map drawn as large as the map it came from, so a channel reads down its column. One colour scale
    per block, symmetric around 0 and reaching its largest |value|."""
    blocks, labels_px = [], 0
    for block in maps.blocks:
        if block.name == "input":  # gray, as a digit is drawn; with any pools before the first convolution
            c, h, w = maps.image.shape
            shown = [maps.image] + [maps.maps[r] for r in block.rows[1:]]
            z = _tile(np.concatenate([_resized(_np(m), h, w) for m in shown]), c, 2)
            notes = [(i * (h + 2) + (h - 1) / 2, f"<b>{r}</b><br>{lab}")
                     for i, (r, lab) in enumerate(zip(block.rows, block.labels)) if i]
            blocks.append(dict(title=f"<b>input</b>: {c}×{h}×{w}, normalized as the network reads it",
                               width=z.shape[1], height=z.shape[0], bound=None, most_px=130 * len(shown),
                               notes=notes, source=_gray_png(z)))
            continue
        rows = [maps.maps[r] for r in block.rows]
        channels, h, w = rows[0].shape
        n = min(channels, most_channels)
        bands = math.ceil(n / PER_BAND)
        gap = max(2, round(w / 10))
        tiles, notes = [], []
        for b in range(bands):
            shown = slice(b * PER_BAND, min(n, (b + 1) * PER_BAND))
            for i, (values, name, label) in enumerate(zip(rows, block.rows, block.labels)):
                band = np.full((PER_BAND, h, w), np.nan, dtype=np.float32)
                part = _resized(_np(values[shown]), h, w)  # a pooled map as large as its map
                band[:len(part)] = part
                tiles.append(band)
                which = f" {shown.start}–{shown.stop - 1}" if bands > 1 and i == 0 else ""  # the band's maps
                y = (b * len(rows) + i) * (h + gap) + (h - 1) / 2
                notes.append((y, f"<b>{name}</b>{which}<br>{label}"))
                labels_px = max(labels_px, CHAR_PX * max(len(name + which), len(label)) + 16)
        bound = symmetric_bound(torch.cat([r.flatten() for r in rows]))
        z = _tile(np.concatenate(tiles), PER_BAND, gap)
        if n < PER_BAND:
            z = z[:, :n * (w + gap) - gap]
        names = [block.name] + [r for r in block.rows if r != block.name]
        sizes = " → ".join(dict.fromkeys(f"{r.shape[1]}×{r.shape[2]}" for r in rows))  # "24×24 → 12×12"
        caps = f" (first {n})" if channels > n else ""
        blocks.append(dict(title=f"<b>{' → '.join(names)}</b>: {_plural(channels, 'map')} {sizes}{caps}",
                           width=z.shape[1], height=z.shape[0], bound=bound, notes=notes,
                           most_px=110 * len(rows) * bands,
                           source=diverging_png(z / bound, GAP_RGB)))
    return _blocks_figure(blocks, title, height, labels_px)


# -- in the network diagram -------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Stack:
    """A convolution's or a pool's feature maps for the image: its first channels, drawn as tiles."""

    header: str  # the modules that make these maps, e.g. "conv1 → relu_conv1", or "pool1"
    shape: tuple[int, int, int]  # (channels, height, width) of the layer's output
    shown: np.ndarray  # the channels drawn, front tile first
    maps: np.ndarray  # (len(shown), height, width): after the activation (a pool: its output)
    bound: float  # the shading's full colour: ±bound, the layer's largest |value|

    @property
    def showing(self) -> str:
        """E.g. "8×24×24"."""
        return "×".join(map(str, self.shape))


def stacks(maps: FeatureMaps, most: int = MAPS_PER_STACK) -> tuple[Stack, ...]:
    """The network diagram's stacks: one per convolution (its maps after the activation) and per
    pool, in order, each with its first `most` maps."""
    found = []
    for block in maps.blocks:
        pools = [r for r in block.rows if r.startswith("pool")]
        layers = [r for r in block.rows if r not in pools and r != "input"]
        drawn = ([(" → ".join(dict.fromkeys([block.name, *layers])), layers[-1])] if layers else []) \
            + [(p, p) for p in pools]
        for header, name in drawn:
            values = maps.maps[name].numpy()
            shown = np.arange(min(most, len(values)))
            bound = symmetric_bound(values)
            found.append(Stack(header, tuple(values.shape), shown, values[shown], bound))
    return tuple(found)
