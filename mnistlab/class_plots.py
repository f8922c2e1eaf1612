"""The teacher's chart of a class: every submitted network's public score against its parameters (log
x), coloured by student, with the class's Pareto front (the best score each budget of parameters
bought). House style from `plot_style`; the front from `sweep_results.mark_pareto`."""

from __future__ import annotations

import html
import math

import plotly.graph_objects as go
from plotly.colors import qualitative

from mnistlab.classes import Submission
from mnistlab.plot_style import FONT_SIZE, RUN_COLORS, TEXT, _layout
from mnistlab.sweep_plots import FRONT, _si
from mnistlab.sweep_results import mark_pareto

# A colour per student, the runs' colours first; a class larger than the palette goes on in other shapes
PALETTE = RUN_COLORS + [c for c in qualitative.Dark24 if c.lower() not in {r.lower() for r in RUN_COLORS}]
SYMBOLS = ("circle", "diamond", "square", "triangle-up")


def submissions_chart(subs: tuple[Submission, ...], title: str | None = None, height: int = 480) -> go.Figure:
    """One point per submission still on the board (the teacher's exact public score), a colour per
    student, the Pareto front dotted."""
    shown = [s for s in subs if not s.removed]
    fig = go.Figure()
    handles = list(dict.fromkeys(s.handle for s in sorted(shown, key=lambda s: s.submitted)))
    for i, handle in enumerate(handles):
        own = [s for s in shown if s.handle == handle]
        name = html.escape(handle)  # Plotly reads tags in text: a handle is shown as typed, never as markup
        fig.add_trace(go.Scatter(
            x=[s.parameters for s in own], y=[_score(s) * 100 for s in own], mode="markers", name=name,
            marker=dict(color=PALETTE[i % len(PALETTE)], size=14, line=dict(width=1, color="white"),
                        symbol=SYMBOLS[i // len(PALETTE) % len(SYMBOLS)]),
            hovertext=[f"<b>{name}</b> · submission {s.id}<br>{html.escape(s.architecture)}<br>"
                       f"{s.parameters:,} parameters<br>public score {_score(s):.2%}" for s in own],
            hoverinfo="text"))
    rows = mark_pareto([{"parameters": s.parameters, "score": _score(s)} for s in shown], value="score")
    front = sorted((r for r in rows if r["pareto"]), key=lambda r: r["parameters"])
    if front:
        fig.add_trace(go.Scatter(x=[r["parameters"] for r in front], y=[r["score"] * 100 for r in front],
                                 mode="lines+markers",
                                 line=dict(color=FRONT, width=2, dash="dot", shape="hv"),
                                 marker=dict(size=22, color="rgba(0,0,0,0)", line=dict(width=2, color=FRONT)),
                                 name="Pareto front", hoverinfo="skip"))
    _layout(fig, title, height)
    fig.update_layout(showlegend=True, legend=dict(font=dict(size=FONT_SIZE - 2, color=TEXT)))
    sizes = [s.parameters for s in shown] or [1]
    lo, hi = min(sizes) / 1.6, max(sizes) * 1.6  # room around the first and last points
    ticks = [m * 10**e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
             for m in (1, 2, 5) if lo <= m * 10**e <= hi]
    fig.update_xaxes(title="parameters (log scale)", type="log", range=[math.log10(lo), math.log10(hi)],
                     tickvals=ticks, ticktext=[_si(t) for t in ticks])
    fig.update_yaxes(title="public score (%)")
    return fig


def _score(s: Submission) -> float:
    return s.public if s.public is not None else s.shown
