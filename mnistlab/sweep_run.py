"""Running a sweep: its stacks as jobs of the app's one queue (on the local or the Ray engine), in
the order that finishes soonest, each finished trial written at once (`sweep_db`), and how long
what is left will take."""

from __future__ import annotations

import math
import threading
import time
import weakref
from dataclasses import dataclass, field

from mnistlab import jobs, stacked
from mnistlab.data import Split
from mnistlab.sweep import SweepSettings, Trial
from mnistlab.sweep_db import SweepDatabase
from mnistlab.sweep_results import summarize

# -- how long it takes -----------------------------------------------------------------------------

STEP_OVERHEAD_S = 0.35e-3  # a stack's step beyond its arithmetic at batch 64 (README, Benchmarks)
MEMBER_OVERHEAD_S = 0.02e-3  # and per member (activations, loss, optimizer on more numbers)
# and per hidden layer with dropout (a mask drawn and applied, forward and back) or batch norm (its
# statistics, forward and back): measured against a step without, at widths 16 (stacks of 2)
DROPOUT_LAYER_S = 0.15e-3
BATCH_NORM_LAYER_S = 0.2e-3
FLOPS = 90e9  # a core's fp32 rate in these matmuls (about MKL's peak on one core here)
CONV_FLOPS = 20e9  # and in a CNN's convolutions at batch 64 (bench 11c: about 10 GMAC/s a core)


def _arithmetic_seconds(arch) -> float:
    """Seconds of one image's forward pass at those rates: its linear layers' multiply-adds (about its
    parameters, for an MLP) at FLOPS, its convolutions' at CONV_FLOPS."""
    conv = sum(row["macs"] for row in arch.table() if row["layer"] == "conv")
    linear = arch.n_parameters if not arch.is_cnn else arch.macs - conv
    return 2 * (linear / FLOPS + conv / CONV_FLOPS)


EVALUATION_OVERHEAD_S = 0.1  # a stack's scoring beyond its arithmetic, and its bookkeeping


def stack_seconds(group: list[Trial], images: int | None = None) -> float:
    """About how long one stack takes on one core (`images`: the data set's training images): its
    steps, each an overhead (more with dropout or batch norm) plus arithmetic (forward and weight
    gradients: about 4 flops per parameter per image), its validation checks, then the training,
    validation and test sets scored."""
    t, k = group[0], len(group)
    c, arch = t.config, t.arch
    steps = math.ceil(_learning_images(c, images) / c.batch_size) * c.epochs
    arithmetic = 2 * c.batch_size * _arithmetic_seconds(arch) * k  # forward and weight gradients
    layers = (DROPOUT_LAYER_S * sum(p > 0 for p in arch.dropout)
              + BATCH_NORM_LAYER_S * len(arch.hidden) * arch.batch_norm)
    learning = steps * (STEP_OVERHEAD_S + MEMBER_OVERHEAD_S * k + layers + arithmetic)
    return learning + _evaluation_seconds(group, images)


def plan(trials: list[Trial], slots: int = 1, images: int | None = None) -> list[list[Trial]]:
    """`trials` as the stacks to train, the longest first (so that with several slots the last to
    finish is a short one); where there are fewer stacks than slots, the longest are halved until
    every slot has one (a stack trains on one core)."""
    groups = stacked.stacks(trials)
    while len(groups) < slots:
        splittable = [g for g in groups if len(g) > 1]
        if not splittable:
            break
        longest = max(splittable, key=lambda g: stack_seconds(g, images))
        groups.remove(longest)
        half = (len(longest) + 1) // 2
        groups += [longest[:half], longest[half:]]
    return sorted(groups, key=lambda g: -stack_seconds(g, images))


START_S = 0.3  # a sweep's own start: its thread, the queue, the database, the first stack's build
PACE_STEPS = 24  # steps timed to learn this machine's pace (about 30 ms)
PACE_EVERY_S = 60.0  # how long a measured pace is trusted: a server's load comes and goes
_pace = {"at": -math.inf, "factor": 1.0}
_pace_lock = threading.Lock()


