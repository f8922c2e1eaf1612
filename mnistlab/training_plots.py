"""Figures of a training as it goes: loss and accuracy against epochs (training solid, validation
dashed, the best epoch marked), each layer's learning dynamics, and the replay of a run's snapshots.

Built from what the loop and the recorder kept (`train.History`, `dynamics.Dynamics`); the style
(fonts, colours, layout) is `plots`'s, shared by every figure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from mnistlab.conv_plots import filter_strips
from mnistlab.plot_style import (
    BAR,
    DIGITS,
    FONT_SIZE,
    RUN_COLORS,
    TEXT,
    _image_axes,
    _layout,
    _np,
    _per_unit,
    _tile,
    axes_of,
    from_dicts,
    panel_axes,
    png_data_url,
    styled,
    subplot_layout,
)
from mnistlab.plot_style import diverging_png as _diverging_png

KEY_COLOR = "#555555"  # the legend's key to the line styles, in no run's colour


def training_curves(curves: Mapping[str, tuple], title: str | None = None, height: int = 400,
                    epochs: float | None = None, validation: Mapping[str, tuple] | None = None) -> go.Figure:
    """Loss and accuracy against epochs, a colour per run: on the training images solid,
    {label: (epochs, loss, accuracy)}, and on the validation images dashed, `validation` in the same
    form (checked several times an epoch; on all of them at each epoch's end).

    Each run's best validation epoch, the whole-epoch check with the lowest loss (what chooses the
    epoch and early stopping), is marked on both panels. Epochs on the x axis let runs with different
    batch sizes share it (an A/B comparison). With `epochs`, the x axis spans the whole run from the
    start, so a live curve grows into it. Built as dicts (`plot_style.from_dicts`): it is redrawn twice
    a second while a network trains.
    """
    validation = validation or {}
    layout = subplot_layout(("loss", "accuracy"), 0.1)
    data = []
    key = [("training (solid)", "solid")] + ([("validation (dashed)", "dash")] if validation else [])
    for name, dash in key:  # which line is which split: one legend entry each, for every run
        data.append({"type": "scatter", "x": [None], "y": [None], "mode": "lines", "name": name,
                     "legendgroup": "key", "line": {"color": KEY_COLOR, "width": 2, "dash": dash},
                     "hoverinfo": "skip", **panel_axes(1)})
    for i, (label, (x, loss, acc)) in enumerate(curves.items()):
        color = RUN_COLORS[i % len(RUN_COLORS)]
        for col, y, what, fmt in ((1, loss, "loss", ".3f"), (2, acc, "accuracy", ".1%")):
            data.append({"type": "scatter", "x": list(x), "y": list(y), "mode": "lines", "name": label,
                         "legendgroup": label, **({"showlegend": False} if col == 2 else {}),
                         "line": {"color": color, "width": 2},
                         "hovertemplate": f"training, epoch %{{x:.2f}}: {what} %{{y:{fmt}}}<extra></extra>",
                         **panel_axes(col)})
        if label in validation:
            _validation_lines(data, layout, label, validation[label], color, i)
    for axis in axes_of(layout, "x"):
        axis.update(title={"text": "epoch"}, rangemode="tozero", **({"range": [0, epochs]} if epochs else {}))
    layout["yaxis"]["rangemode"] = "tozero"
    layout["yaxis2"].update(tickformat=".0%", range=[0, 1.02])  # accuracy: a share, whatever the run
    if not any(len(c[0]) for c in curves.values()):  # nothing yet: sensible empty axes
        layout["yaxis"]["range"] = [0, 2.5]
        layout["yaxis2"]["range"] = [0, 1]
    styled(layout, title, height)
    layout.update(showlegend=True, legend={"orientation": "h", "yanchor": "top", "y": -0.22, "x": 0})
    return from_dicts(data, layout)


def best_epoch_point(x, loss) -> int | None:
    """The index in a validation curve of its best epoch: of the checks at a whole epoch (on every
    validation image), the first with the lowest loss; None before an epoch has ended."""
    ends = [i for i, e in enumerate(x) if e > 0 and float(e).is_integer()]
    return min(ends, key=lambda i: (loss[i], i)) if ends else None


def _validation_lines(data: list, layout: dict, label: str, curve: tuple, color: str, i: int) -> None:
    """A run's validation checks, dashed, and its best epoch marked, on the loss and accuracy panels."""
    x, loss, acc = (list(v) for v in curve)
    best = best_epoch_point(x, loss)
    # a dot where all of validation was checked, and at the latest check (a live curve's first shows)
    dots = [8 if e > 0 and float(e).is_integer() else 6 if j == len(x) - 1 else 0 for j, e in enumerate(x)]
    for col, y, what, fmt in ((1, loss, "loss", ".3f"), (2, acc, "accuracy", ".1%")):
        data.append({"type": "scatter", "x": x, "y": y, "mode": "lines+markers",
                     "name": f"{label} (validation)", "legendgroup": label, "showlegend": False,
                     "marker": {"size": dots, "color": "white",  # open: seen on the solid line too
                                "line": {"color": color, "width": [2 if d else 0 for d in dots]}},
                     "line": {"color": color, "width": 2, "dash": "dash"},
                     "hovertemplate": f"validation, epoch %{{x:.2f}}: {what} %{{y:{fmt}}}<extra></extra>",
                     **panel_axes(col)})
        if best is None:
            continue
        data.append({"type": "scatter", "x": [x[best]], "y": [y[best]], "mode": "markers",
                     "name": f"{label} (best epoch)", "legendgroup": label, "showlegend": False,
                     "marker": {"symbol": "star", "size": 16, "color": color,
                                "line": {"color": "white", "width": 1}},
                     "hovertemplate": f"best validation epoch %{{x:.0f}}: {what} %{{y:{fmt}}}<extra></extra>",
                     **panel_axes(col)})
        if col == 1:  # named once, above the loss panel's star, each run's a little higher
            layout["annotations"].append(
                {"x": x[best], "y": y[best], "xref": "x", "yref": "y", "text": f"best: epoch {x[best]:.0f}",
                 "showarrow": True, "arrowhead": 0, "arrowcolor": color, "ax": 0, "ay": -28 - 22 * (i % 4),
                 "font": {"color": color, "size": FONT_SIZE - 2}, "bgcolor": "rgba(255,255,255,0.8)"})


