"""Training several networks of one shape at once: a sweep's seeds, inits and activations stacked
into batched matmuls.

At batch 64 a small network's step costs about what its ~40 operations cost to launch, not what
their arithmetic costs; K networks stacked into `torch.baddbmm` run the same ~40 operations on
K times the numbers, so K trials take little longer than one.

A stack's members share their layer sizes and training settings (so the batches too: a sweep
trains every trial on the same digits in the same order) and differ in their activations and
initial weights (init, seed): each activation is applied to its own members' slice of a layer.
Each member is the trial `train.run` would train: it starts from `network.build(arch, init,
seed)`'s weights, reads the very batches of `FastLoader(seed=config.seed)` and is updated by the
same optimizer (`config.make_optimizer`, fused Adam or SGD: both elementwise, so one optimizer
over the stacked tensors does each member's update exactly).
What differs: the stacked matmuls may add up in another order than `nn.Linear`'s, and the loss is
computed for all members in one call; so weights can drift apart by float rounding, and test
accuracies by a few hundredths of a point (tests/test_stacked.py holds the bar: 0.3 points).
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mnistlab import network, train
from mnistlab.data import FastLoader, Split

# A stack's size, in members and in first-layer units (K * h1): past about a thousand units the
# matmuls' arithmetic dominates a step, so more members gain little and cost memory, and a stack's
# trials all finish together (the page shows results stack by stack).
MAX_STACK = 32
MAX_STACK_UNITS = 1024
ACTIVATION_FUNCTIONS = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}


@dataclass(frozen=True)
class Trained:
    """One member's outcome: its test results and its share of the stack's training time."""

    test_accuracy: float
    test_loss: float
    per_class_accuracy: list[float]
    train_loss: float  # mean training loss over its last epoch
    seconds: float  # the stack's training time divided by its members
    stacked: int  # how many networks trained together


def stack_key(trial) -> tuple:
    """Trials with equal keys train in one stack: the same layer sizes and settings (so the same
    batches); only their activations and initial weights (init and seed) differ."""
    return trial.arch.hidden, trial.config


def stack_size(trial, max_size: int = MAX_STACK, max_units: int = MAX_STACK_UNITS) -> int:
    """How many trials of `trial`'s shape one stack holds."""
    return max(1, min(max_size, max_units // trial.arch.hidden[0]))


def stacks(trials: list, max_size: int = MAX_STACK, max_units: int = MAX_STACK_UNITS) -> list[list]:
    """`trials` grouped into stacks (see `stack_size`), in the order of their first trial; within a
    stack, members of one activation are neighbours, so each activation is one operation."""
    by_key: dict[tuple, list] = defaultdict(list)
    for t in trials:
        by_key[stack_key(t)].append(t)
    out = []
    for members in by_key.values():
        members = sorted(members, key=lambda t: t.arch.activations)  # stable: seeds stay in order
        size = stack_size(members[0], max_size, max_units)
        out += [members[i:i + size] for i in range(0, len(members), size)]
    return out


def _runs(names: list[str]) -> list[tuple[int, int, object]]:
    """Members' activation names at one layer as runs of neighbours: (first, end, function)."""
    runs: list[tuple[int, int, object]] = []
    for m, name in enumerate(names):
        if runs and runs[-1][2] is ACTIVATION_FUNCTIONS[name]:
            runs[-1] = (runs[-1][0], m + 1, runs[-1][2])
        else:
            runs.append((m, m + 1, ACTIVATION_FUNCTIONS[name]))
    return runs


def _activate(h: torch.Tensor, runs: list, dim: int) -> torch.Tensor:
    """Each run's activation on its members' slice of `h` (members along `dim`)."""
    if len(runs) == 1:
        return runs[0][2](h)
    return torch.cat([f(h.narrow(dim, a, b - a)) for a, b, f in runs], dim)


class Stack:
    """K networks of one shape as stacked tensors: fc1 as one (K*h1, 784) matrix (the members read
    the same batch, so their first layers are one matmul), later layers as (K, in, out) for bmm.
    Each product keeps nn.Linear's orientation (images by features): computed transposed, the
    10-wide output layer runs about 2.5x faster, but its sums round differently and trials drifted
    up to 0.3 points from their one-by-one runs; laid out so, most come out identical (bench 9).
    `archs` give each member's activations; their layer sizes are the same."""

    def __init__(self, models, archs: list[network.Architecture], device):
        arch = archs[0]
        self.arch, self.k = arch, len(models)
        names = arch.linear_names()
        first = [getattr(m, names[0]) for m in models]
        self.w1 = torch.cat([lay.weight.detach() for lay in first]).to(device)
        self.b1 = torch.cat([lay.bias.detach() for lay in first]).to(device)
        self.weights, self.biases = [], []
        for name in names[1:]:
            layers = [getattr(m, name) for m in models]
            # (K, in, out): h @ W for each member, as nn.Linear computes h @ weight.T
            w = torch.stack([lay.weight.detach().t() for lay in layers])
            self.weights.append(w.contiguous().to(device))
            self.biases.append(torch.stack([lay.bias.detach() for lay in layers]).unsqueeze(1).to(device))
        for p in self.parameters():
            p.requires_grad_(True)
        # per hidden layer, the members' activations as runs of neighbours
        self.runs = [_runs([a.activations[i] for a in archs]) for i in range(len(arch.hidden))]

    def parameters(self) -> list[torch.Tensor]:
        return [self.w1, self.b1, *self.weights, *self.biases]

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 784) images, read by every member: (K, B, 10) scores."""
        h = F.linear(images, self.w1, self.b1).view(len(images), self.k, -1)  # (B, K, h1)
        h = _activate(h, self.runs[0], 1).transpose(0, 1)  # (K, B, h1)
        for i, (w, b) in enumerate(zip(self.weights, self.biases), 1):
            h = torch.baddbmm(b, h, w)
            if i < len(self.runs):
                h = _activate(h, self.runs[i], 0)
        return h

    def losses(self, scores: torch.Tensor, labels: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """Each member's cross-entropy over the batch, (K,), in one call: (B, 10, K) against (B, K)."""
        per_image = F.cross_entropy(scores.permute(1, 2, 0), labels.unsqueeze(1).expand(-1, self.k),
                                    reduction="none")
        return per_image.mean(0) if reduction == "mean" else per_image.sum(0)

    @torch.no_grad()
    def evaluate(self, split: Split, normalization: str, batch_size: int = 2_000) -> list[tuple]:
        """Each member's (loss, accuracy, per-class accuracy) on `split`, as `train.evaluate` gives
        them, with the images normalized and read once for all members."""
        device = self.w1.device
        loss = torch.zeros(self.k, dtype=torch.float64)
        members = torch.arange(self.k).unsqueeze(1) * 100
        confusion = torch.zeros(self.k * 100, dtype=torch.long)  # per member: true * 10 + predicted
        for lo in range(0, len(split), batch_size):
            images = split.normalized(slice(lo, lo + batch_size), device, normalization).flatten(1)
            labels = split.labels[lo:lo + batch_size].to(device)
            scores = self.logits(images)  # (K, n, 10)
            loss += self.losses(scores, labels, "sum").cpu().double()
            cells = (labels * 10 + scores.argmax(2)).cpu() + members
            confusion += torch.bincount(cells.flatten(), minlength=self.k * 100)
        confusion = confusion.view(self.k, 10, 10)
        right = confusion.diagonal(dim1=1, dim2=2)
        per_class = right / confusion.sum(2).clamp(min=1)
        accuracy = right.sum(1) / len(split)
        return [(loss[m].item() / len(split), accuracy[m].item(), per_class[m].tolist())
                for m in range(self.k)]

    def copy_into(self, model, m: int):
        """Member `m`'s weights into `model` (built with the same layer sizes)."""
        names = self.arch.linear_names()
        rows = self.w1.shape[0] // self.k
        with torch.no_grad():
            first = getattr(model, names[0])
            first.weight.copy_(self.w1[m * rows:(m + 1) * rows])
            first.bias.copy_(self.b1[m * rows:(m + 1) * rows])
            for name, w, b in zip(names[1:], self.weights, self.biases):
                getattr(model, name).weight.copy_(w[m].t())
                getattr(model, name).bias.copy_(b[m, 0])
        return model


class FusedAdam:
    """`torch.optim.Adam(fused=True)`'s step, the very kernel with the very settings, without the ~0.15 ms
    of Python bookkeeping its `step()` adds (at batch 64 a fifth of a small stack's step)."""

    def __init__(self, optimizer: torch.optim.Adam):
        group = optimizer.param_groups[0]
        self.params = list(group["params"])
        self.lr, (self.beta1, self.beta2), self.eps = group["lr"], group["betas"], group["eps"]
        self.weight_decay = group["weight_decay"]
        self.exp_avgs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.exp_avg_sqs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.steps = [torch.zeros((), dtype=torch.float32, device=p.device) for p in self.params]

    @classmethod
    def wrapping(cls, optimizer: torch.optim.Optimizer):
        """This for a plain fused Adam (what TrainConfig makes); any other optimizer as it is."""
        group = optimizer.param_groups[0]
        plain = (isinstance(optimizer, torch.optim.Adam) and group.get("fused")
                 and len(optimizer.param_groups) == 1
                 and not group["amsgrad"] and not group["maximize"] and not group["capturable"]
                 and not group["differentiable"] and not group.get("decoupled_weight_decay", False)
                 and not isinstance(group["lr"], torch.Tensor))
        return cls(optimizer) if plain else optimizer

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        torch._foreach_add_(self.steps, 1)
        torch._fused_adam_(self.params, [p.grad for p in self.params], self.exp_avgs, self.exp_avg_sqs, [],
                           self.steps, lr=self.lr, beta1=self.beta1, beta2=self.beta2,
                           weight_decay=self.weight_decay, eps=self.eps, amsgrad=False, maximize=False)


def train_group(trials: list, train_split: Split, test_split: Split, device="cpu", callback=None,
                stop=None) -> list[Trained] | None:
    """Train `trials` (one stack: see `stacks`) together; each one's `Trained`, in order.

    `callback(progress)` is called every train.REPORT_EVERY steps and at each epoch's end (loss:
    the members' mean) and may return False to stop; stopped (also by `stop`, a threading.Event),
    it returns None: an unfinished trial has no result.
    """
    if not trials:
        return []
    config = trials[0].config
    if any(stack_key(t) != stack_key(trials[0]) for t in trials):
        raise ValueError("A stack's trials must share their layer sizes and training settings.")
    device = network.resolve_device(device)
    k = len(trials)
    if k == 1:  # nothing to stack: the one-by-one loop is the faster one
        return _train_one(trials[0], train_split, test_split, device, callback, stop)
    models = [network.build(t.arch, t.init, t.seed) for t in trials]
    stack = Stack(models, [t.arch for t in trials], device)
    optimizer = FusedAdam.wrapping(config.make_optimizer(stack.parameters()))
    loader = FastLoader(train_split, config.batch_size, shuffle=True, seed=config.seed, device=device,
                        normalization=config.normalization)
    total = len(loader) * config.epochs
    start = time.perf_counter()
    step, last_epoch = 0, []
    for epoch in range(1, config.epochs + 1):
        losses = []
        for images, labels in loader:
            scores = stack.logits(images.flatten(1))  # (K, B, 10)
            loss = stack.losses(scores, labels)
            optimizer.zero_grad()
            loss.sum().backward()  # each member's gradient is that of its own mean loss
            optimizer.step()
            losses.append(loss.detach())
            step += 1
            end = step % len(loader) == 0
            stopping = stop is not None and stop.is_set()
            if step % train.REPORT_EVERY == 0 or end or stopping:
                if callback is not None:
                    recent = torch.stack(losses[-train.REPORT_EVERY:]).mean().item()
                    right = (scores.detach().argmax(2) == labels).float().mean().item()  # this batch
                    stopping |= callback(train.Progress(
                        step=step, total_steps=total, epoch=epoch, epochs=config.epochs, loss=recent,
                        accuracy=right, recent_accuracy=right, steps_per_epoch=len(loader),
                        epoch_end=end)) is False
                if stopping:
                    return None
                time.sleep(0)  # hand the GIL over between reports, as train.train does
        last_epoch = torch.stack(losses).mean(0).tolist()
    seconds = (time.perf_counter() - start) / k

    return [Trained(test_accuracy=accuracy, test_loss=loss, per_class_accuracy=per_class,
                    train_loss=last_epoch[m], seconds=seconds, stacked=k)
            for m, (loss, accuracy, per_class) in enumerate(stack.evaluate(test_split, config.normalization))]


def _train_one(trial, train_split: Split, test_split: Split, device, callback, stop) -> list[Trained] | None:
    run = train.run(trial.arch, trial.init, trial.seed, trial.config, train_split, test_split, device,
                    callback=callback, stop=stop)
    if run.history.stopped_early:
        return None
    steps, e = run.history.steps_per_epoch, run.evaluation
    return [Trained(test_accuracy=e.accuracy, test_loss=e.loss, per_class_accuracy=e.per_class_accuracy,
                    train_loss=sum(run.history.loss[-steps:]) / steps, seconds=run.seconds, stacked=1)]
