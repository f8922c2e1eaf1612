"""Sweeps: train a grid (or a random sample) of architectures on equal terms and see which shapes win.

A sweep's settings give its trials (depths × widths × activations × inits × learning rates, each
with 1 to MAX_SEEDS weight seeds); every trial reads the same batches (one batch-order seed), so
they differ only where the settings say. Trials of one shape train together (`stacked`), as jobs
of the app's one queue (`jobs`), on the local or the Ray engine. Each finished trial is written at
once to SQLite under the models folder, so a sweep killed mid-way loses nothing, and the same sweep
started again trains only the trials still missing.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import sqlite3
import statistics
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path

from mnistlab import jobs, network, stacked, store, train
from mnistlab.data import Split
from mnistlab.errors import ConfigError
from mnistlab.share import STD_SCALE

# Caps for a shared classroom server (also in the README's Limits table).
MAX_DEPTH = 4
MAX_SEEDS = 5
MAX_TRIAL_EPOCHS = 5  # epochs of one trial
MAX_TRIALS = 200
MAX_SWEEP_EPOCHS = 400  # trials × epochs: about 5-10 minutes of a 2-core server
WIDTH_RULES = {"same": "the same width in every layer (e.g. 64-64-64)",
               "halving": "halving layer by layer (e.g. 64-32-16)"}
DB_NAME = "sweeps.sqlite"
TRAIN_IMAGES, MIN_TRAIN_IMAGES = 60_000, 1_000


def parse_list(name: str, text, convert=str) -> tuple:
    """"16, 64,256" as a tuple of values; a one-line ConfigError naming `name` otherwise."""
    if isinstance(text, (list, tuple)):
        parts = [str(p).strip() for p in text]
    else:
        parts = [p.strip() for p in str(text).split(",")]
    if parts == [""] or not parts:
        raise ConfigError(f"{name}: give at least one value.")
    if "" in parts:
        raise ConfigError(f"{name}: values are separated by single commas; got {text!r}.")
    out = []
    for p in parts:
        try:
            out.append(convert(p))
        except ConfigError:
            raise
        except (TypeError, ValueError):
            raise ConfigError(f"{name}: {p!r} is not a valid value.") from None
    return tuple(dict.fromkeys(out))  # in the order given, each once


def _whole(name: str, value, lo: int, hi: int) -> int:
    text = str(value).strip()
    if isinstance(value, bool) or not network.whole_number(text) or not lo <= int(text) <= hi:
        raise ConfigError(f"{name} must be a whole number from {lo} to {hi}; got {value!r}.")
    return int(text)


def _std(value) -> float | None:
    if value is None or str(value).strip().lower() in ("default", "none", ""):
        return None
    try:
        std = float(value)
    except (TypeError, ValueError):
        std = math.nan
    if std not in STD_SCALE:
        raise ConfigError(f"Init must be 'default' or a normal std on Build's scale "
                          f"({', '.join(f'{s:g}' for s in STD_SCALE)}); got {value!r}.")
    return std


def widths_for(width: int, depth: int, rule: str) -> tuple[int, ...]:
    """The hidden sizes of a `depth`-layer network built from `width` by `rule` (see WIDTH_RULES)."""
    if rule == "halving":
        return tuple(max(1, width >> i) for i in range(depth))
    return (width,) * depth


@dataclass(frozen=True)
class Trial:
    """One network trained once: an architecture, its init and weight seed, and how it is trained."""

    arch: network.Architecture
    init: network.Init
    seed: int
    config: train.TrainConfig

    @property
    def key(self) -> str:
        """What makes this trial what it is, as text: equal keys, equal results."""
        return json.dumps({"arch": self.arch.to_dict(), "init": self.init.to_dict(), "seed": self.seed,
                           "config": self.config.to_dict()}, sort_keys=True)

    def record(self, result: stacked.Trained, engine: str) -> dict:
        """What a sweep keeps of the trial once trained: one row of its table, one line of its JSON."""
        return {"key": self.key, "hidden": list(self.arch.hidden), "activations": list(self.arch.activations),
                "activation": self.arch.activations[0], "depth": len(self.arch.hidden),
                "width": self.arch.hidden[0], "network": self.arch.label(),
                "parameters": self.arch.n_parameters, "weight_std": self.init.weight_std,
                "init": self.init.label(), "lr": self.config.lr, "seed": self.seed,
                "epochs": self.config.epochs, "batch_size": self.config.batch_size,
                "optimizer": self.config.optimizer, "normalization": self.config.normalization,
                "batch_seed": self.config.seed, "test_accuracy": result.test_accuracy,
                "test_loss": result.test_loss, "train_loss": result.train_loss,
                "seconds": result.seconds, "stacked": result.stacked, "engine": engine,
                "finished": time.time()}


@dataclass(frozen=True)
class SweepSettings:
    """What a sweep tries. Values may be given as text ("16,64,256") or sequences; all are checked,
    and a sweep beyond the server's caps is refused with the cap it exceeds."""

    depths: tuple = (1, 2)
    widths: tuple = (16, 64, 256)
    width_rule: str = "same"
    activations: tuple = ("relu", "sigmoid")
    inits: tuple = (None,)  # None: PyTorch's default; a float: normal(0, std) weights
    lrs: tuple = (1e-3,)
    seeds: int = 1  # weight seeds 0 .. seeds-1 for every config
    epochs: int = 1
    sample: int | None = None  # a random sample of this many configs instead of the full grid
    sample_seed: int = 0
    optimizer: str = "adam"
    batch_size: int = 64
    normalization: str = "lesson"
    batch_seed: int = 0  # every trial reads the same batches in the same order
    train_images: int | None = None  # the first this many training images (None: all 60,000)

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        set_("depths", parse_list("Hidden layers", self.depths,
                                  lambda p: _whole("Hidden layers", p, 1, MAX_DEPTH)))
        set_("widths", parse_list("Widths", self.widths,
                                  lambda p: _whole("A width", p, 1, network.MAX_WIDTH)))
        rule = str(self.width_rule).strip().lower()
        if rule not in WIDTH_RULES:
            raise ConfigError(f"Width rule must be one of {', '.join(WIDTH_RULES)}; got {self.width_rule!r}.")
        set_("width_rule", rule)

        def activation(p):
            name = p.lower()
            if name not in network.ACTIVATIONS:
                raise ConfigError(f"Activations must be among {', '.join(network.ACTIVATIONS)}; got {p!r}.")
            return name

        set_("activations", parse_list("Activations", self.activations, activation))
        inits = self.inits if isinstance(self.inits, (list, tuple)) else str(self.inits).split(",")
        set_("inits", tuple(dict.fromkeys(_std(v) for v in inits)) or (None,))
        set_("lrs", parse_list("Learning rates", self.lrs,
                               lambda p: train.TrainConfig(lr=p).lr))
        set_("seeds", _whole("Seeds per config", self.seeds, 1, MAX_SEEDS))
        set_("epochs", _whole("Epochs per trial", self.epochs, 1, MAX_TRIAL_EPOCHS))
        if self.sample not in (None, "", 0, "0"):
            set_("sample", _whole("Random sample", self.sample, 1, MAX_TRIALS))
        else:
            set_("sample", None)
        set_("sample_seed", network.check_seed(self.sample_seed))
        if self.train_images not in (None, "", 0, "0", TRAIN_IMAGES):
            set_("train_images", _whole("Training images", self.train_images, MIN_TRAIN_IMAGES, TRAIN_IMAGES))
        else:
            set_("train_images", None)
        config = self.config(0)  # checks optimizer, batch size, normalization, batch seed
        set_("optimizer", config.optimizer)
        set_("batch_size", config.batch_size)
        set_("normalization", config.normalization)
        set_("batch_seed", config.seed)
        n = self.n_trials
        if n > MAX_TRIALS:
            raise ConfigError(f"This sweep has {n:,} trials; a sweep may have at most {MAX_TRIALS} on this "
                              f"server. Choose fewer values, fewer seeds, or a random sample.")
        if n * self.epochs > MAX_SWEEP_EPOCHS:
            raise ConfigError(f"This sweep trains {n:,} trials × {self.epochs} epochs = {n * self.epochs:,} "
                              f"trial-epochs; at most {MAX_SWEEP_EPOCHS} are allowed on this server. "
                              f"Choose fewer trials or epochs.")
        self.architectures()  # each within network's caps (parameters)

    def config(self, lr_index: int) -> train.TrainConfig:
        return train.TrainConfig(optimizer=self.optimizer, lr=self.lrs[lr_index], batch_size=self.batch_size,
                                 epochs=self.epochs, seed=self.batch_seed, normalization=self.normalization)

    def architectures(self) -> list[network.Architecture]:
        return [network.Architecture(widths_for(w, d, self.width_rule), a)
                for d in self.depths for w in self.widths for a in self.activations]

    @property
    def grid_size(self) -> int:
        """Configs in the full grid (a config: everything but the seed)."""
        return len(self.depths) * len(self.widths) * len(self.activations) * len(self.inits) * len(self.lrs)

    @property
    def n_configs(self) -> int:
        return min(self.sample, self.grid_size) if self.sample else self.grid_size

    @property
    def n_trials(self) -> int:
        return self.n_configs * self.seeds

    def configs(self) -> list[tuple[network.Architecture, network.Init, train.TrainConfig]]:
        """Every config of the grid, or the random sample of them (the same sample for the same settings)."""
        grid = [(arch, network.Init(weight_std=std), self.config(i))
                for arch in self.architectures() for std in self.inits for i in range(len(self.lrs))]
        if self.sample and self.sample < len(grid):
            picked = sorted(random.Random(self.sample_seed).sample(range(len(grid)), self.sample))
            grid = [grid[i] for i in picked]
        return grid

    def trials(self) -> list[Trial]:
        return [Trial(arch, init, seed, config) for arch, init, config in self.configs()
                for seed in range(self.seeds)]

    def to_dict(self) -> dict:
        return {"depths": list(self.depths), "widths": list(self.widths), "width_rule": self.width_rule,
                "activations": list(self.activations), "inits": list(self.inits), "lrs": list(self.lrs),
                "seeds": self.seeds, "epochs": self.epochs, "sample": self.sample,
                "sample_seed": self.sample_seed, "optimizer": self.optimizer, "batch_size": self.batch_size,
                "normalization": self.normalization, "batch_seed": self.batch_seed,
                "train_images": self.train_images}

    @classmethod
    def from_dict(cls, d: dict) -> SweepSettings:
        if not isinstance(d, dict):
            raise ConfigError("Sweep settings must be a mapping.")
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    @property
    def id(self) -> str:
        """The same settings, the same sweep: how a restarted sweep finds its finished trials."""
        return hashlib.sha1(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:12]

    def label(self) -> str:
        """E.g. "1-2 layers × widths 16,64,256 × relu,sigmoid, 2 seeds, 1 epoch: 24 trials"."""
        depth = ",".join(map(str, self.depths)) + f" layer{'s' * (self.depths != (1,))}"
        inits = ",".join("default" if s is None else f"std {s:g}" for s in self.inits)
        lrs = ",".join(f"{lr:g}" for lr in self.lrs)
        sample = f", random {self.sample} of {self.grid_size} configs" if self.sample else ""
        if self.train_images:
            sample += f", first {self.train_images:,} training images"
        return (f"{depth} ({self.width_rule} width) × widths {','.join(map(str, self.widths))} × "
                f"{','.join(self.activations)} × init {inits} × lr {lrs}, {self.seeds} seed"
                f"{'s' * (self.seeds != 1)}, {self.epochs} epoch{'s' * (self.epochs != 1)}{sample}: "
                f"{self.n_trials} trials")


