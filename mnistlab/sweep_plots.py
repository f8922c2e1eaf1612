"""Plotly figures of a sweep's results, as sweep tools show them; each point carries its config's index
(`customdata`) so a page can tell which network was clicked.

Builders take `sweep_results.summarize` rows (one per config: mean accuracy over its seeds and their
spread) and never touch Streamlit. What chooses is drawn: validation accuracy (the front, the best,
the colours); test accuracy is in each point's hover, for the report. Rows trained before there was
a validation split have none and are left out. The look (fonts, margins) is plots.py's.
"""

from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from mnistlab.activations import ACTIVATIONS
from mnistlab.plots import FONT_SIZE, RUN_COLORS, TEXT, _layout
from mnistlab.sweep_results import SETTINGS, mark_pareto, setting_value

DEPTH_SYMBOLS = {0: "star", 1: "circle", 2: "square", 3: "diamond", 4: "triangle-up"}
FAMILY_COLORS = {"MLP": "#4c78a8", "CNN": "#f58518"}  # when a sweep has both: the colour is the family
FRONT = "#222222"
VALIDATION = "validation accuracy (%), what chooses"


def _validated(rows: list[dict]) -> list[int]:
    return [i for i, r in enumerate(rows) if r.get("validation_accuracy") is not None]


def _hover(r: dict) -> str:
    spread = f" ± {r['validation_std']:.2%} over {r['seeds']} seeds" if r["seeds"] > 1 else ""
    train = "" if r.get("train_accuracy") is None else f"<br>training accuracy {r['train_accuracy']:.2%}"
    macs = f" · {r['macs']:,} multiply-adds an image" if r.get("macs") else ""
    return (f"<b>{r['network']}</b><br>init {r['init']} · lr {r['lr']:g}<br>"
            f"{r['parameters']:,} parameters{macs}"
            f"<br>validation accuracy {r['validation_accuracy']:.2%}{spread}{train}"
            f"<br>test accuracy {r['test_accuracy']:.2%} (held out, not used to choose)<br>{_time(r)}")


def _time(r: dict) -> str:
    """What was measured: a stack's wall time, shared by the networks trained in it."""
    if r.get("stacked", 1) > 1:
        return (f"trained in a stack of {r['stacked']} networks at once: the stack took "
                f"{r['stack_seconds']:.1f} s")
    return f"trained alone in {r.get('stack_seconds', r['seconds']):.1f} s"


def _scatter(rows: list[dict], x: str, x_title: str, log_x: bool, title: str | None, height: int,
             front: bool) -> go.Figure:
    fig = go.Figure()
    groups: dict[tuple, list[int]] = {}
    families = len({rows[i].get("family", "MLP") for i in _validated(rows)}) > 1  # both: colour by family
    for i in _validated(rows):
        key = rows[i].get("family", "MLP") if families else rows[i]["activation"]
        groups.setdefault((key, rows[i]["depth"]), []).append(i)
    for (key, depth), idx in sorted(groups.items()):
        pts = [rows[i] for i in idx]
        errors = [p["validation_std"] * 100 for p in pts] if any(p["seeds"] > 1 for p in pts) else None
        color = FAMILY_COLORS.get(key, "#888888") if families else ACTIVATIONS[key].color
        fig.add_trace(go.Scatter(
            x=[p[x] for p in pts], y=[p["validation_accuracy"] * 100 for p in pts], mode="markers",
            name=f"{key}, {depth} hidden layer{'s' * (depth != 1)}", customdata=idx,
            marker=dict(color=color, symbol=DEPTH_SYMBOLS.get(depth, "x"),
                        size=13, line=dict(width=1, color="white")),
            error_y=dict(type="data", array=errors, visible=True, thickness=1.2) if errors else None,
            hovertext=[_hover(p) for p in pts], hoverinfo="text"))
    if front:  # the front of this chart's cost (parameters, or multiply-adds)
        marked = mark_pareto([dict(rows[i]) for i in _validated(rows)], cost=x)
        pareto = sorted((r for r in marked if r["pareto"]), key=lambda r: r[x])
        if pareto:
            fig.add_trace(go.Scatter(x=[r[x] for r in pareto],
                                     y=[r["validation_accuracy"] * 100 for r in pareto],
                                     mode="lines", line=dict(color=FRONT, width=1.5, dash="dot", shape="hv"),
                                     name="Pareto front", hoverinfo="skip"))
    _layout(fig, title, height)
    fig.update_layout(showlegend=True, legend=dict(font=dict(size=FONT_SIZE - 2, color=TEXT)),
                      clickmode="event+select", dragmode="pan")
    fig.update_xaxes(title=x_title, type="log" if log_x else "linear")
    fig.update_yaxes(title=VALIDATION)
    return fig


def accuracy_vs_parameters(rows: list[dict], title: str | None = None, height: int = 460) -> go.Figure:
    """Validation accuracy against parameter count (log x): colour by activation, marker by depth, the
    Pareto front dotted (the most accurate network on validation for each budget of parameters)."""
    return _scatter(rows, "parameters", "parameters (log scale)", True, title, height, front=True)


def accuracy_vs_macs(rows: list[dict], title: str | None = None, height: int = 460) -> go.Figure:
    """Validation accuracy against multiply-adds to classify one image (log x), its own Pareto front: a
    CNN has few parameters but reuses each many times, so what it costs to run is this axis."""
    rows = [r if r.get("macs") else {**r, "macs": r["parameters"]} for r in rows]  # old records: MLPs
    return _scatter(rows, "macs", "multiply-adds an image (log scale)", True, title, height, front=True)


def accuracy_vs_time(rows: list[dict], title: str | None = None, height: int = 460) -> go.Figure:
    """Validation accuracy against the training time measured: the wall time of the stack each network
    trained in (networks of one shape train together, so their time is one measurement, not one each)."""
    return _scatter(rows, "stack_seconds", "seconds its stack took",
                    False, title, height, front=False)


def width_depth_heatmaps(rows: list[dict], title: str | None = None, height: int = 380) -> go.Figure:
    """Mean validation accuracy by first-layer width (x) and depth (y), one panel per activation; the
    best of the configs in a cell (over inits, learning rates and the other axes)."""
    rows = [rows[i] for i in _validated(rows) if rows[i]["width"] is not None]  # a width: hidden layers
    if not rows:
        return _layout(go.Figure(), title, height)
    families = len({r.get("family", "MLP") for r in rows}) > 1  # then a panel per family and activation
    panels = list(dict.fromkeys((r.get("family", "MLP"), r["activation"]) for r in rows))
    widths = sorted({r["width"] for r in rows})
    depths = sorted({r["depth"] for r in rows})
    fig = make_subplots(rows=1, cols=len(panels), horizontal_spacing=0.06, shared_yaxes=True,
                        subplot_titles=[f"{f} · {a}" if families else a for f, a in panels])
    lo = min(r["validation_accuracy"] for r in rows) * 100
    hi = max(r["validation_accuracy"] for r in rows) * 100
    for c, panel in enumerate(panels, 1):
        best = {}
        for r in rows:
            if (r.get("family", "MLP"), r["activation"]) == panel:
                key = (r["depth"], r["width"])
                best[key] = max(best.get(key, -math.inf), r["validation_accuracy"] * 100)
        z = [[best.get((d, w)) for w in widths] for d in depths]
        text = [[f"{v:.1f}" if v is not None else "" for v in row] for row in z]
        fig.add_trace(go.Heatmap(z=z, x=[str(w) for w in widths], y=[str(d) for d in depths], text=text,
                                 texttemplate="%{text}", zmin=lo, zmax=hi, colorscale="Viridis",
                                 showscale=c == len(panels), colorbar=dict(title="%"),
                                 hovertemplate="width %{x}, %{y} layers: validation %{z:.2f}%"
                                               "<extra></extra>"),
                      row=1, col=c)
        fig.update_xaxes(title="width", type="category", row=1, col=c)
    fig.update_yaxes(title="hidden layers", type="category", row=1, col=1)
    return _layout(fig, title, height)


def parallel_coordinates(rows: list[dict], title: str | None = None, height: int = 440) -> go.Figure:
    """Every swept setting as an axis, one line per config coloured by its validation accuracy."""
    rows = [rows[i] for i in _validated(rows)]
    if not rows:
        return _layout(go.Figure(), title, height)
    acts = list(dict.fromkeys(r["activation"] for r in rows))
    stds = sorted({r["weight_std"] or 0 for r in rows})
    lrs = sorted({r["lr"] for r in rows})
    swept = [
        ("layers", [r["depth"] for r in rows], None),
        ("width", [math.log2(r["width"] or 1) for r in rows],  # no hidden layer: drawn at 1
         {math.log2(r["width"] or 1): str(r["width"] or "none") for r in rows}),
        ("activation", [acts.index(r["activation"]) for r in rows], dict(enumerate(acts))),
        ("init std", [stds.index(r["weight_std"] or 0) for r in rows],
         {i: "default" if s == 0 else f"{s:g}" for i, s in enumerate(stds)}),
        ("learning rate", [lrs.index(r["lr"]) for r in rows], {i: f"{lr:g}" for i, lr in enumerate(lrs)}),
        *(_category(rows, label, name, show) for label, name, show in SETTINGS),
    ]
    dims = []
    for label, values, ticks in swept:
        if len(set(values)) > 1:  # an axis for each setting the sweep varied
            dim = dict(label=label, values=values)
            if ticks:
                dim.update(tickvals=list(ticks), ticktext=list(ticks.values()))
            else:
                dim.update(tickvals=sorted(set(values)))
            dims.append(dim)
    ticks = _log_ticks(rows)
    dims += [dict(label="parameters", values=[math.log10(r["parameters"]) for r in rows],
                  range=[ticks[0], ticks[-1]], tickvals=ticks, ticktext=[_si(10 ** t) for t in ticks]),
             dict(label="validation %", values=[r["validation_accuracy"] * 100 for r in rows])]
    accuracy = [r["validation_accuracy"] * 100 for r in rows]
    fig = go.Figure(go.Parcoords(line=dict(color=accuracy, colorscale="Viridis", showscale=True,
                                           colorbar=dict(title="%")),
                                 dimensions=dims, labelfont=dict(size=FONT_SIZE, color=TEXT),
                                 tickfont=dict(size=FONT_SIZE - 3, color=TEXT)))
    _layout(fig, title, height)
    fig.update_layout(margin=dict(l=60, r=40, t=90 if title else 60, b=20))
    return fig


