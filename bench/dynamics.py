"""Item 8: what recording each layer's learning dynamics costs a training epoch (issue 13).

The Train page records them for every run (`dynamics.Recorder`): an epoch of `train.train` at
batch 64 with the recorder against the same epoch without, same network, seeds and batches. The
first epoch is the one measured: its first 200 steps are recorded densely, so it costs the most.
"""

from __future__ import annotations

import time

from bench.measure import interleaved, median
from mnistlab import data, dynamics, network, train
from mnistlab.train_config import TrainConfig

ARCH = network.Architecture((128, 64), ("relu", "relu"))
GOAL = 1.10


def epoch(train_split: data.Split, test_split: data.Split, seed: int, record: bool) -> float:
    model = network.build(ARCH, seed=seed)
    recorder = dynamics.Recorder(test_split) if record else None
    start = time.perf_counter()
    train.train(model, TrainConfig("adam", 1e-3, batch_size=64, epochs=1, batch_seed=seed), train_split,
                recorder=recorder)
    return time.perf_counter() - start


def run(reps: int, quick: bool, log=print) -> dict:
    train_split, test_split = data.load_split(True), data.load_split(False)
    t = interleaved({"without": lambda s: epoch(train_split, test_split, s, False),
                     "with": lambda s: epoch(train_split, test_split, s, True)}, reps, log=log)
    without, with_ = median(t["without"]), median(t["with"])
    return {"without_s": without, "with_s": with_, "ratio": with_ / without, "goal": GOAL,
            "rows_per_epoch": len(dynamics.record_steps(938)),
            "snapshots_per_epoch": len(dynamics.snapshot_steps(938, 1))}