# -- how long it takes -----------------------------------------------------------------------------

STEP_OVERHEAD_S = 0.35e-3  # a stack's step beyond its arithmetic at batch 64 (README, Benchmarks)
MEMBER_OVERHEAD_S = 0.02e-3  # and per member (activations, loss, optimizer on more numbers)
FLOPS = 90e9  # a core's fp32 rate in these matmuls (about MKL's peak on one core here)


TEST_IMAGES = 10_000
EVALUATION_OVERHEAD_S = 0.1  # a stack's test-set pass beyond its arithmetic, and its bookkeeping


def stack_seconds(group: list[Trial], images: int = TRAIN_IMAGES) -> float:
    """About how long one stack takes on one core: its steps, each an overhead plus arithmetic
    (forward and weight gradients: about 4 flops per parameter per image), then the test set."""
    t, k = group[0], len(group)
    steps = math.ceil(images / t.config.batch_size) * t.config.epochs
    flops = 4 * t.config.batch_size * t.arch.n_parameters * k
    evaluation = EVALUATION_OVERHEAD_S + 2 * TEST_IMAGES * t.arch.n_parameters * k / FLOPS
    return steps * (STEP_OVERHEAD_S + MEMBER_OVERHEAD_S * k + flops / FLOPS) + evaluation


