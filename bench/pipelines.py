"""Items 1-4 and the accuracy guard: the lesson's pipeline against the project's fast path, and the
fast path against the machine's own fp32 matmul rate.

The lesson's pipeline is `datasets.MNIST` with ToTensor + Normalize and `DataLoader(batch_size=64,
shuffle=True)`, and the lesson's loop; the fast path is what the app runs: `train.train` on a
`FastLoader` and `train.evaluate`. Same model (784-128-64-10 ReLU), Adam lr 0.001, same steps.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from bench.measure import Seconds, interleaved, median
from mnistlab import data, network, train
from mnistlab.train_config import TrainConfig

ARCH = network.Architecture((128, 64), ("relu", "relu"))
LR = 1e-3


class Data:
    """Both pipelines' sources, loaded once (file reading is not what is compared)."""

    def __init__(self):
        self.trainset = data.load_dataset(train=True)
        self.testset = data.load_dataset(train=False)
        self.train_split = data.load_split(train=True)
        self.test_split = data.load_split(train=False)


def _steps_per_epoch(batch_size: int) -> int:
    return -(-60_000 // batch_size)


# -- the lesson's way --------------------------------------------------------------------------------

def lesson_epoch(d: Data, seed: int, max_steps: int | None = None) -> torch.nn.Module:
    """One epoch as the lesson trains: DataLoader batches, flatten, forward, loss, backward, step."""
    torch.manual_seed(seed)  # the DataLoader shuffles with the global generator
    model = network.build(ARCH, seed=seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    trainloader = DataLoader(d.trainset, batch_size=64, shuffle=True)
    model.train()
    for step, (images, labels) in enumerate(trainloader):
        if max_steps is not None and step >= max_steps:
            break
        images = images.view(images.shape[0], -1)
        optimizer.zero_grad()
        loss = F.cross_entropy(network.logits(model, images), labels)
        loss.backward()
        optimizer.step()
    return model.eval()


def lesson_data(d: Data, max_steps: int | None = None) -> int:
    n = 0
    for step, (images, _labels) in enumerate(DataLoader(d.trainset, batch_size=64, shuffle=True)):
        if max_steps is not None and step >= max_steps:
            break
        n += len(images)
    return n


@torch.no_grad()
def lesson_accuracy(model, d: Data, max_steps: int | None = None) -> float:
    """The lesson's validation loop: batches of 64, top class against the labels."""
    right = seen = 0
    for step, (images, labels) in enumerate(DataLoader(d.testset, batch_size=64)):
        if max_steps is not None and step >= max_steps:
            break
        ps = network.probabilities(model, images)
        right += (ps.argmax(1) == labels).sum().item()
        seen += len(labels)
    return right / seen


# -- the project's fast path ---------------------------------------------------------------------

def fast_epoch(d: Data, seed: int, batch_size: int = 64, max_steps: int | None = None) -> torch.nn.Module:
    """One epoch of `train.train`, the loop the Train page runs."""
    model = network.build(ARCH, seed=seed)
    config = TrainConfig("adam", LR, batch_size=batch_size, epochs=1, batch_seed=seed)
    stop = None if max_steps is None else (lambda p: p.step < max_steps)
    train.train(model, config, d.train_split, callback=stop)
    return model


def fast_data(d: Data, max_steps: int | None = None) -> int:
    n = 0
    for step, (images, _labels) in enumerate(data.FastLoader(d.train_split, 64, shuffle=True, seed=0)):
        if max_steps is not None and step >= max_steps:
            break
        n += len(images)
    return n


# -- the hardware limit ------------------------------------------------------------------------------

def step_matmuls(batch: int) -> list[tuple[str, int, int, int]]:
    """Every matmul of one training step of ARCH: (what, batch, fan_in, fan_out).

    Forward: x·Wᵀ (+ bias) per Linear. Backward: the weight gradient gᵀ·x per Linear, and the input
    gradient g·W for every Linear but the first (the images need no gradient; autograd skips it).
    """
    sizes = ARCH.sizes
    out = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:])):
        out += [("fwd", batch, fan_in, fan_out), ("dW", batch, fan_in, fan_out)]
        if i > 0:
            out.append(("dx", batch, fan_in, fan_out))
    return out


def step_flops(batch: int) -> int:
    return sum(2 * b * fan_in * fan_out for _, b, fan_in, fan_out in step_matmuls(batch))


def _matmul(what: str, batch: int, fan_in: int, fan_out: int):
    """The product autograd computes, with the same memory layouts (transposed views included)."""
    x, w, bias, g = (torch.randn(batch, fan_in), torch.randn(fan_out, fan_in), torch.randn(fan_out),
                     torch.randn(batch, fan_out))
    if what == "fwd":
        return lambda: torch.addmm(bias, x, w.t())
    if what == "dW":
        return lambda: g.t().mm(x)
    return lambda: g.mm(w)


