"""9. Sweep throughput: a sweep on the local engine (stacked, as `python -m mnistlab sweep` runs it)
against the same trials trained one after another with `runs.run`; and each trial's accuracy both ways.

Both sides get the whole machine, each in its best way, and are timed by the clock on the wall
(training, evaluation, bookkeeping): the sweep with a stack on each core, each on one torch thread,
as the CLI trains; one by one in this process's main thread, at one torch thread (as the CLI and the
app train) and at one per core (torch's own default), the faster of the two counting.
Also timed: the sweep with one slot, as the app runs it on a two-core server (a core kept for pages).

9d. The same sweep with dropout 0.2 in every network (`run_dropout`): a stack draws one mask per layer
for all its members, so stacking should gain as much as without dropout.
"""

from __future__ import annotations

import os
import tempfile

import torch

from bench.measure import interleaved, median
from mnistlab import data, jobs, runs, sweep, sweep_db, sweep_run

GOAL = 3.0  # trial-epochs per minute, stacked ÷ one by one
GOAL_POINTS = 0.3  # each trial's test accuracy, stacked vs alone
# A classroom's first sweep: 2 depths × 2 widths × 2 activations × 2 inits, 3 seeds each: 48 trials.
SETTINGS = dict(depths="1,2", widths="16,64", activations="relu,sigmoid", inits=["default", "0.1"], seeds=3,
                epochs=1)
SMALL = dict(depths="1", widths="16", activations="relu,sigmoid", epochs=1)  # Explore's smallest: 2 trials
GOAL_ESTIMATE = 1.5  # the estimate within this factor of the wall clock, either way
QUICK_IMAGES = 6_000
DROPOUT = 0.2  # 9d: every network of the sweep with this dropout


def swept(settings: sweep.SweepSettings, slots: int, train_split, test_split) -> dict[str, float]:
    """A sweep on the local engine with `slots` slots, each training on one torch thread as the CLI and
    the app train; each trial's test accuracy by its key."""
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as folder:
        store = sweep_db.SweepDatabase(folder)
        s = sweep_run.Sweep(settings, train_split, test_split, store, queue=jobs.Queue(slots),
                            engine=jobs.LocalEngine(slots))
        s.start().wait()
        store.close()
        if s.error:
            raise s.error
        return {r["key"]: r["test_accuracy"] for r in s.records}


def one_by_one(trials: list, threads: int, train_split, test_split) -> dict[str, float]:
    """The same trials trained one after another with `runs.run` at `threads` torch threads; each
    trial's test accuracy by its key."""
    torch.set_num_threads(threads)
    return {t.key: runs.run(t.network, t.config, train_split, test_split).accuracy for t in trials}


def timed(cases: dict, reps: int, log=print) -> dict[str, float]:
    """Each case's median seconds, the cases interleaved; torch's thread count, which they set, restored."""
    own_threads = torch.get_num_threads()
    try:
        return {name: median(t) for name, t in interleaved(cases, reps, log=log).items()}
    finally:
        torch.set_num_threads(own_threads)


