"""Item 10: what checking validation as it trains costs a training epoch (issue 20).

`runs.run` checks the validation split `evaluations` times per epoch (4 by default): the whole of
it at each epoch's end, its first eighth within the epoch. An epoch of `train.train` at batch 64 on
the default 50,000 training images with those checks, against the same epoch without them.
"""

from __future__ import annotations

import time

from bench.measure import interleaved, median
from mnistlab import data, network, splits, train
from mnistlab.train_config import TrainConfig

ARCH = network.Architecture((128, 64), ("relu", "relu"))
GOAL = 1.10


def epoch(learn: data.Split, validation: data.Split | None, seed: int, evaluations: int = 4) -> float:
    model = network.build(ARCH, seed=seed)
    config = TrainConfig(batch_size=64, epochs=1, batch_seed=seed, evaluations=evaluations)
    start = time.perf_counter()
    train.train(model, config, learn, validation=validation)
    return time.perf_counter() - start


def run(reps: int, quick: bool, log=print) -> dict:
    learn, validation = splits.training_splits(data.load_split(True), TrainConfig())
    if quick:
        learn = learn.first(12_800)
    t = interleaved({"without": lambda s: epoch(learn, None, s),
                     "with": lambda s: epoch(learn, validation, s)}, reps, log=log)
    without, with_ = median(t["without"]), median(t["with"])
    return {"without_s": without, "with_s": with_, "ratio": with_ / without, "goal": GOAL,
            "training_images": len(learn), "validation_images": len(validation), "evaluations": 4}
