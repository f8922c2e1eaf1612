"""Timing that survives a shared, drifting machine: cases interleaved, medians, ratios within one run."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable

import torch


class Seconds(float):
    """What a case returns when it times only part of itself (e.g. not its untimed evaluation)."""


def interleaved(cases: dict[str, Callable[[int], object]], reps: int, warmup: int = 1,
                log=print) -> dict[str, list[float]]:
    """Seconds per call of each case, for `reps` rounds after `warmup` rounds.

    A round calls every case once, in order, with the round's index (a seed), so slow drift of the
    machine's load hits all cases alike. A case may return `Seconds`: the time to record instead of
    the call's own.
    """
    times: dict[str, list[float]] = {name: [] for name in cases}
    for r in range(warmup + reps):
        for name, case in cases.items():
            start = time.perf_counter()
            result = case(r)
            took = float(result) if isinstance(result, Seconds) else time.perf_counter() - start
            if r >= warmup:
                times[name].append(took)
            log(f"  {'warm-up' if r < warmup else f'rep {r - warmup + 1}/{reps}'} {name}: {took:.4g} s")
    return times


def median(values) -> float:
    return statistics.median(values)


def percentile(values, q: float) -> float:
    """The q-th percentile (0-100), linear between closest ranks."""
    xs = sorted(values)
    if len(xs) == 1:
        return xs[0]
    k = (len(xs) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def machine() -> dict:
    """What the figures were measured on, and how busy it was."""
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(), "system": platform.platform(),
            "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None}


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []
