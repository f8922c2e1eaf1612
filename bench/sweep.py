"""9. Sweep throughput: a sweep's trials stacked (the local engine, as the app runs them) against the
same trials trained one after another with `train.run`; and each trial's accuracy both ways."""

from __future__ import annotations

import tempfile

from bench.measure import Seconds, interleaved, median
from mnistlab import data, jobs, sweep, train

GOAL = 3.0  # trial-epochs per minute, stacked ÷ one by one
GOAL_POINTS = 0.3  # each trial's test accuracy, stacked vs alone
# A classroom's first sweep: 2 depths × 2 widths × 2 activations × 2 inits, 3 seeds each: 48 trials.
SETTINGS = dict(depths="1,2", widths="16,64", activations="relu,sigmoid", inits=["default", "0.1"], seeds=3,
                epochs=1)
QUICK_IMAGES = 6_000


def run(reps: int, quick: bool, log=print) -> dict:
    settings = sweep.SweepSettings(**SETTINGS, train_images=QUICK_IMAGES if quick else None)
    train_split, test_split = data.load_split(True), data.load_split(False)
    n = settings.train_images or len(train_split)
    head = data.Split(train_split.images[:n], train_split.labels[:n], True)
    trials = settings.trials()
    accuracy: dict[str, dict[str, float]] = {"stacked": {}, "alone": {}}

    def stacked_case(_):
        with tempfile.TemporaryDirectory() as folder:
            store = sweep.SweepStore(folder)
            s = sweep.Sweep(settings, train_split, test_split, store, queue=jobs.Queue(1),
                            engine=jobs.LocalEngine())
            s.start().wait()
            store.close()
            if s.error:
                raise s.error
            accuracy["stacked"] = {r["key"]: r["test_accuracy"] for r in s.records}
            return Seconds(sum(r["seconds"] for r in s.records))  # training time, as one by one

    def alone_case(_):
        took = 0.0
        for t in trials:
            r = train.run(t.arch, t.init, t.seed, t.config, head, test_split)
            took += r.seconds
            accuracy["alone"][t.key] = r.accuracy
        return Seconds(took)

    log(f"9. sweep throughput: {settings.label()}")
    times = interleaved({"stacked": stacked_case, "alone": alone_case}, reps, log=log)
    trial_epochs = settings.n_trials * settings.epochs
    stacked_s, alone_s = median(times["stacked"]), median(times["alone"])
    diffs = [abs(accuracy["stacked"][k] - accuracy["alone"][k]) * 100 for k in accuracy["alone"]]
    return {"sweep": {"settings": settings.label(), "trials": settings.n_trials, "train_images": n,
                      "stacked_s": stacked_s, "alone_s": alone_s,
                      "stacked_per_minute": trial_epochs / stacked_s * 60,
                      "alone_per_minute": trial_epochs / alone_s * 60, "ratio": alone_s / stacked_s,
                      "goal": GOAL, "max_difference_points": max(diffs), "goal_points": GOAL_POINTS}}