def plan(trials: list[Trial], slots: int = 1, images: int = TRAIN_IMAGES) -> list[list[Trial]]:
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


def estimate_seconds(trials: list[Trial], slots: int = 1, images: int = TRAIN_IMAGES) -> float:
    """About how long `trials` take on `slots` cores, trained in stacks: a rough guide for the page."""
    costs = [stack_seconds(g, images) for g in plan(trials, slots, images)]
    return max(sum(costs) / max(1, slots), max(costs, default=0.0))


# -- results ---------------------------------------------------------------------------------------

CONFIG_FIELDS = ("network", "hidden", "activations", "activation", "depth", "width", "parameters",
                 "weight_std", "init", "lr", "epochs")


def config_key(record: dict) -> str:
    return json.dumps([record[k] for k in CONFIG_FIELDS])


def summarize(records: list[dict]) -> list[dict]:
    """One row per config: the mean test accuracy over its seeds, their spread (standard deviation,
    min, max), mean seconds; best first."""
    by_config: dict[str, list[dict]] = {}
    for r in records:
        by_config.setdefault(config_key(r), []).append(r)
    rows = []
    for members in by_config.values():
        acc = [m["test_accuracy"] for m in members]
        row = {k: members[0][k] for k in CONFIG_FIELDS}
        row.update(seeds=len(members), test_accuracy=statistics.fmean(acc),
                   accuracy_std=statistics.stdev(acc) if len(acc) > 1 else 0.0,
                   accuracy_min=min(acc), accuracy_max=max(acc),
                   seconds=statistics.fmean(m["seconds"] for m in members))
        rows.append(row)
    rows.sort(key=lambda r: (-r["test_accuracy"], r["parameters"]))
    return mark_pareto(rows)


