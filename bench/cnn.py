"""11. A CNN's epoch: the app's loop against plain PyTorch on the same preloaded tensors (the core adds
nothing), against the lesson's `DataLoader` pipeline, and the multiply-adds it achieves a second
beside the machine's fp32 matmul rate; plain PyTorch in `channels_last` beside it. 11d: a sweep of
CNNs against its trials one by one (a CNN trains alone in a sweep: stacks hold MLPs).

The network is ConvNetJS's MNIST layout (conv 8:5 → pool → conv 16:5 → pool → output, 5,994
parameters), Adam lr 0.001, batch 64, all on 60,000 images (no validation split: both sides train
the same batches).
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from bench.measure import Seconds, interleaved, median
from mnistlab import data, network, runs, stacked, sweep, train
from mnistlab.train_config import TrainConfig

ARCH = network.Architecture.parse("", "relu", conv="8:5,16:5")
LR = 1e-3
GOAL_PLAIN = 1.05  # the app's epoch ÷ plain PyTorch's on the same tensors
GOAL_SWEEP = 1.0  # a CNN sweep's trials a minute ÷ one by one
QUICK_STEPS = 150


def app_epoch(split: data.Split, seed: int, max_steps: int | None) -> Seconds:
    model = network.build(ARCH, seed=seed)
    config = TrainConfig("adam", LR, batch_size=64, epochs=1, batch_seed=seed)  # train.train: no split
    stop = None if max_steps is None else (lambda p: p.step < max_steps)
    start = time.perf_counter()
    train.train(model, config, split, callback=stop)
    return Seconds(time.perf_counter() - start)


def plain_epoch(split: data.Split, seed: int, max_steps: int | None, channels_last: bool = False) -> Seconds:
    """The same network, batches and optimizer written as plain PyTorch: images normalized once, a
    permutation a pass, forward, cross-entropy on the scores, backward, Adam's step."""
    model = network.build(ARCH, seed=seed)
    images = split.normalized(slice(None))  # (N, 1, 28, 28), as the app's loader gives them
    labels = split.labels
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    body = model[:-1]
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))
    model.train()
    start = time.perf_counter()
    for step, lo in enumerate(range(0, len(split), 64)):
        if max_steps is not None and step >= max_steps:
            break
        index = order[lo:lo + 64]
        loss = F.cross_entropy(body(images[index]), labels[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return Seconds(time.perf_counter() - start)


def lesson_epoch(trainset, seed: int, max_steps: int | None) -> Seconds:
    """The lesson's pipeline for it: DataLoader(batch_size=64, shuffle=True) over the transformed set."""
    torch.manual_seed(seed)
    model = network.build(ARCH, seed=seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    model.train()
    start = time.perf_counter()
    for step, (images, labels) in enumerate(DataLoader(trainset, batch_size=64, shuffle=True)):
        if max_steps is not None and step >= max_steps:
            break
        loss = F.cross_entropy(network.logits(model, images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return Seconds(time.perf_counter() - start)


def step_macs(batch: int) -> int:
    """Multiply-adds of one training step: the forward pass, each weighted layer's weight gradient (as
    many as its forward), and the input gradient of every weighted layer but the first."""
    weighted = [row["macs"] for row in ARCH.table() if row["macs"]]
    return batch * (2 * sum(weighted) + sum(weighted[1:]))


def matmul_gflops(n: int = 512, seconds: float = 0.2) -> float:
    """This CPU's fp32 matmul rate here and now (n×n by n×n), the fastest of a few timings."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    best = float("inf")
    for _ in range(5):
        reps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / 5:
            a.mm(b)
            reps += 1
        best = min(best, (time.perf_counter() - start) / reps)
    return 2 * n ** 3 / best / 1e9


def run(reps: int, quick: bool, log=print) -> dict:
    split = data.load_split(train=True)
    trainset = data.load_dataset(train=True)
    steps = QUICK_STEPS if quick else None
    n_steps = steps or -(-len(split) // 64)
    log("11. a CNN's epoch (ConvNetJS's layout): the app, plain PyTorch, the lesson's DataLoader")
    t = interleaved({"app": lambda s: app_epoch(split, s, steps),
                     "plain": lambda s: plain_epoch(split, s, steps),
                     "channels_last": lambda s: plain_epoch(split, s, steps, channels_last=True),
                     "lesson": lambda s: lesson_epoch(trainset, s, steps),
                     "matmul": lambda _: Seconds(1 / matmul_gflops())}, reps, log=log)
    app, plain = median(t["app"]), median(t["plain"])
    macs = step_macs(64) * n_steps
    out = {"arch": ARCH.label(), "parameters": ARCH.n_parameters, "steps": n_steps, "app_s": app,
           "plain_s": plain, "channels_last_s": median(t["channels_last"]), "lesson_s": median(t["lesson"]),
           "ratio_plain": app / plain, "goal_plain": GOAL_PLAIN, "ratio_lesson": app / median(t["lesson"]),
           "achieved_gmacs": macs / app / 1e9, "matmul_gflops": 1 / median(t["matmul"]),
           "times": t}
    return {"cnn": out}


def run_sweep(reps: int, quick: bool, log=print) -> dict:
    """11d. Four CNN trials (two seeds × two activations) as a sweep trains them (`stacked.stacks`,
    then `train_group`), against `runs.run` one by one; both at one torch thread."""
    train_split, test_split = data.load_split(True), data.load_split(False)
    if quick:
        train_split, test_split = train_split.first(6_000), test_split.first(2_000)
    config = TrainConfig(epochs=1, validation=1_000 if quick else 10_000)
    trials = [sweep.Trial(network.Network(network.Architecture.parse("", act, conv="8:5,16:5"),
                                          network.Init(), seed), config)
              for act in ("relu", "tanh") for seed in (0, 1)]
    results: dict[str, dict] = {"swept": {}, "alone": {}}

    def swept(_):
        torch.set_num_threads(1)
        for group in stacked.stacks(trials):
            for t, r in zip(group, stacked.train_group(group, train_split, test_split)):
                results["swept"][t.key] = r.test_accuracy

    def alone(_):
        torch.set_num_threads(1)
        for t in trials:
            results["alone"][t.key] = runs.run(t.network, t.config, train_split, test_split).accuracy

    log("11d. a sweep of 4 CNNs against them one by one")
    own = torch.get_num_threads()
    try:
        t = interleaved({"swept": swept, "alone": alone}, max(1, reps - 1), log=log)
    finally:
        torch.set_num_threads(own)
    diffs = [abs(results["swept"][k] - results["alone"][k]) * 100 for k in results["alone"]]
    ratio = median(t["alone"]) / median(t["swept"])
    return {"cnn_sweep": {"trials": len(trials), "swept_s": median(t["swept"]), "alone_s": median(t["alone"]),
                          "ratio": ratio, "goal": GOAL_SWEEP, "max_difference_points": max(diffs),
                          "identical": sum(d == 0 for d in diffs), "times": t}}