def run(reps: int, quick: bool, log=print) -> dict:
    settings = sweep.SweepSettings.of(**SETTINGS, train_images=QUICK_IMAGES if quick else None)
    train_split, test_split = data.load_split(True), data.load_split(False)
    n = settings.train_images or len(train_split) - settings.base.validation  # the images each trial learns
    trials = settings.trials()
    cores = os.cpu_count() or 1
    app_slots = jobs.MAX_TRAINING_AT_ONCE
    accuracy: dict[str, dict[str, float]] = {"stacked": {}, "alone": {}}

    def stacked(slots: int):
        accuracy["stacked"] = swept(settings, slots, train_split, test_split)

    def alone(threads: int, record: bool):
        accuracies = one_by_one(trials, threads, train_split, test_split)
        if record:
            accuracy["alone"] = accuracies

    cases = {f"stacked, {cores} slots": lambda _: stacked(cores),
             "alone, 1 thread": lambda _: alone(1, True)}
    if cores > 1:  # torch's own thread count, whatever --threads says: one by one at its best
        cases[f"alone, {cores} threads"] = lambda _: alone(cores, False)
    if app_slots != cores:
        cases[f"stacked, {app_slots} slot (the app)"] = lambda _: stacked(app_slots)
    log(f"9. sweep throughput: {settings.label()}")
    times = timed(cases, reps, log)
    stacked_s = times[f"stacked, {cores} slots"]
    alone_s = min(t for name, t in times.items() if name.startswith("alone"))
    app_s = times.get(f"stacked, {app_slots} slot (the app)", stacked_s)
    # What the Explore page says before a sweep starts, against the wall clock, for the smallest sweep
    # (start-up is most of it) and for this grid (issue 22: within a factor of 1.5 both ways).
    small = sweep.SweepSettings.of(**SMALL, train_images=settings.train_images)
    small_estimate = sweep_run.estimate_seconds(small.trials(), app_slots, n)
    small_cases = {"small sweep, the app's slots": lambda _: swept(small, app_slots, train_split, test_split)}
    small_s = timed(small_cases, reps, log)["small sweep, the app's slots"]
    app_estimate = sweep_run.estimate_seconds(trials, app_slots, n)
    trial_epochs = settings.n_trials * settings.epochs
    diffs = [abs(accuracy["stacked"][k] - accuracy["alone"][k]) * 100 for k in accuracy["alone"]]
    return {"sweep": {"settings": settings.label(), "trials": settings.n_trials, "train_images": n,
                      "cores": cores, "times_s": times, "stacked_s": stacked_s, "alone_s": alone_s,
                      "stacked_per_minute": trial_epochs / stacked_s * 60,
                      "alone_per_minute": trial_epochs / alone_s * 60, "ratio": alone_s / stacked_s,
                      "app_slots": app_slots, "app_ratio": alone_s / app_s,
                      # what the Explore page says before it starts, against what it took
                      "app_estimate_s": app_estimate, "app_s": app_s,
                      "small_trials": small.n_trials, "small_estimate_s": small_estimate, "small_s": small_s,
                      "goal_estimate": GOAL_ESTIMATE,
                      "goal": GOAL, "max_difference_points": max(diffs), "goal_points": GOAL_POINTS,
                      "identical_accuracies": sum(d == 0 for d in diffs)}}


def run_dropout(reps: int, quick: bool, log=print) -> dict:
    """9d: bench 9's sweep with dropout in every network, stacked on every core against one by one
    (at one torch thread and at one per core, the faster counting); and each trial's accuracy both ways."""
    settings = sweep.SweepSettings.of(**SETTINGS, dropouts=str(DROPOUT),
                                      train_images=QUICK_IMAGES if quick else None)
    train_split, test_split = data.load_split(True), data.load_split(False)
    cores = os.cpu_count() or 1
    trials = settings.trials()
    accuracy: dict[str, dict[str, float]] = {"stacked": {}, "alone": {}}

    def stacked():
        accuracy["stacked"] = swept(settings, cores, train_split, test_split)

    def alone(threads: int):
        accuracy["alone"] = one_by_one(trials, threads, train_split, test_split)

    cases = {f"dropout {DROPOUT:g}, stacked, {cores} slots": lambda _: stacked(),
             f"dropout {DROPOUT:g}, alone, 1 thread": lambda _: alone(1)}
    if cores > 1:
        cases[f"dropout {DROPOUT:g}, alone, {cores} threads"] = lambda _: alone(cores)
    log(f"9d. sweep throughput with dropout: {settings.label()}")
    times = timed(cases, reps, log)
    stacked_s = times[f"dropout {DROPOUT:g}, stacked, {cores} slots"]
    alone_s = min(t for name, t in times.items() if "alone" in name)
    trial_epochs = settings.n_trials * settings.epochs
    diffs = [abs(accuracy["stacked"][k] - accuracy["alone"][k]) * 100 for k in accuracy["alone"]]
    return {"sweep_dropout": {"settings": settings.label(), "dropout": DROPOUT, "trials": settings.n_trials,
                              "cores": cores, "times_s": times, "stacked_s": stacked_s, "alone_s": alone_s,
                              "stacked_per_minute": trial_epochs / stacked_s * 60,
                              "alone_per_minute": trial_epochs / alone_s * 60, "ratio": alone_s / stacked_s,
                              "goal": GOAL, "max_difference_points": max(diffs), "goal_points": GOAL_POINTS,
                              "identical_accuracies": sum(d == 0 for d in diffs)}}