# -- learning dynamics (Train page) -----------------------------------------------------------------

LAYER_COLORS = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#9d755d", "#eeca3b",
                "#bab0ac"]
RUN_DASHES = ["solid", "dash", "dot", "dashdot"]
DYNAMICS_PANELS = (("update_ratio_log10", "update ÷ weight, log10 (std)"),
                   ("grad_ratio_log10", "gradient ÷ weight, log10 (std)"),
                   ("share", "saturated or dead, probe batch"))


def layer_dynamics(runs: Mapping[str, Mapping[tuple[str, str], tuple]], title: str | None = None,
                   epochs: float | None = None, height: int = 420) -> go.Figure:
    """Each layer's learning dynamics against epochs: {run label: {(layer, what): (epochs, values)}}
    (`Dynamics.all_series()` or, while training, `dynamics.live_series(reports)`).

    Three panels: the update-to-data ratio per Linear layer (with the healthy 1e-3 line), the
    gradient's size against the weight's, and each hidden activation's saturated or dead share.
    A colour per layer; with several runs, a dash style per run (an A/B comparison). Built as dicts,
    as `training_curves`.
    """
    layout = subplot_layout(tuple(t for _, t in DYNAMICS_PANELS), 0.07)
    data = []
    layers = list(dict.fromkeys(layer for series in runs.values() for layer, _ in series if layer != "probe"))
    several = len(runs) > 1
    for r, (label, series) in enumerate(runs.items()):
        dash = RUN_DASHES[r % len(RUN_DASHES)]
        for (layer, key), (x, y) in series.items():
            if layer == "probe":  # the probe batch's loss: the page states it at step 0
                continue
            col = 1 if key == "update_ratio_log10" else 2 if key == "grad_ratio_log10" else 3
            color = LAYER_COLORS[layers.index(layer) % len(LAYER_COLORS)]
            name = f"{layer}{f' ({key})' if col == 3 else ''}"
            shown = f"%{{y:.0%}} {key}" if col == 3 else "%{y:.2f}"
            run = label.split(":")[0]
            data.append({"type": "scatter", "x": list(x),
                         "y": [v if v is not None and math.isfinite(v) else None for v in y], "mode": "lines",
                         "name": f"{run} · {name}" if several else name,
                         "legendgroup": f"{label}{layer}", "showlegend": col != 2,
                         "line": {"color": color, "width": 2, "dash": dash},
                         "hovertemplate": f"{name}, epoch %{{x:.2f}}: {shown}<extra>{run}</extra>",
                         **panel_axes(col)})
    # the healthy update ratio, 1e-3, across the first panel
    layout.setdefault("shapes", []).append(
        {"type": "line", "xref": "x domain", "x0": 0, "x1": 1, "yref": "y", "y0": -3, "y1": -3,
         "line": {"color": "#555555", "dash": "dot", "width": 1.5}})
    layout["annotations"].append({"text": "1e-3", "showarrow": False, "xref": "x domain", "x": 1,
                                  "xanchor": "right", "yref": "y", "y": -3, "yanchor": "top"})
    for axis in axes_of(layout, "x"):
        axis.update(title={"text": "epoch"}, rangemode="tozero", **({"range": [0, epochs]} if epochs else {}))
    layout["yaxis3"].update(tickformat=".0%", range=[0, 1.02])
    if not any(series for series in runs.values()):
        layout["yaxis"]["range"] = [-5, 0]
        layout["yaxis2"]["range"] = [-4, 1]
    styled(layout, title, height)
    layout.update(showlegend=True, legend={"orientation": "h", "yanchor": "top", "y": -0.25, "x": 0})
    return from_dicts(data, layout)


