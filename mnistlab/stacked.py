"""Training several networks of one shape at once: a sweep's seeds, inits and activations stacked
into batched matmuls.

At batch 64 a small network's step costs about what its ~40 operations cost to launch, not what
their arithmetic costs; K networks stacked into `torch.baddbmm` run the same ~40 operations on
K times the numbers, so K trials take little longer than one.

A stack's members share their layer sizes and training settings (so the batches too: a sweep
trains every trial on the same digits in the same order) and differ in their activations and
initial weights (init, seed): each activation is applied to its own members' slice of a layer.
Each member is the trial `runs.run` would train: it starts from its `Network`'s weights, reads
the very batches of `FastLoader(seed=config.batch_seed)` and is updated by the same optimizer
(`config.make_optimizer`, fused Adam or SGD: both elementwise, so one optimizer over the stacked
tensors does each member's update exactly). A `Stack` is what `train.train`, the one loop, trains
and `train.evaluate_all`, the one evaluation, scores: it supplies its scores, losses and parameters.
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

from mnistlab import network, runs, splits, train
from mnistlab.activations import ACTIVATIONS
from mnistlab.data import Split

# A stack's size, in members and in first-layer units (K * h1): past about a thousand units the
# matmuls' arithmetic dominates a step, so more members gain little and cost memory, and a stack's
# trials all finish together (the page shows results stack by stack).
MAX_STACK = 32
MAX_STACK_UNITS = 1024


@dataclass(frozen=True)
class Trained:
    """One member's outcome: its results on the three splits, its best validation epoch, and its share
    of the stack's training time. Choose on validation; test is the final report."""

    test_accuracy: float
    test_loss: float
    per_class_accuracy: list[float]  # on the test split
    train_loss: float  # mean training loss over its last epoch
    seconds: float  # the stack's training time divided by its members
    stacked: int  # how many networks trained together
    train_accuracy: float | None = None  # the trained network on the images it learned from
    validation_accuracy: float | None = None  # ... and on the validation split, after its last epoch
    validation_loss: float | None = None
    best_epoch: int | None = None  # the epoch with the lowest validation loss
    best_validation_accuracy: float | None = None  # the validation accuracy at that epoch


def _trained(history: train.History, m: int, test: train.Evaluation, on_train: train.Evaluation,
             seconds: float, k: int) -> Trained:
    best = history.best_epoch(m)
    return Trained(test_accuracy=test.accuracy, test_loss=test.loss,
                   per_class_accuracy=test.per_class_accuracy, train_loss=history.epoch_loss[-1][m],
                   seconds=seconds, stacked=k, train_accuracy=on_train.accuracy,
                   validation_accuracy=history.epoch_validation_accuracy[-1][m],
                   validation_loss=history.epoch_validation_loss[-1][m], best_epoch=best,
                   best_validation_accuracy=history.epoch_validation_accuracy[best - 1][m])


def stack_key(trial) -> tuple:
    """Trials with equal keys train in one stack: the same layer sizes, dropout, batch norm and
    settings (so the same batches and dropout masks); only their activations and initial weights
    (init and seed) differ."""
    arch = trial.arch
    return (arch.hidden, arch.inputs, arch.outputs, arch.dropout, arch.batch_norm, trial.config,
            arch.features, arch.image)


def stack_size(trial, max_size: int = MAX_STACK, max_units: int = MAX_STACK_UNITS) -> int:
    """How many trials of `trial`'s shape one stack holds. A CNN trains alone: here its convolutions
    keep the cores busy, and grouped convolutions or vmap measured slower than one by one (README);
    so does a network without hidden layers, which `Stack` does not hold."""
    if trial.arch.features or not trial.arch.hidden:
        return 1
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


def _groups(names: list[str]) -> list[tuple[int, int, object]]:
    """Members' activation names at one layer as groups of neighbours with the same function:
    (first, end, function)."""
    groups: list[tuple[int, int, object]] = []
    for m, name in enumerate(names):
        if groups and groups[-1][2] is ACTIVATIONS[name].function:
            groups[-1] = (groups[-1][0], m + 1, groups[-1][2])
        else:
            groups.append((m, m + 1, ACTIVATIONS[name].function))
    return groups


