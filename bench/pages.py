"""Item 8: each page's script run on a real server, as one visitor feels it: a rerun that changes
nothing (warm), and the edits visitors make most (a Build layer size, the next Dataset batch, a
stroke on Draw).

One session over Streamlit's websocket protocol (bench/loadgen.py), nobody else on the server:
the time from the BackMsg sent to that run's script_finished. Build is timed with an MLP and with a
CNN (its filters, feature maps and diagram on the page). Everything the server does for a
run is in it (the page script, Streamlit's own work, sending the page); the client's share is a
millisecond or two. Goal: every warm run within 50 ms, so a classroom's reruns stay cheap.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from bench import loadgen
from bench.measure import median

GOAL_MS = 50
PAGES = ("Lesson", "Dataset", "From tensors", "Build", "Train", "Explore", "Draw")


async def _measure(url: str, reps: int) -> dict:
    log: list[loadgen.Action] = []
    s = loadgen.Student(url, 0, log)
    await s.open()
    stroke = loadgen.canvas_stroke()
    out: dict[str, dict] = {}

    async def timed(name: str, step) -> None:
        await step(0)  # warm-up: caches filled, modules loaded
        ms = []
        for i in range(reps):
            action = await step(i + 1)
            if action.error:
                raise RuntimeError(f"{name}: {action.error}")
            ms.append(action.seconds * 1000)
        out[name] = {"p50_ms": median(ms), "max_ms": max(ms), "n": len(ms)}

    for page in PAGES:
        await s.goto(page)
        await timed(f"{page}, warm rerun", lambda i: s.act("rerun", s._client_state()))
        if page == "Dataset":
            await timed("Dataset, next batch", lambda i: s.click("Next batch"))
        elif page == "Build":
            await timed("Build, fc1 size edited", lambda i: s.set_number("fc1 units", 100 + i % 2 * 28))
            for layer in ("Convolution", "Pool", "Convolution", "Pool"):  # ConvNetJS's layout before fc1
                await s.click(layer)
            # its filters, feature maps and diagram drawn (cached) on every run, tabs and all
            await timed("Build, a CNN, warm rerun", lambda i: s.act("rerun", s._client_state()))
        elif page == "Draw":
            await timed("Draw, a stroke (no network yet)", lambda i: s.draw(stroke))
    await s.close()
    return out


def run(reps: int = 3, quick: bool = False) -> dict:
    """Start the app, time each page; {case: {p50_ms, max_ms, n}, "goal_ms": ...}."""
    reps = max(reps, 5 if quick else 15)  # single runs are ~50 ms: many are cheap and steady the median
    models = tempfile.mkdtemp(prefix="mnistlab-bench-pages-")
    log = Path(tempfile.gettempdir()) / f"mnistlab-bench-pages-{os.getpid()}.log"
    server = loadgen.Server(log, env={"MNISTLAB_MODELS": models}).start()
    try:
        cases = loadgen.run(_measure(server.url, reps))
    finally:
        server.stop()
    for name, x in cases.items():
        print(f"  {name}: p50 {x['p50_ms']:.0f} ms (max {x['max_ms']:.0f} ms, {x['n']} runs)")
    return {"cases": cases, "goal_ms": GOAL_MS}