def _digit_column(images, shape: tuple[int, int]) -> str:
    """Images of `shape` (height, width) stacked top to bottom, as one gray PNG data URL."""
    a = _np(images).reshape(-1, *shape)
    a = np.concatenate(list(a))
    lo, hi = float(a.min()), float(a.max())
    return png_data_url(np.round((a - lo) / max(hi - lo, 1e-9) * 255).astype(np.uint8))


def replay(dynamics, digit_images, title: str | None = None, columns: int = 8,
           frame_ms: int = 700, classes: Sequence[str] | None = None) -> go.Figure:
    """The run's snapshots as an animation: a slider over them and a play button, played in the
    browser (Plotly frames), with no round-trip to the server per frame.

    Each frame shows fc1's first units (a CNN's: conv1's first filters), each on its own symmetric
    scale, the class probabilities
    for one test image of each digit (`digit_images`, in `dynamics.replay_digits` order), and each
    Linear layer's weight histogram. `dynamics` is a `mnistlab.dynamics.Dynamics`: its data set gives
    the images' shape and, unless `classes` is given, the class names.
    """
    snaps, spe, layers = dynamics.snapshots, dynamics.steps_per_epoch, dynamics.layers
    shape = dynamics.dataset.image_shape[1:]
    classes = dynamics.dataset.classes if classes is None else classes
    hist_cols = min(3, len(layers))
    hist_rows = math.ceil(len(layers) / hist_cols)
    cols = hist_cols * 2  # the digits' column is one half of a histogram column
    specs = [[{"colspan": cols}] + [None] * (cols - 1),
             [{}] + [{"colspan": cols - 1}] + [None] * (cols - 2)]
    units = len(snaps[0].templates)
    cnn = snaps[0].templates.dim() == 4  # a CNN's first filters (units, maps, k, k), not fc1's rows
    what = f"filters {snaps[0].templates.shape[-1]}×{snaps[0].templates.shape[-1]}" if cnn else "units"
    titles = [f"{layers[0]}: the first {units} {what}, each on its own scale", "",
              f"class probabilities (columns 0-{len(classes) - 1}) for one test image of each digit"
              if tuple(classes) == DIGITS
              else "class probabilities for one test image of each class"]
    for r in range(hist_rows):
        row = []
        for c in range(hist_cols):
            i = r * hist_cols + c
            row += [{"colspan": 2}, None] if i < len(layers) else [None, None]
            if i < len(layers):
                titles.append(f"{layers[i]}.weight")
        specs.append(row)
    heights = [1.2, 1.7] + [1.0] * hist_rows
    fig = make_subplots(rows=2 + hist_rows, cols=cols, specs=specs, subplot_titles=titles,
                        row_heights=heights, vertical_spacing=0.3 / (2 + hist_rows),
                        horizontal_spacing=0.05)

    tile_cols = max(1, min(columns, math.ceil(units / 2) if cnn else units))  # small filters: two rows

    # Frames carry plain lists and PNGs: Plotly.js does not decode 2-D binary arrays inside frames.
    n, unit_shape = snaps[0].templates[0].numel(), shape
    if not cnn and n != math.prod(shape):  # a first linear layer after pools only: its pooled map's shape
        side = math.isqrt(n)
        unit_shape = (side, side) if side * side == n else (1, n)

    def templates(s):
        pictures = filter_strips(s.templates) if cnn else _np(s.templates).reshape(-1, *unit_shape)
        return _diverging_png(_tile(_per_unit(pictures), tile_cols, gap=1 if cnn else 3))

    def probabilities(s):
        p = _np(s.probabilities)
        return ([[round(v, 4) if np.isfinite(v) else None for v in row] for row in p.tolist()],
                [[f"{v:.2f}" if np.isfinite(v) else "" for v in row] for row in p])

    def histogram(s, name):
        lo, hi, counts = s.histograms[name]
        counts = _np(counts)
        if not len(counts):
            return np.zeros(0), counts, 1.0
        width = (hi - lo) / len(counts)
        return lo + width * (np.arange(len(counts)) + 0.5), counts, width

    first = snaps[0]
    fig.add_trace(go.Image(source=templates(first), hoverinfo="skip"), row=1, col=1)
    fig.add_trace(go.Image(source=_digit_column(digit_images, shape), hoverinfo="skip"), row=2, col=1)
    p, text = probabilities(first)
    digits = [str(c) for c in classes][:len(p)]  # the replay images are one of each class, in order
    fig.add_trace(go.Heatmap(z=p, x=digits, y=digits, text=text, texttemplate="%{text}", colorscale="Blues",
                             zmin=0, zmax=1, showscale=False,
                             hovertemplate="a %{y}: class %{x} %{z:.3f}<extra></extra>"), row=2, col=2)
    for i, name in enumerate(layers):
        x, y, width = histogram(first, name)
        at = dict(row=3 + i // hist_cols, col=1 + 2 * (i % hist_cols))
        fig.add_trace(go.Bar(x=x, y=y, width=width, marker_color=BAR, marker_line_width=0,
                             hovertemplate="%{x:.3g}: %{y:,}<extra></extra>"), **at)
        # One x range over every frame, so the histogram's spread is seen to change.
        edges = [v for s in snaps for v in s.histograms[name][:2] if math.isfinite(v)]
        tops = [int(_np(s.histograms[name][2]).max()) for s in snaps if len(s.histograms[name][2])]
        if edges:
            fig.update_xaxes(range=[min(edges), max(edges)], **at)
        if tops:
            fig.update_yaxes(range=[0, max(tops) * 1.08], **at)

    _image_axes(fig, row=1, col=1)
    fig.update_yaxes(scaleanchor="x", row=1, col=1)
    _image_axes(fig, row=2, col=1)
    fig.update_xaxes(type="category", row=2, col=2)
    fig.update_yaxes(type="category", autorange="reversed", showticklabels=False, row=2, col=2)

    def label(s):
        return f"step {s.step:,} · epoch {s.step / spe:.2f}"

    animated = [0] + list(range(2, 3 + len(layers)))  # every trace but the digits' image
    frames = []
    for s in snaps:
        p, text = probabilities(s)
        data = [go.Image(source=templates(s)), go.Heatmap(z=p, text=text)]
        for name in layers:
            x, y, width = histogram(s, name)
            data.append(go.Bar(x=x, y=y, width=width))
        frames.append(go.Frame(data=data, traces=animated, name=label(s)))
    fig.frames = frames
    play = dict(frame=dict(duration=frame_ms, redraw=True), fromcurrent=True, transition=dict(duration=0))
    jump = dict(mode="immediate", frame=dict(duration=0, redraw=True), transition=dict(duration=0))
    fig.update_layout(
        updatemenus=[dict(type="buttons", direction="left", x=0, y=-0.045, xanchor="left", yanchor="top",
                          pad=dict(t=8, r=10), showactive=False,
                          buttons=[dict(label="▶ Play", method="animate", args=[None, play]),
                                   dict(label="❚❚ Pause", method="animate",
                                        args=[[None], dict(frame=dict(duration=0, redraw=False),
                                                           mode="immediate")])])],
        sliders=[dict(active=0, x=0.2, len=0.8, y=-0.045, yanchor="top", pad=dict(t=8),
                      currentvalue=dict(prefix="epoch ", xanchor="right",
                                        font=dict(size=FONT_SIZE, color=TEXT)),
                      steps=[dict(label=f"{s.step / spe:.2f}", method="animate", args=[[label(s)], jump])
                             for s in snaps])])
    _layout(fig, title, height=300 + 260 + 230 * hist_rows + 80)
    fig.update_layout(margin=dict(b=130))
    return fig
