"""The shift test's figure: each network's probability of the drawn class at every shift, as a heatmap
per network on one colour scale, then one panel of lines over the angle, all networks on it.

Side by side on one drawing (an MLP and a CNN) so the eye compares like with like: the same cells,
the same 0-to-1 colours, the same angles. The numbers come from `shift_test`.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from mnistlab.plot_style import FONT_SIZE, PREDICTED, RUN_COLORS, TEXT, _colored, _layout
from mnistlab.shift_test import ShiftTest

SCALE = "Blues"  # probability 0 white to 1 dark blue: the same on every heatmap
CELL_TEXT_MOST = 2  # networks up to which each cell writes its probability (more, and they crowd)
PANEL_PX = 280  # the heatmaps' side at most: cells of 22-31 px, holding "97" at FONT_SIZE - 4
TITLE_CHARS = 34  # a network's label wraps at this many characters above its heatmap


def _title(test: ShiftTest, color: str, chars: int) -> str:
    """The network's label in its line's colour (wrapped, at most three lines), then what is measured."""
    lines = textwrap.wrap(test.label, chars) or [""]
    if len(lines) > 3:
        lines = lines[:2] + [textwrap.shorten(" ".join(lines[2:]), chars, placeholder=" …")]
    name = "<br>".join(_colored(f"<b>{line}</b>", color) for line in lines)
    return f"{name}<br>P({test.class_name}): still {test.class_name} at {int(test.kept_shift.sum())} of " \
           f"{test.kept_shift.size} shifts"


def _percent(ps: np.ndarray) -> np.ndarray:
    """Each probability as a whole percent, "97"; under 1% blank, so the cells that lost it stay quiet."""
    return np.where(ps < 0.005, "", np.char.mod("%d", np.round(ps * 100).astype(int)))


def shift_figure(tests: Sequence[ShiftTest], title: str | None = None,
                 height: int | None = None) -> go.Figure:
    """One heatmap per network (columns: moved right, rows: moved down, in pixels; the drawing as it
    is outlined in red in the middle), then the probability against the angle for every network."""
    if not tests:
        raise ValueError("The shift test needs at least one network.")
    n = len(tests)
    colors = [RUN_COLORS[i % len(RUN_COLORS)] for i in range(n)]
    chars = max(18, TITLE_CHARS - 5 * (n - 1))
    fig = make_subplots(rows=1, cols=n + 1, horizontal_spacing=0.06 if n <= 2 else 0.04,
                        column_widths=[1.0] * n + [0.75],
                        subplot_titles=[_title(t, c, chars) for t, c in zip(tests, colors)]
                        + ["<b>Turned</b> (not moved)<br>P(its class) against the angle"])
    for i, (t, color) in enumerate(zip(tests, colors), 1):
        shifts = list(t.shifts)
        answers = np.asarray(t.classes, dtype=object)[t.answer_shift]
        fig.add_trace(go.Heatmap(
            x=shifts, y=shifts, z=np.round(t.by_shift, 3), coloraxis="coloraxis", xgap=1, ygap=1,
            customdata=answers, text=_percent(t.by_shift),
            texttemplate="%{text}" if n <= CELL_TEXT_MOST else None,
            textfont=dict(size=FONT_SIZE - 4),
            hovertemplate=f"moved %{{x}} px right, %{{y}} px down<br>P({t.class_name}) = %{{z:.3f}}<br>"
                          f"answer: %{{customdata}}<extra>{t.label[:40]}</extra>"), row=1, col=i)
        fig.add_shape(type="rect", x0=-0.5, x1=0.5, y0=-0.5, y1=0.5, line=dict(color=PREDICTED, width=3),
                      row=1, col=i)
        fig.update_xaxes(title_text="moved right (px)", tickvals=shifts[::2], constrain="domain",
                         row=1, col=i)
        fig.update_yaxes(title_text="moved down (px)" if i == 1 else None, tickvals=shifts[::2],
                         autorange="reversed", scaleanchor=f"x{'' if i == 1 else i}", constrain="domain",
                         row=1, col=i)
        answers = np.asarray(t.classes, dtype=object)[t.answer_angle]
        fig.add_trace(go.Scatter(
            x=list(t.angles), y=np.round(t.by_angle, 3), mode="lines+markers", name=t.label,
            line=dict(color=color, width=3), marker=dict(size=7), customdata=answers,
            hovertemplate=f"turned %{{x:g}}°<br>P({t.class_name}) = %{{y:.3f}}<br>answer: %{{customdata}}"
                          f"<extra>{t.label[:40]}</extra>"), row=1, col=n + 1)
    angles = list(tests[0].angles)
    ticks = sorted({angles[0], 0.0, angles[-1]})  # the panel may be narrow: its ends and the middle
    fig.update_xaxes(title_text="turned (anticlockwise +)", zeroline=False, tickvals=ticks,
                     ticktext=[f"{a:g}°" for a in ticks], tickangle=0, row=1, col=n + 1)
    fig.update_yaxes(range=[-0.03, 1.03], tickvals=[0, 0.5, 1], ticktext=["0", "50%", "100%"],
                     row=1, col=n + 1)
    heatmaps_end = fig.layout[f"xaxis{n}"].domain[1]
    fig.update_layout(coloraxis=dict(
        colorscale=SCALE, cmin=0, cmax=1,
        colorbar=dict(orientation="h", x=heatmaps_end / 2, xanchor="center", y=-0.2, yanchor="top",
                      len=min(0.6, heatmaps_end), thickness=12, tickvals=[0, 0.25, 0.5, 0.75, 1],
                      ticktext=["0", "25%", "50%", "75%", "100%"],
                      title=dict(text="probability of the class (cells: in %)", side="top",
                                 font=dict(size=FONT_SIZE - 2, color=TEXT)),
                      tickfont=dict(size=FONT_SIZE - 2, color=TEXT))))
    title_lines = max(a.text.count("<br>") + 1 for a in fig.layout.annotations)
    top = (60 if title else 20) + 22 * title_lines
    _layout(fig, title, height or PANEL_PX + top + 150)
    fig.update_annotations(font_size=FONT_SIZE - 2)  # the subplot titles: three or four lines each
    fig.update_layout(margin=dict(l=10, r=10, t=top, b=130), plot_bgcolor="white",
                      meta={"figure": "shift test"})
    return fig