def pace() -> float:
    """How many times slower than `stack_seconds`' model this machine trains just now: a few steps of
    a small stack, timed at most once a minute. A busy server (other visitors training, a classroom's
    pages) runs everything slower, and the estimate should say so before a sweep starts."""
    with _pace_lock:
        if time.monotonic() - _pace["at"] < PACE_EVERY_S:
            return _pace["factor"]
        import torch

        from mnistlab import train
        from mnistlab.network import Architecture, Network, build_network
        from mnistlab.sweep import Trial
        from mnistlab.train_config import TrainConfig

        config = TrainConfig(epochs=1, train_images=PACE_STEPS * 64)  # what `stack_seconds` models
        # Timing only: the numbers' values do not matter, their shapes and the work do.
        g = torch.Generator().manual_seed(0)
        shape, classes = config.data.image_shape[1:], config.data.n_classes
        images = torch.randint(0, 256, (config.train_images, *shape), dtype=torch.uint8, generator=g)
        split = Split(images, torch.randint(0, classes, (len(images),), generator=g), dataset=config.data)
        trials = [Trial(Network(Architecture((16,), act)), config) for act in ("relu", "sigmoid")]
        stack = stacked.Stack([build_network(t.network) for t in trials], [t.arch for t in trials], "cpu")
        train.train(stack, config, split)  # once to warm up: the first steps allocate what later ones reuse
        start = time.perf_counter()
        train.train(stack, config, split)
        took = time.perf_counter() - start
        modelled = stack_seconds(trials, len(images)) - _evaluation_seconds(trials, len(images))
        _pace.update(at=time.monotonic(), factor=max(0.5, took / modelled))
        return _pace["factor"]


def _learning_images(c, images: int | None) -> int:
    """The images a trial learns from: its own number, else its data set's training images (or
    `images`) less those that validate."""
    return c.train_images or (images or c.data.train_size) - c.validation


def _evaluation_seconds(group: list[Trial], images: int | None = None) -> float:
    """A stack's scoring: validation checked within and at the end of each epoch, then the training,
    validation and test sets scored once (the test set: its data set's)."""
    t, k = group[0], len(group)
    c = t.config
    checked = c.validation * (2 - 1 / c.evaluations) * c.epochs  # whole at each epoch's end, parts within
    scored = c.data.test_size + _learning_images(c, images) + c.validation + checked
    return EVALUATION_OVERHEAD_S + scored * _arithmetic_seconds(t.arch) * k


def estimate_seconds(trials: list[Trial], slots: int = 1, images: int | None = None,
                     measured_pace: bool = True) -> float:
    """About how long `trials` take on `slots` cores, trained in stacks, from start to the last
    result: the sweep's start, and each stack at this machine's pace just now (see `pace`)."""
    if not trials:
        return 0.0
    factor = pace() if measured_pace else 1.0
    costs = [stack_seconds(g, images) * factor for g in plan(trials, slots, images)]
    return START_S + max(sum(costs) / max(1, slots), max(costs, default=0.0))



# -- running one -----------------------------------------------------------------------------------

class StackJob(jobs.Job):
    """One stack of a sweep's trials as a job of the queue; `result` is each trial's `Trained`."""

    name = "mnistlab-sweep"

    def __init__(self, trials: list[Trial], train_split: Split, test_split: Split, **job_kwargs):
        super().__init__(**job_kwargs)
        self.trials, self.splits = trials, (train_split, test_split)

    def _run(self, engine):
        return engine.train_group(self.trials, *self.splits, self._report, self._stop)


@dataclass
class SweepProgress:
    finished: int
    total: int
    seconds_left: float | None

    def text(self) -> str:
        """E.g. "17 of 36 trained, about 40 s left"."""
        left = "" if self.seconds_left is None else f", {about(self.seconds_left)} left"
        return f"{self.finished} of {self.total} trained{left}"


def duration_text(seconds: float) -> str:
    """E.g. "40 s", "2 min 05 s", "under a second"."""
    if seconds < 1:
        return "under a second"
    seconds = round(seconds)
    return f"{seconds} s" if seconds < 90 else f"{seconds // 60} min {seconds % 60:02d} s"


def about(seconds: float) -> str:
    """A rough duration as a sentence says it: "about 40 s", "less than a second"."""
    return "less than a second" if seconds < 1 else f"about {duration_text(seconds)}"


