"""The one training loop (`train`), its progress reports and curves (`Progress`, `History`), what it
trains (`Trainee`: one network as `Single`, or a `stacked.Stack`), and the one evaluation
(`evaluate_all`, `evaluate`).

The loop is the lesson's: batches from a loader, forward, loss, backward, optimizer step. It reads
batches from `data.FastLoader` (the split held once in memory) and reports progress to a callback,
which can also stop it. It trains one `nn.Sequential` or a stack of networks (`stacked.Stack`)
alike: whatever it trains supplies its scores, its losses and its parameters (`Trainee`). How it
trains is a `train_config.TrainConfig`; `runs.run` keeps what one training gives as a `Run`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from mnistlab import network
from mnistlab.data import FastLoader, Split
from mnistlab.errors import ConfigError
from mnistlab.train_config import TrainConfig

REPORT_EVERY = 20  # steps between progress reports: often enough for a live curve, cheap enough


@dataclass(frozen=True)
class Check:
    """Validation scored once while training: after `step` steps, on `images` validation images (all
    of them at each epoch's end; within an epoch the first 1/(2 × evaluations), to stay cheap).
    A stack's: its members' mean."""

    step: int
    loss: float
    accuracy: float
    images: int


@dataclass(frozen=True)
class Progress:
    """What a progress report shows: where training is, and how it is doing lately."""

    step: int  # steps done so far, over all epochs
    total_steps: int
    epoch: int  # 1-based epoch in progress (or just finished)
    epochs: int
    loss: float  # mean training loss over the steps since the previous report
    accuracy: float  # fraction of this epoch's training images classified right so far
    recent_accuracy: float  # the same over the steps since the previous report (a curve's point)
    steps_per_epoch: int
    epoch_end: bool = False
    dynamics: tuple = ()  # the dynamics rows recorded since the previous report (see mnistlab.dynamics)
    validation: tuple[Check, ...] = ()  # validation checks since the previous report

    @property
    def validation_accuracy(self) -> float | None:
        """The latest validation accuracy in this report, if validation was checked since the last."""
        return self.validation[-1].accuracy if self.validation else None

    @property
    def validation_loss(self) -> float | None:
        return self.validation[-1].loss if self.validation else None

    @property
    def fraction(self) -> float:
        return self.step / self.total_steps

    @property
    def epochs_done(self) -> float:
        """Where this report sits on a curve's x axis, in epochs."""
        return self.step / self.steps_per_epoch


def progress_curve(reports: list[Progress]) -> tuple[list[float], list[float], list[float]]:
    """(epochs, loss, accuracy) from the reports so far: the live curve while a run trains."""
    return ([p.epochs_done for p in reports], [p.loss for p in reports], [p.recent_accuracy for p in reports])


def validation_progress_curve(reports: list[Progress]) -> tuple[list[float], list[float], list[float]]:
    """(epochs, loss, accuracy) of the validation checks reported so far: the live dashed curve beside
    `progress_curve`, as `History.validation_curve` draws it once done."""
    checks = [(c.step / p.steps_per_epoch, c) for p in reports for c in p.validation]
    return [x for x, _ in checks], [c.loss for _, c in checks], [c.accuracy for _, c in checks]


@dataclass
class History:
    """Training curves: one loss and one batch accuracy per step (a stack's: its members' mean), where
    each epoch ended, and each member's mean loss over each epoch."""

    steps_per_epoch: int
    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    epoch_ends: list[int] = field(default_factory=list)  # step count at the end of each whole epoch
    epoch_loss: list[list[float]] = field(default_factory=list)  # per epoch, per member
    stopped_early: bool = False  # stopped before its last epoch by its user or a time limit
    # validation, checked `evaluations` times per epoch (members' mean) ...
    validation_steps: list[int] = field(default_factory=list)
    validation_loss: list[float] = field(default_factory=list)
    validation_accuracy: list[float] = field(default_factory=list)
    validation_images: list[int] = field(default_factory=list)  # how many images each check read
    # ... and on every validation image at each epoch's end: per epoch, per member
    epoch_validation_loss: list[list[float]] = field(default_factory=list)
    epoch_validation_accuracy: list[list[float]] = field(default_factory=list)
    patience_ran_out: bool = False  # early stopping ended it: `early_stop` epochs without a better loss
    kept_epoch: int | None = None  # with early stopping on: the epoch whose weights the network kept

    def add_check(self, check: Check) -> None:
        self.validation_steps.append(check.step)
        self.validation_loss.append(check.loss)
        self.validation_accuracy.append(check.accuracy)
        self.validation_images.append(check.images)

    def best_epoch(self, member: int = 0) -> int | None:
        """The (first) epoch with the lowest validation loss, 1-based; None without validation."""
        losses = [epoch[member] for epoch in self.epoch_validation_loss]
        return losses.index(min(losses)) + 1 if losses else None

    def validation_curve(self) -> tuple[list[float], list[float], list[float]]:
        """(epochs, loss, accuracy) of the validation checks: the dashed curve beside `curve`."""
        return ([s / self.steps_per_epoch for s in self.validation_steps], list(self.validation_loss),
                list(self.validation_accuracy))

    @property
    def steps(self) -> int:
        return len(self.loss)

    def curve(self, every: int = REPORT_EVERY) -> tuple[list[float], list[float], list[float]]:
        """(epochs, loss, accuracy) averaged between progress reports: the live curve, once done.

        Single steps are noisy (one batch each); these means are what the progress reports showed.
        """
        ends = sorted(set(range(every, self.steps + 1, every)) | set(self.epoch_ends) | {self.steps} - {0})
        x, loss, acc, lo = [], [], [], 0
        for hi in ends:
            x.append(hi / self.steps_per_epoch)
            loss.append(sum(self.loss[lo:hi]) / (hi - lo))
            acc.append(sum(self.accuracy[lo:hi]) / (hi - lo))
            lo = hi
        return x, loss, acc


class Trainee(Protocol):
    """What the loop trains: `k` networks that read the same batches (1 for one nn.Sequential)."""

    k: int

    def parameters(self) -> list[torch.Tensor]: ...

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """(B, inputs) images to scores: (B, classes) for one network, (K, B, classes) for K."""

    def losses(self, scores: torch.Tensor, labels: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """Cross-entropy: a 0-dim tensor for one network, (K,) for K."""

    def train(self, mode: bool = True): ...


EVAL_NUMBERS = 25_000_000  # numbers in the largest activation of one evaluation batch: 100 MB


class Single:
    """One `nn.Sequential` (built by `network.build`) as the loop trains it: cross-entropy on the
    scores before the softmax layer, which is there to show probabilities. Cross-entropy on logits
    (log-softmax inside) is the numerically stable form; the log of softmax outputs would underflow
    for confident wrong answers."""

    k = 1

    def __init__(self, model: nn.Sequential):
        self.model = model
        self.body = model[:-1]  # network.logits' layers, sliced once instead of every step
        # images an evaluation reads at once: a CNN's feature maps of 10,000 images would take GBs
        self.eval_batch = max(1, EVAL_NUMBERS // network.numbers_per_image(model))

    def parameters(self) -> list[torch.Tensor]:
        return list(self.model.parameters())

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(network.as_input(self.model, images))

    def losses(self, scores: torch.Tensor, labels: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        return F.cross_entropy(scores, labels, reduction=reduction)

    def train(self, mode: bool = True):
        self.model.train(mode)
        return self

    def state(self) -> dict[str, torch.Tensor]:
        """A copy of its weights (and any buffers), to come back to (early stopping)."""
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(state)

    def seed_dropout(self, seed: int) -> None:
        network.seed_dropout(self.model, seed)

    @property
    def batch_norm(self) -> bool:
        return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in self.model.modules())


class FusedAdam:
    """`torch.optim.Adam(fused=True)`'s or `AdamW(fused=True)`'s step, the very kernel with the very
    settings (weight decay included: L2 for Adam, decoupled for AdamW), without the ~0.15 ms of
    Python bookkeeping its `step()` adds (at batch 64 a fifth of a small network's step)."""

    def __init__(self, optimizer: torch.optim.Adam):
        group = optimizer.param_groups[0]
        self.params = list(group["params"])
        self.lr, (self.beta1, self.beta2), self.eps = group["lr"], group["betas"], group["eps"]
        self.weight_decay = group["weight_decay"]
        # torch's Adam picks its kernel so too (torch/optim/adam.py, _fused_adam)
        self.kernel = torch._fused_adamw_ if group.get("decoupled_weight_decay") else torch._fused_adam_
        self.exp_avgs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.exp_avg_sqs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.steps = [torch.zeros((), dtype=torch.float32, device=p.device) for p in self.params]

    @classmethod
    def wrapping(cls, optimizer: torch.optim.Optimizer):
        """This for a plain fused Adam or AdamW (what TrainConfig makes); any other optimizer as it is."""
        group = optimizer.param_groups[0]
        plain = (isinstance(optimizer, torch.optim.Adam) and group.get("fused")  # AdamW is an Adam
                 and len(optimizer.param_groups) == 1
                 and not group["amsgrad"] and not group["maximize"] and not group["capturable"]
                 and not group["differentiable"] and not isinstance(group["lr"], torch.Tensor)
                 and not isinstance(group["weight_decay"], torch.Tensor))
        return cls(optimizer) if plain else optimizer

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        torch._foreach_add_(self.steps, 1)
        self.kernel(self.params, [p.grad for p in self.params], self.exp_avgs, self.exp_avg_sqs, [],
                    self.steps, lr=self.lr, beta1=self.beta1, beta2=self.beta2,
                    weight_decay=self.weight_decay, eps=self.eps, amsgrad=False, maximize=False)


def check_split(config: TrainConfig, split: Split) -> None:
    """A network learns and is scored on the data set its settings name, never another."""
    if split.dataset.name != config.dataset:
        raise ConfigError(f"These settings train on {config.data.title}, but the images given are "
                          f"{split.dataset.title}'s.")


def check_steps(steps_per_epoch: int, evaluations: int) -> list[int]:
    """The steps within an epoch (1-based) after which validation is checked; the last is its end."""
    return sorted({round(i * steps_per_epoch / evaluations) for i in range(1, evaluations + 1)} - {0})


class _Validation:
    """Validation as the loop checks it: normalized once on the device, scored by `evaluate_all`,
    whole at each epoch's end (what chooses the best epoch), and within an epoch its first
    1/(2 × evaluations) (1,250 of 10,000 images at 4 checks an epoch): 4 whole passes would cost a
    fifth of a 50,000-image epoch at batch 64 on a CPU core, these under a tenth (bench item 10)."""

    def __init__(self, split: Split, config: TrainConfig, device, k: int):
        self.split, self.normalization = split, config.normalization
        self.inputs = split.normalized(slice(None), device, config.normalization)
        self.part = -(-len(split) // (2 * config.evaluations))
        self.batch_size = 10_000 if k == 1 else 2_000  # a stack's hidden layers are K times as wide

    def check(self, trainee, step: int, whole: bool) -> tuple[Check, list[Evaluation]]:
        n = len(self.split) if whole else self.part
        evaluations = evaluate_all(trainee, self.split.first(n), self.normalization, self.batch_size,
                                   inputs=self.inputs[:n])
        trainee.train()
        mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
        return Check(step, mean([e.loss for e in evaluations]), mean([e.accuracy for e in evaluations]),
                     n), evaluations


def train(trainee, config: TrainConfig, split: Split, device="cpu",
          callback=None, stop=None, recorder=None, validation: Split | None = None, pause=None) -> History:
    """Train `trainee` (an nn.Sequential, or any `Trainee`: a stack) in place on `split`, the images
    it learns from as they are (`splits.training_splits` makes them from a data set's training
    images), and return its curves.

    `callback(progress)` is called every REPORT_EVERY steps and at each epoch's end; training
    stops early when it returns False or when `stop` (a threading.Event) is set. A `recorder`
    (`dynamics.Recorder`, for one nn.Sequential) gathers each layer's learning dynamics as it
    goes, without changing what is trained. With a `validation` split, validation is checked
    `config.evaluations` times per epoch (in eval mode), and with `config.early_stop` training
    ends after that many epochs without a lower validation loss, keeping the best epoch's weights.
    A `pause` (`jobs.Pause`) holds the loop between batches while it is paused; each batch trained
    while paused is reported, so a stepped batch shows at once. Where it waits never changes what
    it trains.
    """
    if isinstance(trainee, nn.Module):
        trainee = Single(trainee)
    check_split(config, split)
    if config.early_stop and (validation is None or not hasattr(trainee, "state")):
        raise ValueError("Early stopping needs a validation split and one network (a stack's members "
                         "would each stop at another epoch).")
    device = network.resolve_device(device)
    loader = FastLoader(split, config.batch_size, shuffle=True, seed=config.batch_seed, device=device,
                        normalization=config.normalization)
    optimizer = FusedAdam.wrapping(config.make_optimizer(trainee.parameters()))
    history = History(steps_per_epoch=len(loader))
    total = len(loader) * config.epochs
    checking = None
    if validation is not None:
        check_split(config, validation)
        checking = _Validation(validation, config, device, trainee.k)
        due = set(check_steps(len(loader), config.evaluations))
        best_loss, best_state = math.inf, None
    # Each step's loss and right answers stay on the device until a report, so a GPU is not
    # synchronised every step (and a CPU runs 2 small ops a step for them, not 5).
    losses, rights, sizes, checks = [], [], [], []
    # summed once at the epoch's end, so where reports fall (a paused run's too) cannot change it
    epoch_losses = []
    _check_batch_norm(trainee, len(split), config.batch_size)
    trainee.train()
    trainee.seed_dropout(config.batch_seed)  # dropout's masks: reproducible, private to this run
    if recorder is not None:
        recorder.start(trainee.model, config.normalization, len(loader), config.epochs)
    step = 0
    for epoch in range(1, config.epochs + 1):
        seen = right = 0  # this epoch's images so far (each member's), and how many were right
        for images, labels in loader:
            scores = trainee.logits(images)
            loss = trainee.losses(scores, labels)
            optimizer.zero_grad()
            (loss.sum() if trainee.k > 1 else loss).backward()  # each member's own mean loss's gradient
            recording = recorder is not None and recorder.due(step)
            if recording:
                recorder.before_step()
            optimizer.step()
            if recording:
                recorder.after_step(step)
            losses.append(loss.detach())
            rights.append((scores.argmax(-1) == labels).sum(-1))
            sizes.append(len(labels))
            step += 1
            if recorder is not None and recorder.snapshot_due(step):
                recorder.snapshot(step)
            end = step % len(loader) == 0
            patience_out = False
            if checking is not None and (step - (epoch - 1) * len(loader)) in due:
                check, evaluations = checking.check(trainee, step, whole=end)
                history.add_check(check)
                checks.append(check)
                if end:
                    history.epoch_validation_loss.append([e.loss for e in evaluations])
                    history.epoch_validation_accuracy.append([e.accuracy for e in evaluations])
                    if config.early_stop:
                        if check.loss < best_loss:
                            best_loss, best_state, history.kept_epoch = check.loss, trainee.state(), epoch
                        patience_out = epoch - history.kept_epoch >= config.early_stop
            stopping = stop is not None and stop.is_set()
            held = pause is not None and pause.paused and step < total  # waits after this batch
            if step % REPORT_EVERY == 0 or end or stopping or held:
                step_losses, step_rights = torch.stack(losses), torch.stack(rights)  # (n,) or (n, K)
                epoch_losses.append(step_losses.reshape(len(losses), -1))
                per_step = step_losses.reshape(len(losses), -1).mean(1).tolist()
                right_steps = (step_rights.reshape(len(rights), -1).sum(1) / trainee.k).tolist()
                history.loss += per_step
                history.accuracy += [r / n for r, n in zip(right_steps, sizes)]
                if end:
                    history.epoch_ends.append(step)
                    history.epoch_loss.append((torch.cat(epoch_losses).sum(0) / len(loader)).tolist())
                    epoch_losses = []
                seen, right = seen + sum(sizes), right + sum(right_steps)
                rows = tuple(recorder.flush()) if recorder is not None else ()
                if callback is not None:
                    progress = Progress(step=step, total_steps=total, epoch=epoch, epochs=config.epochs,
                                        loss=sum(per_step) / len(per_step), accuracy=right / seen,
                                        recent_accuracy=sum(right_steps) / sum(sizes),
                                        steps_per_epoch=len(loader), epoch_end=end, dynamics=rows,
                                        validation=tuple(checks))
                    stopping |= callback(progress) is False
                losses, rights, sizes, checks = [], [], [], []
                if stopping or patience_out:
                    history.stopped_early = stopping and step < total
                    history.patience_ran_out = patience_out and not stopping
                    break
                # Torch releases the GIL inside each op; this also hands it over between reports, so
                # other visitors' pages stay responsive. (Every step would cost ~20% of the speed.)
                time.sleep(0)
            if held and not pause.wait(stop):  # stopped while paused; all it trained is reported
                history.stopped_early = True
                break
        if history.stopped_early or history.patience_ran_out:
            break
    if config.early_stop:
        if history.stopped_early:
            history.kept_epoch = None  # stopped by its user: it keeps what it learned
        elif best_state is not None:
            trainee.load_state(best_state)  # the best epoch's weights, as the shown code keeps them
    return _done(trainee, history, recorder, step)


def _check_batch_norm(trainee, n: int, batch_size: int) -> None:
    if getattr(trainee, "batch_norm", False) and n % batch_size == 1:
        raise ConfigError(f"Batch norm needs at least 2 images in every batch, but {n:,} training images "
                          f"in batches of {batch_size} leave 1 image for the last: choose another batch "
                          f"size or number of training images.")


def _done(trainee, history: History, recorder, step: int) -> History:
    if recorder is not None:
        recorder.finish(step)  # the last rows, and a snapshot of the weights as trained
    trainee.train(False)
    return history


@dataclass
class Evaluation:
    """A trained network on one split: what a user checks after training."""

    loss: float
    accuracy: float
    per_class_accuracy: list[float]
    confusion: torch.Tensor  # (classes, classes) int64 counts; row = true class, column = predicted
    misclassified: torch.Tensor | None = None  # (K,) indices into the split
    misclassified_probabilities: torch.Tensor | None = None  # (K, classes), the network's probabilities
    split: str = "test"  # the role of the split it was scored on: train, validation or test

    @property
    def n_misclassified(self) -> int:
        return int(self.confusion.sum() - self.confusion.diagonal().sum())

    def metrics(self) -> dict:
        """The numbers worth saving with a model."""
        return {"test_loss": self.loss, "test_accuracy": self.accuracy,
                "per_class_accuracy": self.per_class_accuracy}


@torch.no_grad()
def evaluate_all(trainee, split: Split, normalization: str = "lesson", batch_size: int = 10_000,
                 mistakes: bool = False, inputs: torch.Tensor | None = None) -> list[Evaluation]:
    """Each of `trainee`'s networks on `split` (its images normalized as they were trained, read once
    for all of them), in eval mode: loss, accuracy, per-class accuracy, confusion matrix, and with
    `mistakes` every misclassified image with its probabilities (one network only). `inputs`: the
    split's images already normalized on the device (the loop's validation)."""
    if isinstance(trainee, nn.Module):
        trainee = Single(trainee)
    trainee.train(False)
    k, c = trainee.k, split.dataset.n_classes
    batch_size = min(batch_size, getattr(trainee, "eval_batch", batch_size))
    device = trainee.parameters()[0].device
    loss = torch.zeros(k, dtype=torch.float64)
    confusion = torch.zeros(k * c * c, dtype=torch.long)  # per network: true * c + predicted
    offsets = torch.arange(k).unsqueeze(1) * c * c
    probs = []
    for lo in range(0, len(split), batch_size):
        images = (split.normalized(slice(lo, lo + batch_size), device, normalization)
                  if inputs is None else inputs[lo:lo + batch_size])
        labels = split.labels[lo:lo + batch_size].to(device)
        scores = trainee.logits(images)  # (n, c) or (K, n, c)
        loss += trainee.losses(scores, labels, "sum").reshape(k).cpu().double()
        if mistakes:
            probs.append(scores.softmax(-1).cpu())
        cells = (labels * c + scores.argmax(-1)).cpu().reshape(k, -1) + offsets
        confusion += torch.bincount(cells.flatten(), minlength=k * c * c)
    confusion = confusion.view(k, c, c)
    right = confusion.diagonal(dim1=1, dim2=2)
    per_class = right / confusion.sum(2).clamp(min=1)
    accuracy = right.sum(1) / len(split)
    out = [Evaluation(loss=loss[m].item() / len(split), accuracy=accuracy[m].item(),
                      per_class_accuracy=per_class[m].tolist(), confusion=confusion[m], split=split.role)
           for m in range(k)]
    if mistakes:
        probabilities = torch.cat(probs)
        wrong = (probabilities.argmax(1) != split.labels).nonzero().flatten()
        out[0].misclassified, out[0].misclassified_probabilities = wrong, probabilities[wrong]
    return out


def evaluate(model: nn.Sequential, split: Split, device=None, batch_size: int = 10_000,
             normalization: str = "lesson") -> Evaluation:
    """One network on `split`, with every mistake (see `evaluate_all`)."""
    if device is not None:
        model.to(network.resolve_device(device))
    return evaluate_all(model, split, normalization, batch_size, mistakes=True)[0]