def matmul_seconds(batch: int, chunk_time: float = 0.02, chunks: int = 3,
                   forward_only: bool = False) -> float:
    """Seconds for one step's matmuls alone (or the forward pass's), each timed at its own shape (fp32,
    this CPU): the fastest of a few chunks, since the limit is what the hardware can do, not what it
    did while busy."""
    total = 0.0
    for spec in step_matmuls(batch):
        if forward_only and spec[0] != "fwd":
            continue
        fn = _matmul(*spec)
        for _ in range(3):
            fn()
        reps = 8
        while True:  # grow the repetitions until a chunk is long enough to time
            start = time.perf_counter()
            for _ in range(reps):
                fn()
            if time.perf_counter() - start >= chunk_time:
                break
            reps *= 2
        best = float("inf")
        for _ in range(chunks):
            start = time.perf_counter()
            for _ in range(reps):
                fn()
            best = min(best, (time.perf_counter() - start) / reps)
        total += best
    return total


# -- running them ----------------------------------------------------------------------------------

def run(reps: int, quick: bool, log=print) -> dict:
    d = Data()
    steps64 = 100 if quick else None  # quick: a smoke check on part of an epoch
    steps1024 = 20 if quick else None
    accuracy = {"lesson": [], "fast": []}

    results: dict = {}

    log("1. one training epoch, batch 64 (and 4. the matmul rate at its shapes)")
    models = {}

    def lesson_case(seed):
        start = time.perf_counter()
        models["lesson"] = lesson_epoch(d, seed, steps64)
        took = Seconds(time.perf_counter() - start)
        accuracy["lesson"].append((seed, train.evaluate(models["lesson"], d.test_split).accuracy))
        return took

    def fast_case(seed):
        start = time.perf_counter()
        models["fast"] = fast_epoch(d, seed, 64, steps64)
        took = Seconds(time.perf_counter() - start)
        accuracy["fast"].append((seed, train.evaluate(models["fast"], d.test_split).accuracy))
        return took

    t = interleaved({"lesson": lesson_case, "fast": fast_case,
                     "matmuls64": lambda _: Seconds(matmul_seconds(64)),
                     "fast1024": lambda s: _time(lambda: fast_epoch(d, s, 1024, steps1024)),
                     "matmuls1024": lambda _: Seconds(matmul_seconds(1024))}, reps, log=log)
    steps = steps64 or _steps_per_epoch(64)
    steps_big = steps1024 or _steps_per_epoch(1024)
    results["epoch"] = _ratio(t["lesson"], t["fast"], goal=1 / 10, steps=steps)
    # The floor: the step's matmuls alone at the measured rate, with no other work at all.
    results["epoch"]["floor_s"] = median(t["matmuls64"]) * steps

    for batch, epoch_times, mm_times, n_steps in ((64, t["fast"], t["matmuls64"], steps),
                                                  (1024, t["fast1024"], t["matmuls1024"], steps_big)):
        ideal = median(mm_times) * n_steps
        epoch = median(epoch_times)
        flops = step_flops(batch) * n_steps
        results[f"hardware_{batch}"] = {
            "epoch_s": epoch, "ideal_s": ideal, "ratio": epoch / ideal, "goal": 5 if batch == 64 else 2,
            "steps": n_steps, "flops": flops, "measured_gflops": flops / ideal / 1e9,
            "achieved_gflops": flops / epoch / 1e9, "epoch_times": epoch_times, "matmul_step_times": mm_times}

    # The accuracy guard: the rounds above trained both paths from the same seeds. Only full
    # epochs say anything about accuracy.
    lesson_acc = [a for s, a in accuracy["lesson"] if s >= 1]
    fast_acc = [a for s, a in accuracy["fast"] if s >= 1]
    diff = (sum(fast_acc) / len(fast_acc) - sum(lesson_acc) / len(lesson_acc)) * 100
    results["accuracy_guard"] = {"lesson": lesson_acc, "fast": fast_acc, "difference_points": diff,
                                 "goal_points": 0.5, "seeds": list(range(1, 1 + reps)),
                                 "meaningful": not quick}

    log("2. data only, one epoch of batches")
    t = interleaved({"lesson": lambda _: lesson_data(d, steps64), "fast": lambda _: fast_data(d, steps64)},
                    reps, log=log)
    results["data"] = _ratio(t["lesson"], t["fast"], goal=1 / 50, steps=steps)

    log("3. test-set evaluation")
    model = models["fast"]
    test_split = _head(d.test_split) if quick else d.test_split
    t = interleaved({"lesson": lambda _: lesson_accuracy(model, d, 20 if quick else None),
                     "fast": lambda _: train.evaluate(model, test_split),
                     "matmuls": lambda _: Seconds(matmul_seconds(len(test_split), forward_only=True))},
                    reps, log=log)
    results["eval"] = _ratio(t["lesson"], t["fast"], goal=1 / 30)
    results["eval"]["floor_s"] = median(t["matmuls"])  # the forward pass's matmuls alone
    return results


def _head(split: data.Split, n: int = 1280) -> data.Split:
    return split.first(n)


def _time(fn) -> Seconds:
    start = time.perf_counter()
    fn()
    return Seconds(time.perf_counter() - start)


def _ratio(lesson: list[float], fast: list[float], goal: float, **extra) -> dict:
    ratio = median(fast) / median(lesson)
    return {"lesson_s": median(lesson), "fast_s": median(fast), "ratio": ratio, "goal": goal,
            "lesson_times": lesson, "fast_times": fast, **extra}
