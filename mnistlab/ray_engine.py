"""The Ray engine: the same trainings as `jobs.LocalEngine`, as tasks on a Ray cluster.

Imported only when chosen (`jobs.make_engine("ray")`), so the default app and CLI never load Ray.
Each training (a Train-page run, or one stack of a sweep's trials) is one Ray task using one CPU
(one GPU where the cluster has them), a generator that streams its progress reports back as it
trains and yields its result last. MNIST goes to the object store once per engine (`ray.put`),
and every task reads it from there. A worker that dies mid-task has its task run again.
"""

from __future__ import annotations

import time

import ray

from mnistlab import network, runs, stacked, train

MAX_RETRIES = 3  # a worker that dies (e.g. its node is lost) gets its task run again
STOP_POLL_S = 0.5  # how often a task asks whether it was stopped


@ray.remote(num_cpus=0)
class _StopFlag:
    """Set by the driver when the user stops a job; the task reads it between progress reports."""

    def __init__(self):
        self.stopped = False

    def set(self) -> None:
        self.stopped = True

    def is_set(self) -> bool:
        return self.stopped


class _Reports:
    """A task's side of a job's progress: reports are kept to be yielded; stopping asks the flag."""

    def __init__(self, flag):
        self.flag, self.pending, self.asked, self.stopped = flag, [], 0.0, False

    def __call__(self, progress: train.Progress) -> bool:
        self.pending.append(progress)
        if time.monotonic() - self.asked > STOP_POLL_S:
            self.asked = time.monotonic()
            self.stopped = ray.get(self.flag.is_set.remote())
        return not self.stopped


def _on_worker(device: str) -> str:
    import torch

    torch.set_num_threads(1)  # one task, one CPU: as the local engine trains
    return network.resolve_device(device)


def _stream(work, flag):
    """Run `work(report)` in a thread of this worker, yielding its reports as they come, then its result."""
    import threading

    reports, out = _Reports(flag), {}

    def target():
        try:
            out["result"] = work(reports)
        except BaseException as e:  # raised again in the driver
            out["error"] = e

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    while thread.is_alive() or reports.pending:
        thread.join(0.1)
        while reports.pending:
            yield reports.pending.pop(0)
    if "error" in out:
        raise out["error"]
    yield _Result(out["result"])


class _Result:
    def __init__(self, value):
        self.value = value


@ray.remote(num_cpus=1, max_retries=MAX_RETRIES)
def _train_task(net, config, train_split, test_split, device, flag, run_kwargs):
    device = _on_worker(device)
    yield from _stream(lambda report: runs.run(net, config, train_split, test_split, device,
                                               callback=report, **run_kwargs), flag)


@ray.remote(num_cpus=1, max_retries=MAX_RETRIES)
def _train_group_task(trials, train_split, test_split, device, flag):
    device = _on_worker(device)
    yield from _stream(lambda report: stacked.train_group(trials, train_split, test_split, device,
                                                          callback=report), flag)


class RayEngine:
    """Trainings as Ray tasks: on the cluster at `address`, or on a Ray instance started here."""

    name = "ray"
    # Its jobs cannot be paused: Pause and Step would need the task to ask the driver before every
    # batch, a round trip to an actor each, where its stop flag is asked only every STOP_POLL_S.
    pausable = False

    def __init__(self, address: str | None = None):
        self.started_here = False
        if not ray.is_initialized():
            if address:
                ray.init(address=address, logging_level="warning", log_to_driver=False)
            else:  # a local instance for this process: two worker CPUs, no dashboard
                ray.init(num_cpus=2, include_dashboard=False, logging_level="warning", log_to_driver=False)
                self.started_here = True
        self._objects: dict[int, tuple] = {}

    def __repr__(self) -> str:
        return f"RayEngine({self.slots} CPUs)"

    @property
    def gpus(self) -> int:
        return int(ray.cluster_resources().get("GPU", 0))

    @property
    def slots(self) -> int:
        return max(1, int(ray.cluster_resources().get("CPU", 1)))

    def _put(self, split):
        """The split in the object store, put there once (kept with the split, so ids stay unique)."""
        entry = self._objects.get(id(split))
        if entry is None or entry[0] is not split:
            entry = self._objects[id(split)] = (split, ray.put(split))
        return entry[1]

    def _device(self, requested) -> str:
        """Where a task trains: on the CPU when the job asks for it, else on a GPU if the cluster has one."""
        return "cuda" if self.gpus and str(requested) != "cpu" else "cpu"

    def _options(self, task, device: str):
        return task.options(num_gpus=1) if device == "cuda" else task

    def _follow(self, generator, flag, callback, stop):
        """Pass each streamed report to `callback`; set the task's stop flag when asked to stop."""
        stopped = False
        for ref in generator:
            item = ray.get(ref)
            if isinstance(item, _Result):
                return item.value
            keep = callback(item) is not False if callback is not None else True
            if not stopped and (not keep or (stop is not None and stop.is_set())):
                stopped = True
                flag.set.remote()
        raise RuntimeError("The Ray task ended without a result.")

    def train(self, net, config, train_split, test_split, device, callback, stop, **run_kwargs) -> runs.Run:
        device = self._device(device)
        flag = _StopFlag.remote()
        generator = self._options(_train_task, device).remote(net, config, self._put(train_split),
                                                              self._put(test_split), device, flag, run_kwargs)
        return self._follow(generator, flag, callback, stop)

    def train_group(self, trials, train_split, test_split, callback, stop, device="auto"):
        device = self._device(device)
        flag = _StopFlag.remote()
        generator = self._options(_train_group_task, device).remote(trials, self._put(train_split),
                                                                    self._put(test_split), device, flag)
        return self._follow(generator, flag, callback, stop)

    def close(self) -> None:
        """Shut down the Ray instance this engine started (a cluster joined is left running)."""
        self._objects.clear()
        if self.started_here and ray.is_initialized():
            ray.shutdown()