def mark_pareto(rows: list[dict], cost: str = "parameters", value: str = "test_accuracy") -> list[dict]:
    """Set each row's "pareto": True when no other row is at least as good for at most the same cost
    (fewer parameters and higher accuracy): the front of what each budget can buy."""
    best = -math.inf
    front = set()
    for i in sorted(range(len(rows)), key=lambda i: (rows[i][cost], -rows[i][value])):
        if rows[i][value] > best:
            front.add(i)
            best = rows[i][value]
    for i, r in enumerate(rows):
        r["pareto"] = i in front
    return rows


# -- storage ---------------------------------------------------------------------------------------

def db_path(folder=None) -> Path:
    return Path(folder) if folder is not None and Path(folder).suffix == ".sqlite" else \
        (Path(folder) if folder is not None else store.models_dir()) / DB_NAME


class SweepStore:
    """Sweeps and their finished trials in one SQLite file (WAL: readers never wait for a writer),
    one row per trial, committed as each finishes."""

    def __init__(self, path=None):
        self.path = db_path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS sweeps (id TEXT PRIMARY KEY, "
                             "settings TEXT NOT NULL, "
                             "label TEXT NOT NULL, created REAL NOT NULL)")
            self._db.execute("CREATE TABLE IF NOT EXISTS trials (sweep TEXT NOT NULL, key TEXT NOT NULL, "
                             "record TEXT NOT NULL, finished REAL NOT NULL, PRIMARY KEY (sweep, key))")

    def __repr__(self) -> str:
        return f"SweepStore({str(self.path)!r})"

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add_sweep(self, settings: SweepSettings) -> str:
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO sweeps VALUES (?, ?, ?, ?)",
                             (settings.id, json.dumps(settings.to_dict()), settings.label(), time.time()))
        return settings.id

    def add_trial(self, sweep_id: str, record: dict) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO trials VALUES (?, ?, ?, ?)",
                             (sweep_id, record["key"], json.dumps(record), record["finished"]))

    def records(self, sweep_id: str) -> list[dict]:
        with self._lock:
            rows = self._db.execute("SELECT record FROM trials WHERE sweep = ? ORDER BY finished",
                                    (sweep_id,)).fetchall()
        return [json.loads(r[0]) for r in rows]

    def settings(self, sweep_id: str) -> SweepSettings:
        with self._lock:
            row = self._db.execute("SELECT settings FROM sweeps WHERE id = ?", (sweep_id,)).fetchone()
        if row is None:
            raise ConfigError(f"No saved sweep {sweep_id!r} in {self.path}.")
        return SweepSettings.from_dict(json.loads(row[0]))

    def sweeps(self) -> list[dict]:
        """Every saved sweep, newest first: id, label, created, how many trials are finished."""
        with self._lock:
            rows = self._db.execute(
                "SELECT s.id, s.label, s.created, COUNT(t.key) FROM sweeps s LEFT JOIN trials t "
                "ON t.sweep = s.id GROUP BY s.id ORDER BY s.created DESC").fetchall()
        return [{"id": i, "label": label, "created": created, "finished": n} for i, label, created, n in rows]


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
    to `sweep_store` at once and appended to `records`.

    Trials already in the store are not trained again. `stop()` keeps what has finished.
    """

    settings: SweepSettings
    train_split: Split
    test_split: Split
    sweep_store: SweepStore
    owner: jobs.Owner | None = None
    queue: jobs.Queue | None = None
    engine: object = None
    on_trial: object = None  # called with each new record (the CLI's progress bar)
    records: list[dict] = field(default_factory=list)
    error: Exception | None = None
    stop_reason: str = ""

    def __post_init__(self):
        self.queue = self.queue or jobs.default_queue()
        self.engine = self.engine or jobs.default_engine()
        self.id = self.sweep_store.add_sweep(self.settings)
        self.trials = self.settings.trials()
        self.records = self.sweep_store.records(self.id)
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
        n = self.settings.train_images
        self._train_split = self.train_split if not n else \
            Split(self.train_split.images[:n], self.train_split.labels[:n], True)

    def start(self) -> Sweep:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def _work(self) -> None:
        try:
            train_split = self._train_split
            waiting = plan(self.missing, self.queue.slots, len(train_split))
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
            self.sweep_store.add_trial(self.id, record)
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
        images, slots = len(self._train_split), self.queue.slots
        left = None if self.done else estimate_seconds([t for t in self.missing if t.key not in done],
                                                       slots, images)
        if left is not None and self._trained_here and self._started is not None:
            # the estimate at the pace this machine has kept so far (the longest stacks go first)
            so_far = estimate_seconds([t for t in self.missing if t.key in done], slots, images)
            left *= (time.monotonic() - self._started) / max(so_far, 1e-6)
        return SweepProgress(finished, total, None if finished == total else left)

    def summary(self) -> list[dict]:
        return summarize(self.records)


# -- as a link -------------------------------------------------------------------------------------

PARAMS = {"depths": "depths", "widths": "widths", "rule": "width_rule", "act": "activations",
          "init": "inits", "lr": "lrs", "seeds": "seeds", "epochs": "epochs", "sample": "sample"}


def from_params(params) -> SweepSettings | None:
    """The settings a link's query parameters give (`?depths=1,2&widths=16,64&act=relu&seeds=2`),
    None when it has none; a ConfigError saying what was wrong otherwise. Unknown keys are ignored."""
    def last(value) -> str:  # a repeated parameter counts by its last value, as st.query_params reads it
        if isinstance(value, (list, tuple)):
            value = value[-1] if value else ""
        return str(value)[:200]

    given = {field_: last(params[k]) for k, field_ in PARAMS.items() if k in params}
    if not given:
        return None
    if "inits" in given:
        given["inits"] = given["inits"].split(",")
    return SweepSettings(**given)


def to_params(settings: SweepSettings) -> dict[str, str]:
    """Query parameters for `settings` (the inverse of from_params for what a page can choose)."""
    params = {"depths": ",".join(map(str, settings.depths)), "widths": ",".join(map(str, settings.widths)),
              "rule": settings.width_rule, "act": ",".join(settings.activations),
              "init": ",".join("default" if s is None else f"{s:g}" for s in settings.inits),
              "lr": ",".join(f"{lr:g}" for lr in settings.lrs), "seeds": str(settings.seeds),
              "epochs": str(settings.epochs)}
    if settings.sample:
        params["sample"] = str(settings.sample)
    return params
