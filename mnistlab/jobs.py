"""The app's one job queue: every training (a Train-page run, Draw's quick training, a sweep's
trials) is a job that waits for one of the server's slots, then runs on an engine.

Slots are shared fairly between owners: when one frees, the next job comes from the owner with the
fewest jobs running (the one served longest ago on a tie), first come first served within an owner.
So a student's single run never waits behind a whole sweep, at most behind the trial running now.

Engines run the work: `LocalEngine` in this process's threads (the default; nothing to install),
`mnistlab.ray_engine.RayEngine` on a Ray cluster, imported only when chosen: with
MNISTLAB_RAY_ADDRESS (or Ray's own RAY_ADDRESS) set, the app's trainings all go to that cluster.
"""

from __future__ import annotations

import copy
import itertools
import os
import threading
import time
import weakref

import torch

from mnistlab import network, runs, train
from mnistlab.data import Split
from mnistlab.errors import ConfigError
from mnistlab.network import Network
from mnistlab.train_config import TrainConfig

# Trainings at once per server; more wait their turn. Each uses all of torch's threads, and two
# sharing the cores go slower together than one after the other (threads spin, waiting for each other).
MAX_TRAINING_AT_ONCE = max(1, (os.cpu_count() or 2) // 2)
MAX_RUN_SECONDS = 300  # a server's runs stop after 5 minutes, so nobody holds the queue for long
# A job's thread runs at this niceness (Linux: per thread): a class's clicks come before training.
# On a 2-core server a training takes a core to itself; the pages' threads pass Python's one lock
# among themselves on the other, each waiting for a core to wake on. Niced, training yields its core
# to them while they are busy and trains at full speed while they are not.
TRAINING_NICE = 10
POLL_S = 0.2  # how often a waiting job checks whether it was stopped or abandoned
PAUSE_POLL_S = 1.0  # how often a paused training checks its time limit and whether its owner left
SETTLE_S = 2.0  # how long a page's Pause or Step waits for the loop to rest, so it shows where

_keys = itertools.count()


class Owner:
    """Whoever waits for a job's result (e.g. kept in a visitor's session); when it is gone, so is the job.

    It is also the unit of fairness: each owner's jobs take their turns against other owners' jobs.
    """

    def __init__(self):
        self.key = next(_keys)

    def __repr__(self) -> str:
        return f"Owner({self.key})"


class Queue:
    """`slots` jobs run at once; the others wait, and a freed slot goes to the least-served owner."""

    def __init__(self, slots: int = MAX_TRAINING_AT_ONCE):
        self.slots = max(1, int(slots))
        self._cond = threading.Condition()
        self._waiting: list[tuple[object, object]] = []  # (owner key, ticket), in arrival order
        self._granted: set[object] = set()
        self._running: dict[object, int] = {}
        self._served: dict[object, int] = {}  # owner key -> turn of its latest start
        self._turns = itertools.count()

    def __repr__(self) -> str:
        return f"Queue({self.slots} slots, {self.running} running, {self.waiting} waiting)"

    @property
    def running(self) -> int:
        return sum(self._running.values())

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def acquire(self, key, cancelled=lambda: False) -> bool:
        """Wait for a slot for owner `key`; False (and no slot) when `cancelled()` turns true first."""
        ticket = object()
        with self._cond:
            self._waiting.append((key, ticket))
            self._dispatch()
            while ticket not in self._granted:
                if cancelled():
                    self._waiting.remove((key, ticket))
                    return False
                self._cond.wait(POLL_S)
            self._granted.discard(ticket)
        return True

    def release(self, key) -> None:
        with self._cond:
            self._running[key] -= 1
            if not self._running[key]:
                del self._running[key]
            self._dispatch()

    def _dispatch(self) -> None:
        while self._waiting and self.running < self.slots:
            # the owner with the fewest running jobs, then the one served longest ago (never: first)
            rank = {}
            for i, (key, _) in enumerate(self._waiting):
                rank.setdefault(key, (self._running.get(key, 0), self._served.get(key, -1), i))
            key = min(rank, key=rank.get)
            index = rank[key][2]
            _, ticket = self._waiting.pop(index)
            self._running[key] = self._running.get(key, 0) + 1
            self._served[key] = next(self._turns)
            self._granted.add(ticket)
            self._cond.notify_all()


class LocalEngine:
    """Trains in the calling thread, on this machine; `slots` trainings at once (default: a server's,
    MAX_TRAINING_AT_ONCE; the CLI, with no pages to serve, gives each core one)."""

    name = "local"
    pausable = True  # the loop runs in this process: a `Pause` can hold it between batches

    def __init__(self, slots: int | None = None):
        self.slots = max(1, int(slots)) if slots is not None else MAX_TRAINING_AT_ONCE

    def train(self, net: Network, config: TrainConfig, train_split: Split, test_split: Split, device,
              callback, stop, **run_kwargs) -> runs.Run:
        return runs.run(net, config, train_split, test_split, device, callback=callback, stop=stop,
                        **run_kwargs)

    def train_group(self, group, train_split: Split, test_split: Split, callback, stop, device="cpu"):
        from mnistlab import stacked

        return stacked.train_group(group, train_split, test_split, device, callback=callback, stop=stop)

    def close(self) -> None:
        pass


def ray_address() -> str | None:
    """The Ray cluster the app sends its trainings to, if one is configured."""
    return os.environ.get("MNISTLAB_RAY_ADDRESS") or os.environ.get("RAY_ADDRESS") or None


RAY_MISSING = ("Ray is not installed: pip install -r requirements-ray.txt for the ray engine, or use the "
               "local one (the default; the app uses Ray only when MNISTLAB_RAY_ADDRESS or RAY_ADDRESS "
               "is set).")


def make_engine(name: str = "local", address: str | None = None, local_slots: int | None = None):
    """The engine called `name` ("local", with `local_slots` trainings at once, or "ray"); ray
    connects to `address`, or starts a local instance."""
    name = str(name).strip().lower()
    if name == "local":
        return LocalEngine(local_slots)
    if name == "ray":
        try:
            from mnistlab import ray_engine  # Ray is imported only here: the default never pays for it
        except ModuleNotFoundError as e:
            if (e.name or "").split(".")[0] != "ray":
                raise
            raise ConfigError(RAY_MISSING) from None
        return ray_engine.RayEngine(address)
    raise ConfigError(f"Engine must be local or ray; got {name!r}.")


_default: dict = {}
_default_lock = threading.Lock()


def default_engine():
    """The app's engine: Ray when MNISTLAB_RAY_ADDRESS or RAY_ADDRESS is set, else local."""
    with _default_lock:
        if "engine" not in _default:
            address = ray_address()
            _default["engine"] = make_engine("ray", address) if address else LocalEngine()
        return _default["engine"]


def default_queue() -> Queue:
    """The app's one queue, as many slots as its engine has (a Ray cluster: its CPUs)."""
    with _default_lock:
        if "queue" in _default:
            return _default["queue"]
    slots = default_engine().slots
    with _default_lock:
        return _default.setdefault("queue", Queue(slots))


class Pause:
    """Pause, Step one batch and Resume for one training: a gate the loop passes after each batch.

    Paused, the loop reports the batch it has just trained and its thread sleeps here (no CPU);
    `step()` lets exactly one more batch through (reported too), `resume()` opens the gate. It
    changes when the loop waits, never what it trains: the same batches, the same weights as a run
    never paused. While it waits it returns False (stop) once `stop` is set or `going_on()` turns
    false, asked every PAUSE_POLL_S seconds and at each `wake()`. `rested` adds up the seconds it
    waited, which are not training time.
    """

    def __init__(self, going_on=lambda: True):
        self._cond = threading.Condition()
        self._going_on = going_on
        self._paused = False
        self._steps = 0  # batches let through while paused, not yet taken
        self._ended = False
        self.resting = False  # the loop waits here now
        self.rested = 0.0  # seconds the loop has waited here, all its rests together

    def __repr__(self) -> str:
        state = "resting" if self.resting else "paused" if self._paused else "open"
        return f"Pause({state}{f', {self._steps} to step' if self._steps else ''})"

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def held(self) -> bool:
        """Paused, and the loop rests here with no step left to take: its latest report is where it is."""
        return self._paused and self.resting and not self._steps

    def pause(self) -> None:
        with self._cond:
            self._paused = True

    def step(self) -> None:
        """One more batch while paused (each call one; nothing when not paused)."""
        with self._cond:
            if self._paused:
                self._steps += 1
                self._cond.notify_all()

    def resume(self) -> None:
        with self._cond:
            self._paused, self._steps = False, 0
            self._cond.notify_all()

    def wake(self) -> None:
        """Have a waiting loop look at `stop` and `going_on()` now (e.g. just after a stop)."""
        with self._cond:
            self._cond.notify_all()

    def end(self) -> None:
        """The training is over: nobody will rest here again."""
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    def wait(self, stop=None) -> bool:
        """The loop, after a batch it reported while paused: wait for a step (taking it), a resume or a
        stop. True: train on; False: stop."""
        with self._cond:
            self.resting, start = True, time.perf_counter()
            self._cond.notify_all()  # a page in `settle` sees where it rests
            try:
                while True:
                    if (stop is not None and stop.is_set()) or not self._going_on():
                        return False
                    if not self._paused:
                        return True
                    if self._steps:
                        self._steps -= 1
                        return True
                    self._cond.wait(PAUSE_POLL_S)
            finally:
                self.resting = False
                self.rested += time.perf_counter() - start

    def settle(self, timeout: float = SETTLE_S) -> bool:
        """Wait (at most `timeout` s) until the loop rests here with no step left to take, it runs on
        unpaused, or it ended: then its latest report is where it is."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._paused or self._ended or self.held, timeout)


class Background:
    """Work on a thread of its own (`_thread`) that a page can stop (`_stop`), ask whether it is
    done, and wait for: a job, or a sweep driving its jobs."""

    _thread: threading.Thread
    _stop: threading.Event
    stop_reason = ""

    def stop(self) -> None:
        self.stop_reason = self.stop_reason or "stopped"
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def done(self) -> bool:
        return self._thread.ident is not None and not self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return self.done


def lower_priority(nice: int) -> None:
    """This thread's niceness raised to `nice` (Linux sets it per thread; elsewhere, nothing). Raising
    it needs no privilege; it is never lowered."""
    if nice and hasattr(os, "setpriority"):
        me = threading.get_native_id()
        try:
            os.setpriority(os.PRIO_PROCESS, me, max(nice, os.getpriority(os.PRIO_PROCESS, me)))
        except OSError:  # a system that refuses: train at the server's priority
            pass


class Job(Background):
    """Work that waits for a slot in a background thread, so a page can draw its progress, stop it,
    and stay responsive.

    `reports` grows as it goes (read it from any thread); when `done`, `result` holds what it made
    or `error` what went wrong. A job waits (`waiting`) while the queue's slots are taken. It stops
    early when stopped, after `time_limit` seconds, or once its `owner` is garbage (the visitor left:
    nobody will ever look at the result); `stop_reason` says which.
    """

    name = "mnistlab-job"

    def __init__(self, owner: Owner | None = None, time_limit: float | None = None,
                 queue: Queue | None = None, engine=None, fair_key=None):
        self.time_limit = MAX_RUN_SECONDS if time_limit is None else time_limit
        self._owner = weakref.ref(owner) if owner is not None else None
        # Fairness: by owner, unless the caller names its own stream of jobs (a sweep does).
        self._key = fair_key if fair_key is not None else (owner.key if owner is not None else object())
        self._queue, self._engine = queue, engine
        self.reports: list[train.Progress] = []
        self.result = None
        self.error: Exception | None = None
        self.stop_reason = ""  # "stopped", "time limit" or "abandoned" when it ended early
        self.waiting = True
        self._started = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name=self.name, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def _run(self, engine):  # the work itself, in a slot
        raise NotImplementedError

    def _abandoned(self) -> bool:
        return self._owner is not None and self._owner() is None

    def _work(self) -> None:
        lower_priority(TRAINING_NICE)
        try:
            queue = self._queue or default_queue()
            engine = self._engine or default_engine()
            if not queue.acquire(self._key, lambda: self._stop.is_set() or self._abandoned()):
                self.stop_reason = "abandoned" if self._abandoned() else "stopped"
                self.error = ConfigError("Training was stopped before it started.")
                return
            try:
                self.waiting = False
                self._started = time.monotonic()
                self.result = self._run(engine)
            finally:
                queue.release(self._key)
        except Exception as e:  # shown to the user by whoever started the job
            self.error = e

    def _report(self, progress: train.Progress) -> bool:
        self.reports.append(progress)
        return self._going_on()

    def _going_on(self) -> bool:
        """Whether it trains on: not stopped, its owner still there, within its time limit (a paused
        training's counts too: it keeps its slot). If not, `stop_reason` says why."""
        if self._stop.is_set():
            self.stop_reason = self.stop_reason or "stopped"
        elif self._abandoned():
            self.stop_reason = "abandoned"
        elif time.monotonic() - self._started > self.time_limit:
            self.stop_reason = "time limit"
        return not self.stop_reason

    @property
    def latest(self) -> train.Progress | None:
        return self.reports[-1] if self.reports else None


class TrainingJob(Job):
    """A `runs.run` as a job: the Train page's runs and Draw's quick training. `result` is the Run.

    `run_kwargs` go on to `runs.run` as they are (e.g. what to record as it trains). On the local
    engine it can be paused, stepped a batch at a time and resumed (`pausable`); paused, it keeps
    its slot and its time limit keeps counting, so a forgotten pause ends at the limit (or when its
    owner leaves, or at Stop), never holding the queue or a server's shutdown for good.
    """

    name = "mnistlab-training"

    def __init__(self, net: Network, config: TrainConfig, train_split: Split, test_split: Split,
                 device="cpu", owner: Owner | None = None, time_limit: float | None = None,
                 queue: Queue | None = None, engine=None, **run_kwargs):
        super().__init__(owner, time_limit, queue, engine)
        self.network, self.config = net, config
        self.splits, self.device = (train_split, test_split), network.resolve_device(device)
        self.run_kwargs = run_kwargs
        self.live_model = None
        self._gate = Pause(self._going_on)

    @property
    def arch(self) -> network.Architecture:
        return self.network.arch

    @property
    def pausable(self) -> bool:
        """Whether Pause and Step work: on the local engine (a Ray task trains on another machine)."""
        return (self._engine or default_engine()).pausable

    @property
    def paused(self) -> bool:
        return self._gate.paused

    @property
    def held(self) -> bool:
        """Paused and resting between batches, so its latest report is where it is and a step moves it
        one batch from there. Just after Pause (on a busy machine, for longer than Pause waits) it may
        still be training or reporting the batch it rests after: paused, not yet held."""
        return self._gate.held

    def pause(self) -> None:
        """Hold the loop after its current batch, and wait (briefly) until it rests there, reported.
        Paused before it starts, it rests after its first batch."""
        if self.pausable:
            self._gate.pause()
            if not self.waiting:
                self._gate.settle()

    def step(self) -> None:
        """While paused: train exactly one more batch, and wait (briefly) for its report."""
        self._gate.step()
        self._gate.settle()

    def resume(self) -> None:
        self._gate.resume()

    def stop(self) -> None:
        super().stop()
        self._gate.wake()  # a paused loop stops now, not at its next look

    def _run(self, engine) -> runs.Run:
        kwargs = dict(self.run_kwargs)
        if engine.name == "local":  # in this process: the page can draw the network as it learns
            kwargs["on_model"] = self._keep_model
        if engine.pausable:
            kwargs["pause"] = self._gate
        try:  # runs.run leaves the rests at the gate out of the run's seconds
            return engine.train(self.network, self.config, *self.splits, self.device, self._report,
                                self._stop, **kwargs)
        finally:
            self._gate.end()

    def _keep_model(self, model) -> None:
        self.live_model = model

    def live_snapshot(self):
        """A copy of the network as it is now, in eval mode, while it trains here; None before it
        starts, after it ends or on another machine (the Ray engine)."""
        model = self.live_model
        if model is None or self.done:
            return None
        with torch.no_grad():
            return copy.deepcopy(model).eval()
