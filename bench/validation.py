"""Item 10: what checking validation as it trains costs a training epoch (issue 20), and how long the
Lesson's part 2 ("Validation and overfitting") keeps a visitor waiting at its slowest step.

`runs.run` checks the validation split `evaluations` times per epoch (4 by default): the whole of
it at each epoch's end, its first eighth within the epoch. An epoch of `train.train` at batch 64 on
the default 50,000 training images with those checks, against the same epoch without them.

Part 2's steps train (on 1,000 images, so they stay short); the page runs each step's code as the
visitor reaches it, so its slowest step is a wait a class sits through.
"""

from __future__ import annotations

import time

from bench.measure import interleaved, median
from mnistlab import data, lesson, lesson_validation, network, plots, splits, train
from mnistlab.train_config import TrainConfig

ARCH = network.Architecture((128, 64), ("relu", "relu"))
GOAL = 1.10
STEP_GOAL_S = 15.0  # the longest a page may keep a class waiting on one step


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
    out = {"without_s": without, "with_s": with_, "ratio": with_ / without, "goal": GOAL,
           "training_images": len(learn), "validation_images": len(validation), "evaluations": 4}
    if not quick:
        out.update(lesson_steps())
    return out


def lesson_steps() -> dict:
    """Each of part 2's steps run once in order, as the Lesson page runs them (one namespace)."""
    ns = {"__name__": "__lesson__", "view_classify": plots.view_classify}
    seconds = {}
    for step in lesson_validation.STEPS:
        start = time.perf_counter()
        lesson._run_cell(step.source(), ns)
        seconds[step.number] = time.perf_counter() - start
    slowest = max(seconds, key=seconds.get)
    return {"lesson_step_s": seconds, "slowest_step": slowest, "slowest_step_s": seconds[slowest],
            "step_goal_s": STEP_GOAL_S}