@dataclass
class Sweep(jobs.Background):
    """A sweep running in the background: its stacks go to the queue (at most as many at once as
    the queue has slots, so other owners' jobs keep their turns), and each finished trial is written
    to `sweep_db` at once and appended to `records`.

    Trials already in the store are not trained again. `stop()` keeps what has finished. The sweep is
    saved for `saved_for` (a visitor's id, `sweep_db.COMMAND_LINE`), in `class_code`'s class if given.
    """

    settings: SweepSettings
    train_split: Split
    test_split: Split
    sweep_db: SweepDatabase
    owner: jobs.Owner | None = None
    saved_for: str | None = None
    class_code: str | None = None
    queue: jobs.Queue | None = None
    engine: object = None
    on_trial: object = None  # called with each new record (the CLI's progress bar)
    records: list[dict] = field(default_factory=list)
    error: Exception | None = None
    stop_reason: str = ""

    def __post_init__(self):
        self.queue = self.queue or jobs.default_queue()
        self.engine = self.engine or jobs.default_engine()
        self.id = self.sweep_db.add_sweep(self.settings, self.saved_for, self.class_code)
        self.trials = self.settings.trials()
        self.records = self.sweep_db.records(self.id)
        done = {r["key"] for r in self.records}
        self.missing = [t for t in self.trials if t.key not in done]
        self.resumed = len(self.trials) - len(self.missing)  # finished in an earlier start
        self._stop = threading.Event()
        self._active: list[StackJob] = []
        self._fair_key = object()  # the sweep's own turn in the queue, beside its owner's other runs
        # Held weakly, like a job's owner: once the visitor's session is gone, the sweep stops.
        self._owner = weakref.ref(self.owner) if self.owner is not None else None
        self.owner = None
        self._started = None
        self._trained_here = 0
        self._thread = threading.Thread(target=self._work, name="mnistlab-sweep-driver", daemon=True)
        self._train_images = len(self.train_split)  # the data set's: each trial's config picks its own

    def start(self) -> Sweep:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def _work(self) -> None:
        try:
            train_split = self.train_split
            waiting = plan(self.missing, self.queue.slots, self._train_images)
            slots = self.queue.slots
            while (waiting or self._active) and not self._stop.is_set():
                while waiting and len(self._active) < slots and self._submit(waiting.pop(0), train_split):
                    pass
                for job in [j for j in self._active if j.wait(0.05)]:
                    self._active.remove(job)
                    self._finish(job)
            for job in self._active:
                job.stop()
            for job in self._active:
                job.wait()
        except Exception as e:  # shown by whoever started the sweep
            self.error = e
            for job in self._active:
                job.stop()

    def _submit(self, trials: list[Trial], train_split: Split) -> bool:
        """Queue one stack; False (and the sweep stops) once its owner, the visitor, is gone."""
        owner = self._owner() if self._owner is not None else None
        if self._owner is not None and owner is None:
            self.stop_reason = self.stop_reason or "abandoned"
            self._stop.set()
            return False
        self._active.append(StackJob(trials, train_split, self.test_split, owner=owner, queue=self.queue,
                                     engine=self.engine, fair_key=self._fair_key).start())
        return True

    def _finish(self, job: StackJob) -> None:
        if job.error is not None:
            if job.stop_reason:
                self.stop_reason = self.stop_reason or job.stop_reason
                self._stop.set()
                return
            raise job.error
        if job.result is None:  # stopped: an unfinished trial has no result
            self.stop_reason = self.stop_reason or job.stop_reason or "stopped"
            self._stop.set()
            return
        for trial, result in zip(job.trials, job.result):
            record = trial.record(result, self.engine.name)
            self.sweep_db.add_trial(self.id, record)
            self.records.append(record)
            self._trained_here += 1
            if self.on_trial is not None:
                self.on_trial(record)

    def stop(self) -> None:
        super().stop()
        for job in list(self._active):
            job.stop()

    @property
    def waiting(self) -> bool:
        """True while none of its trials has a slot (other jobs hold them all)."""
        return bool(self._active) and all(j.waiting for j in self._active)

    def progress(self) -> SweepProgress:
        finished, total = len(self.records), len(self.trials)
        done = {r["key"] for r in self.records}
        images, slots = self._train_images, self.queue.slots
        left = None if self.done else estimate_seconds([t for t in self.missing if t.key not in done],
                                                       slots, images, measured_pace=not self._trained_here)
        if left is not None and self._trained_here and self._started is not None:
            # the estimate at the pace this machine has kept so far (the longest stacks go first)
            so_far = estimate_seconds([t for t in self.missing if t.key in done], slots, images,
                                      measured_pace=False)
            left *= (time.monotonic() - self._started) / max(so_far, 1e-6)
        return SweepProgress(finished, total, None if finished == total else left)

    def summary(self) -> list[dict]:
        return summarize(self.records)