def _activate(h: torch.Tensor, groups: list, dim: int) -> torch.Tensor:
    """Each group's activation on its members' slice of `h` (members along `dim`)."""
    if len(groups) == 1:
        return groups[0][2](h)
    return torch.cat([f(h.narrow(dim, a, b - a)) for a, b, f in groups], dim)


class Stack:
    """K networks of one shape as stacked tensors: fc1 as one (K*h1, 784) matrix (the members read
    the same batch, so their first layers are one matmul), later layers as (K, in, out) for bmm.
    Each product keeps nn.Linear's orientation (images by features): computed transposed, the
    10-wide output layer runs about 2.5x faster, but its sums round differently and trials drifted
    up to 0.3 points from their one-by-one runs; laid out so, most come out identical (bench 9).
    `archs` give each member's activations; their layer sizes, dropout and batch norm are the same.

    Batch norm: each layer's members' features side by side, (B, K*h), one `F.batch_norm` over
    them, whose statistics are per feature, so per member. Dropout: every member's one-by-one run
    draws the same masks (the generator is seeded by the batch-order seed, which a stack's members
    share, and the masks' shapes are the same), so one (B, h) mask per layer, drawn in the order
    the one-by-one run draws it, serves every member: each member's masks are its run's exactly."""

    def __init__(self, models, archs: list[network.Architecture], device):
        arch = archs[0]
        self.arch, self.k = arch, len(models)
        self.classes = arch.outputs
        self.training, self.masks = True, network.DropoutMasks()
        self.batch_norm = arch.batch_norm
        # per hidden layer, the members' batch norm as (K*h,) tensors: scale, shift, running stats
        self.bn = [tuple(torch.cat([getattr(getattr(m, name), t).detach() for m in models]).to(device)
                         for t in ("weight", "bias", "running_mean", "running_var"))
                   for name in arch.bn_names()]
        self.bn_batches = 0  # each member's num_batches_tracked
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
        # per hidden layer, the members' activations as groups of neighbours
        self.groups = [_groups([a.activations[i] for a in archs]) for i in range(len(arch.hidden))]

    def parameters(self) -> list[torch.Tensor]:
        return [self.w1, self.b1, *self.weights, *self.biases, *(t for bn in self.bn for t in bn[:2])]

    def _normalize(self, h: torch.Tensor, i: int) -> torch.Tensor:
        """Layer i's batch norm on (B, K*h) features, each member's over its own features."""
        weight, bias, mean, var = self.bn[i]
        return F.batch_norm(h, mean, var, weight, bias, self.training, 0.1, 1e-5)  # nn.BatchNorm1d's

    def _drop(self, h: torch.Tensor, i: int, members_dim: int) -> torch.Tensor:
        """Layer i's dropout: one (B, h) mask for every member, as each one-by-one run draws it."""
        p = self.arch.dropout[i]
        if not self.training or p == 0:
            return h
        mask = self.masks.bernoulli(h.select(members_dim, 0), p)
        return h * mask.unsqueeze(members_dim)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """(B, inputs) images (or (B, 1, 28, 28), flattened here), read by every member: (K, B, classes)."""
        n = len(images)
        images = images.reshape(n, -1)
        h = F.linear(images, self.w1, self.b1)  # (B, K*h1)
        if self.batch_norm:
            h = self._normalize(h, 0)
        h = _activate(h.view(n, self.k, -1), self.groups[0], 1)  # (B, K, h1)
        h = self._drop(h, 0, 1).transpose(0, 1)  # (K, B, h1)
        for i, (w, b) in enumerate(zip(self.weights, self.biases), 1):
            h = torch.baddbmm(b, h, w)
            if i < len(self.groups):
                if self.batch_norm:  # (K, B, h) as (B, K*h) and back
                    h = self._normalize(h.transpose(0, 1).reshape(n, -1), i)
                    h = h.view(n, self.k, -1).transpose(0, 1)
                h = self._drop(_activate(h, self.groups[i], 0), i, 0)
        if self.batch_norm and self.training:
            self.bn_batches += 1
        return h

    def member_state(self, m: int) -> dict[str, torch.Tensor]:
        """Member m's weights (and batch norm's statistics) as `network.build`'s state_dict names them."""
        names, state = self.arch.linear_names(), {}
        h = self.arch.hidden[0]
        state[f"{names[0]}.weight"] = self.w1[m * h:(m + 1) * h]
        state[f"{names[0]}.bias"] = self.b1[m * h:(m + 1) * h]
        for name, w, b in zip(names[1:], self.weights, self.biases):
            state[f"{name}.weight"], state[f"{name}.bias"] = w[m].t(), b[m, 0]
        for name, size, tensors in zip(self.arch.bn_names(), self.arch.hidden, self.bn):
            for t, value in zip(("weight", "bias", "running_mean", "running_var"), tensors):
                state[f"{name}.{t}"] = value[m * size:(m + 1) * size]
            state[f"{name}.num_batches_tracked"] = torch.tensor(self.bn_batches)
        return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in state.items()}

    def losses(self, scores: torch.Tensor, labels: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """Each member's cross-entropy over the batch, (K,), in one call: (B, classes, K) against (B, K)."""
        per_image = F.cross_entropy(scores.permute(1, 2, 0), labels.unsqueeze(1).expand(-1, self.k),
                                    reduction="none")
        return per_image.mean(0) if reduction == "mean" else per_image.sum(0)

    def train(self, mode: bool = True):
        """Training (dropout drops, batch norm uses each batch's statistics) or eval mode."""
        self.training = mode
        return self

    def seed_dropout(self, seed: int) -> None:
        """The masks' generator, seeded as the one-by-one run's (`network.seed_dropout`)."""
        self.masks = network.DropoutMasks(network.check_seed(seed))


def train_group(trials: list, train_split: Split, test_split: Split, device="cpu", callback=None,
                stop=None) -> list[Trained] | None:
    """Train `trials` (one stack: see `stacks`) together on the training images their settings pick
    from `train_split` (`splits.training_splits`, as `runs.run` does), checking each member on the
    same validation split; each one's `Trained`, in order.

    `callback(progress)` is called as `train.train` calls it (loss and accuracy: the members'
    mean) and may return False to stop; stopped (also by `stop`, a threading.Event), it returns
    None: an unfinished trial has no result.
    """
    if not trials:
        return []
    config = trials[0].config
    if any(stack_key(t) != stack_key(trials[0]) for t in trials):
        raise ValueError("A stack's trials must share their layer sizes and training settings.")
    device = network.resolve_device(device)
    k = len(trials)
    if k == 1:  # nothing to stack: one network's own layers are the faster ones
        return _train_one(trials[0], train_split, test_split, device, callback, stop)
    train.check_split(config, test_split)
    learn, validation = splits.training_splits(train_split, config)
    stack = Stack([network.build_network(t.network) for t in trials], [t.arch for t in trials], device)
    start = time.perf_counter()
    history = train.train(stack, config, learn, device, callback, stop, validation=validation)
    if history.stopped_early:
        return None
    seconds = (time.perf_counter() - start) / k
    tests = train.evaluate_all(stack, test_split, config.normalization, batch_size=2_000)
    on_train = train.evaluate_all(stack, learn, config.normalization, batch_size=2_000)
    return [_trained(history, m, tests[m], on_train[m], seconds, k) for m in range(k)]


def _train_one(trial, train_split: Split, test_split: Split, device, callback, stop) -> list[Trained] | None:
    run = runs.run(trial.network, trial.config, train_split, test_split, device, callback=callback,
                   stop=stop)
    if run.history.stopped_early:
        return None
    return [_trained(run.history, 0, run.evaluation, run.train_evaluation, run.seconds, 1)]