def _log_ticks(rows: list[dict]) -> list[float]:
    lo = math.floor(math.log10(min(r["parameters"] for r in rows)) * 2) / 2
    hi = math.ceil(math.log10(max(r["parameters"] for r in rows)) * 2) / 2
    return [lo + i / 2 for i in range(int((hi - lo) * 2) + 1)]


def _si(n: float) -> str:
    return f"{n / 1e6:.3g}M" if n >= 1e6 else f"{n / 1e3:.3g}k" if n >= 1e3 else f"{n:.0f}"


def _category(rows: list[dict], label: str, name: str, show) -> tuple:
    """An axis of one setting's values in their order (None first: "all" training images last)."""
    values = sorted({setting_value(r, name) for r in rows}, key=lambda v: (v is None, v))
    return (label, [values.index(setting_value(r, name)) for r in rows],
            {i: show(v) for i, v in enumerate(values)})


def _images(n) -> str:
    return "all training images" if n is None else f"{n:,} training images"


def capacity(rows: list[dict], depth: int, activation: str, title: str | None = None,
             height: int = 440, family: str | None = None) -> go.Figure:
    """Training (solid) and validation (dashed) accuracy against parameters (log x) for the networks of
    one depth and activation: one pair of lines per training-set size. As networks grow and the
    training set shrinks, training accuracy climbs away from validation's: the gap is overfitting.
    Where several configs share a size (inits, learning rates, dropout...), the one validation
    chooses is drawn, as it would be chosen."""
    fig = go.Figure()
    mine = [rows[i] for i in _validated(rows)
            if rows[i]["depth"] == depth and rows[i]["activation"] == activation
            and family in (None, rows[i].get("family", "MLP"))
            and rows[i].get("train_accuracy") is not None]
    sizes = sorted({r.get("train_images") for r in mine}, key=lambda n: (n is None, n))
    for c, n in enumerate(sizes):
        chosen: dict[int, dict] = {}
        for r in mine:
            if r.get("train_images") == n:
                best = chosen.get(r["parameters"])
                if best is None or r["validation_accuracy"] > best["validation_accuracy"]:
                    chosen[r["parameters"]] = r
        pts = [chosen[p] for p in sorted(chosen)]
        color = RUN_COLORS[c % len(RUN_COLORS)]
        for split, dash, symbol in (("train", "solid", "circle"), ("validation", "dash", "circle-open")):
            fig.add_trace(go.Scatter(
                x=[p["parameters"] for p in pts], y=[p[f"{split}_accuracy"] * 100 for p in pts],
                mode="lines+markers",
                name=f"{'training' if split == 'train' else 'validation'}, {_images(n)}",
                line=dict(color=color, dash=dash, width=2.5),
                marker=dict(color=color, symbol=symbol, size=10, line=dict(width=2, color=color)),
                hovertext=[_capacity_hover(p, n) for p in pts], hoverinfo="text"))
    _layout(fig, title, height)
    fig.update_layout(showlegend=True, legend=dict(font=dict(size=FONT_SIZE - 2, color=TEXT)))
    fig.update_xaxes(title="parameters (log scale)", type="log")
    fig.update_yaxes(title="accuracy (%): training solid, validation dashed")
    return fig


def _capacity_hover(r: dict, n) -> str:
    gap = (r["train_accuracy"] - r["validation_accuracy"]) * 100
    return (f"<b>{r['network']}</b><br>{r['parameters']:,} parameters, {_images(n)}<br>"
            f"training accuracy {r['train_accuracy']:.2%}"
            f"<br>validation accuracy {r['validation_accuracy']:.2%}"
            f"<br>gap {gap:+.1f} points")
