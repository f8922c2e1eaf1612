"""Item 5: from a drawing on the canvas to 10 class probabilities, alone and while another thread trains.

The drawing is a real MNIST test digit enlarged onto the Draw page's 280×280 RGBA canvas (white ink
on black, as the page draws), so preprocessing crops, scales and centers real strokes.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import torch
from PIL import Image

from bench.measure import median, percentile
from mnistlab import data, network, train, train_config
from mnistlab.train_config import TrainConfig

CANVAS = 280


def canvas_drawing(digit_u8: np.ndarray, side: int = 200) -> np.ndarray:
    big = np.asarray(Image.fromarray(digit_u8).resize((side, side), Image.Resampling.BILINEAR))
    rgba = np.zeros((CANVAS, CANVAS, 4), np.uint8)
    rgba[..., 3] = 255
    top = (CANVAS - side) // 2
    for c in range(3):
        rgba[top:top + side, top:top + side, c] = big
    return rgba


def latencies(model, drawing: np.ndarray, n: int) -> list[float]:
    from mnistlab import preprocess

    out = []
    for _ in range(n):
        start = time.perf_counter()
        prepared = preprocess.preprocess(drawing)
        with torch.no_grad():
            network.probabilities(model, prepared.input())
        out.append(time.perf_counter() - start)
    return out


def run(reps: int, quick: bool, log=print) -> dict:
    try:
        from mnistlab import preprocess  # noqa: F401
    except ImportError:
        return {"skipped": "mnistlab.preprocess is not there yet"}
    test_split = data.load_split(train=False)
    train_split = data.load_split(train=True)
    model = network.build(network.Architecture((128, 64), ("relu", "relu")), seed=0).eval()
    drawing = canvas_drawing(test_split.images[0].numpy())
    n = 50 if quick else 400
    latencies(model, drawing, 20)  # warm-up

    def while_training() -> list[float]:
        stop = threading.Event()
        started = threading.Event()

        def trainer():
            busy = network.build(network.Architecture((128, 64), ("relu", "relu")), seed=1)
            config = TrainConfig("adam", 1e-3, batch_size=64, epochs=train_config.MAX_EPOCHS, batch_seed=1)
            train.train(busy, config, train_split, callback=lambda p: started.set(), stop=stop)

        thread = threading.Thread(target=trainer, daemon=True)
        thread.start()
        started.wait()  # the first progress report: training is under way
        try:
            return latencies(model, drawing, n)
        finally:
            stop.set()
            thread.join()

    rounds = {"alone": [], "training": []}
    for r in range(reps):
        for name, fn in (("alone", lambda: latencies(model, drawing, n)), ("training", while_training)):
            xs = fn()
            rounds[name].append({"p50": percentile(xs, 50), "p99": percentile(xs, 99)})
            log(f"  rep {r + 1}/{reps} {name}: p50 {rounds[name][-1]['p50'] * 1e3:.2f} ms, "
                f"p99 {rounds[name][-1]['p99'] * 1e3:.2f} ms ({n} drawings)")
    return {name: {"p50_ms": median([x["p50"] for x in rs]) * 1e3,
                   "p99_ms": median([x["p99"] for x in rs]) * 1e3,
                   "goal_p99_ms": 5 if name == "alone" else 20, "rounds": rs, "samples_per_round": n}
            for name, rs in rounds.items()}
