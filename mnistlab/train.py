"""How a network is trained (`TrainConfig`), the one training loop, the one evaluation, and the `Run`
a page keeps of each training.

The loop is the lesson's: batches from a loader, forward, loss, backward, optimizer step. It reads
batches from `data.FastLoader` (the split held once in memory) and reports progress to a callback,
which can also stop it. It trains one `nn.Sequential` or a stack of networks (`stacked.Stack`)
alike: whatever it trains supplies its scores, its losses and its parameters (`Trainee`).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field, fields
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from mnistlab import network, parse, splits
from mnistlab.data import NORMALIZATION_RANGE, FastLoader, Split, check_normalization, normalize_code
from mnistlab.dataset import DATASETS, Dataset
from mnistlab.dataset import DEFAULT as DEFAULT_DATASET
from mnistlab.dataset import get as dataset_named
from mnistlab.dynamics import Dynamics, Recorder
from mnistlab.errors import ConfigError
from mnistlab.network import Network

OPTIMIZERS = ("adam", "adamw", "sgd")
# Caps per run, so one visitor cannot hold a shared server's CPUs for long (also in the README).
MAX_EPOCHS = 20
MAX_BATCH_SIZE = 4096
MAX_LR = 10.0
MAX_TRAIN_IMAGES = 60_000
MAX_WEIGHT_DECAY = 1.0
MAX_EVALUATIONS = 10  # validation evaluations per epoch
WEIGHT_DECAY_TEXT = (
    "With adam or sgd, weight decay is L2 regularization: weight decay × each weight is added to its "
    "gradient, so Adam divides it by the same running scale as the gradient, and weights with large "
    "gradients are barely held back. adamw decays the weights apart from the gradient (decoupled: each "
    "step shrinks every weight by lr × weight decay × itself), so every weight is pulled toward 0 alike.")
MAX_RUNS_KEPT = 8  # runs a session keeps; each holds its weights before and after training
REPORT_EVERY = 20  # steps between progress reports: often enough for a live curve, cheap enough


def setting(default, label: str, help: str, flag: str):
    """A TrainConfig field with what the command line and the pages say of it: a new setting is a
    field, and its flag and widget label come with it."""
    return field(default=default, metadata={"label": label, "help": help, "flag": flag})


@dataclass(frozen=True)
class TrainConfig:
    """How a network is trained: every training setting, checked once, here.

    The batch-order seed orders the batches; the same seed gives the same batches, so two networks
    trained with it see the same images in the same order (an A/B comparison). The normalization
    stays with the trained network: it must read drawings and test images the way it read its
    training images.
    """

    optimizer: str = setting("adam", "Optimizer",
                             "adam, adamw (Adam with decoupled weight decay) or sgd (with momentum)",
                             "--optimizer")
    lr: float = setting(1e-3, "Learning rate", f"the optimizer's step size, above 0 and at most {MAX_LR:g}",
                        "--lr")
    momentum: float = setting(0.9, "Momentum", "SGD's momentum, from 0 to 0.999 (SGD only)", "--momentum")
    batch_size: int = setting(64, "Batch size", f"images per step, 1 to {MAX_BATCH_SIZE} (the lesson's: 64)",
                              "--batch-size")
    epochs: int = setting(5, "Epochs", f"passes over the training images, 1 to {MAX_EPOCHS}", "--epochs")
    batch_seed: int = setting(0, "Batch-order seed", "which shuffled order the batches come in",
                              "--batch-seed")
    normalization: str = setting(
        "lesson", "Input normalization",
        f"lesson (Normalize((0.5,), (0.5,)): [-1, 1]), a data set's own mean and std "
        f"({', '.join(DATASETS)}) or none (ToTensor alone: [0, 1])", "--normalize")
    dataset: str = setting("mnist", "Data set", f"the data set to learn: {', '.join(DATASETS)}", "--dataset")
    train_images: int | None = setting(
        None, "Training images",
        "train on the first N images of a seeded stratified order of the training split, each class in "
        "proportion, e.g. 100, 1000 (default: all that do not validate)", "--train-images")
    validation: int = setting(
        splits.DEFAULT_VALIDATION, "Validation images",
        f"training images set aside to choose with (never trained on), {splits.MIN_VALIDATION:,} to "
        f"{splits.MAX_VALIDATION:,}; the test images only report", "--validation")
    split_seed: int = setting(0, "Split seed", "which training images validate, their order, and which "
                                               "labels the label noise changes", "--split-seed")
    label_noise: float = setting(
        0.0, "Label noise", "the fraction of training labels changed to another class at random, from 0 to 1 "
                            "(validation and test labels are never changed)", "--label-noise")
    weight_decay: float = setting(
        0.0, "Weight decay", f"from 0 to {MAX_WEIGHT_DECAY:g}: L2 regularization with adam and sgd, "
                             f"decoupled with adamw", "--weight-decay")
    early_stop: int | None = setting(
        None, "Early stopping", f"stop after this many epochs (1 to {MAX_EPOCHS}) without a lower validation "
                                f"loss and keep the best epoch's weights (default: off)", "--early-stop")
    evaluations: int = setting(4, "Validation checks per epoch",
                               f"how often each epoch validation is scored, 1 to {MAX_EVALUATIONS}",
                               "--evaluations")

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        set_("dataset", dataset_named(self.dataset).name)
        opt = str(self.optimizer).strip().lower()
        if opt not in OPTIMIZERS:
            raise ConfigError(f"Optimizer must be one of {', '.join(OPTIMIZERS)}; got {self.optimizer!r}.")
        set_("optimizer", opt)
        set_("lr", parse.number("Learning rate", self.lr, 0, MAX_LR, lo_open=True))
        set_("momentum", parse.number("Momentum", self.momentum, 0, 0.999, lo_open=False))
        set_("batch_size", parse.whole("Batch size", self.batch_size, 1, MAX_BATCH_SIZE))
        set_("epochs", parse.whole("Epochs", self.epochs, 1, MAX_EPOCHS))
        set_("batch_seed", network.check_seed(self.batch_seed))
        set_("normalization", check_normalization(self.normalization))
        set_("validation", parse.whole("Validation images", self.validation, splits.MIN_VALIDATION,
                                       splits.MAX_VALIDATION))
        set_("split_seed", network.check_seed(self.split_seed))
        if self.train_images in (None, "", 0, "0"):
            set_("train_images", None)
        else:
            hi = MAX_TRAIN_IMAGES - self.validation
            try:
                set_("train_images", parse.whole("Training images", self.train_images, 1, hi))
            except ConfigError:
                raise ConfigError(f"Training images must be a whole number from 1 to {hi} (the "
                                  f"{MAX_TRAIN_IMAGES:,} training images less the {self.validation:,} "
                                  f"that validate), or empty for all of them; got {self.train_images!r}."
                                  ) from None
            if self.batch_size > self.train_images:
                raise ConfigError(f"Batch size must be at most the {self.train_images:,} training images; "
                                  f"got {self.batch_size}.")
        set_("label_noise", parse.number("Label noise", self.label_noise, 0, 1, lo_open=False))
        set_("weight_decay", parse.number("Weight decay", self.weight_decay, 0, MAX_WEIGHT_DECAY,
                                          lo_open=False))
        if self.early_stop in (None, "", 0, "0", "off", "none"):
            set_("early_stop", None)
        else:
            set_("early_stop", parse.whole("Early stopping", self.early_stop, 1, MAX_EPOCHS))
        set_("evaluations", parse.whole("Validation checks per epoch", self.evaluations, 1, MAX_EVALUATIONS))

    @classmethod
    def settings(cls) -> list:
        """Its fields, each with `metadata` label, help and flag."""
        return list(fields(cls))

    @property
    def data(self) -> Dataset:
        return dataset_named(self.dataset)

    def label(self) -> str:
        """E.g. "adam lr 0.001, batch 64, 5 epochs" (", inputs [0, 1]" when not the lesson's)."""
        opt = self.optimizer if self.optimizer != "sgd" else f"sgd momentum {self.momentum:g}"
        decay = f", weight decay {self.weight_decay:g}" if self.weight_decay else ""
        scale = NORMALIZATION_RANGE[self.normalization]
        inputs = "" if self.normalization == "lesson" else f", inputs {scale}"
        epochs = f"{self.epochs} epoch{'s' * (self.epochs != 1)}"
        data = "" if self.dataset == DEFAULT_DATASET.name else f", {self.data.title}"
        first = f", first {self.train_images:,} images" if self.train_images else ""
        if self.validation != splits.DEFAULT_VALIDATION:
            first += f", {self.validation:,} validate"
        noise = f", {self.label_noise:.0%} label noise" if self.label_noise else ""
        stop = f", early stop {self.early_stop}" if self.early_stop else ""
        return (f"{opt} lr {self.lr:g}{decay}, batch {self.batch_size}, {epochs}{inputs}{data}{first}"
                f"{noise}{stop}")

    def make_optimizer(self, parameters) -> torch.optim.Optimizer:
        # fused: one kernel updates every tensor. Fewer ops than per-tensor updates: ~20% faster per
        # epoch alone, and far fewer GIL waits in a busy server.
        decay = self.weight_decay
        if self.optimizer == "adam":
            return torch.optim.Adam(parameters, lr=self.lr, weight_decay=decay, fused=True)
        if self.optimizer == "adamw":
            return torch.optim.AdamW(parameters, lr=self.lr, weight_decay=decay, fused=True)
        return torch.optim.SGD(parameters, lr=self.lr, momentum=self.momentum, weight_decay=decay, fused=True)

    def to_dict(self) -> dict:
        """Every setting; those added since files were first written only where they differ from
        their default, so a file or a sweep key written before reads (and hashes) the same."""
        d = {"optimizer": self.optimizer, "lr": self.lr, "momentum": self.momentum,
             "batch_size": self.batch_size, "epochs": self.epochs, "batch_seed": self.batch_seed,
             "normalization": self.normalization}
        for f in fields(self):
            if f.name not in d and getattr(self, f.name) != f.default:
                d[f.name] = getattr(self, f.name)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        if not isinstance(d, dict):
            names = ", ".join(f.name for f in fields(cls))
            raise ConfigError(f"Training settings must be a mapping of {names}.")
        d = {"batch_seed" if k == "seed" else k: v for k, v in d.items()}  # its name before version 2
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def replace(self, **changes) -> TrainConfig:
        return dataclasses.replace(self, **changes)


def optimizer_code(config: TrainConfig) -> str:
    """The optimizer as `make_optimizer` makes it, e.g. "optim.Adam(model.parameters(), lr=0.001,
    fused=True)"."""
    name = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD"}[config.optimizer]
    momentum = f", momentum={config.momentum:g}" if config.optimizer == "sgd" else ""
    # AdamW's own default decay is 0.01: its 0 is written out
    decay = f", weight_decay={config.weight_decay:g}" if config.weight_decay or name == "AdamW" else ""
    return f"optim.{name}(model.parameters(), lr={config.lr:g}{momentum}{decay}, fused=True)"


def training_code(config: TrainConfig, arch: network.Architecture | None = None) -> str:
    """The lesson's training loop with these settings, the validation split and its check at each
    epoch's end: what `train.run` does, step for step (it also checks validation within epochs; for a
    network with dropout, from the masks' seed on: `arch` says whether it has)."""
    ds = config.data
    load = (f'datasets.{ds.torchvision_name}("{ds.lesson_folder}", download=True, train=True, '
            f'transform=transform)')
    stop = ""
    if config.early_stop:
        stop = f"""    if valid_loss < best_loss:  # early stopping: keep the best epoch's weights
        best_loss, best_epoch, best_state = valid_loss, e + 1, copy.deepcopy(model.state_dict())
    elif e + 1 - best_epoch >= {config.early_stop}:
        break  # {config.early_stop} epoch{'s' * (config.early_stop != 1)} without a lower validation loss
model.load_state_dict(best_state)
"""
    return f"""{"import copy" + chr(10) if config.early_stop else ""}import torch
from torch import nn, optim
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms

transform = transforms.Compose([transforms.ToTensor(),
                                transforms.{normalize_code(config.normalization)}])
trainset = {load}
validset = {load}
{splits.split_code(config)}trainloader = DataLoader(trainset, batch_size={config.batch_size}, shuffle=True,
                         generator=torch.Generator().manual_seed({config.batch_seed}))  # the batch order
validloader = DataLoader(validset, batch_size=1000)
criterion = nn.CrossEntropyLoss()  # takes scores (logits), applies log-softmax itself
optimizer = {optimizer_code(config)}
{_early_stop_start(config)}{_dropout_code(config, arch)}
for e in range({config.epochs}):
    model.train()  # training mode (dropout drops, batch norm uses the batch's statistics)
    for images, labels in trainloader:
        images = images.view(images.shape[0], -1)
        optimizer.zero_grad()
        logits = model[:-1](images)  # every layer but the softmax (model: the nn.Sequential from Build)
        loss = criterion(logits, labels)
        loss.backward()
        optimizer.step()
    model.eval()  # evaluation mode: the same image always gets the same scores
    valid_loss = right = 0
    with torch.no_grad():
        for images, labels in validloader:
            logits = model[:-1](images.view(images.shape[0], -1))
            valid_loss += nn.functional.cross_entropy(logits, labels, reduction="sum").item()
            right += (logits.argmax(1) == labels).sum().item()
    valid_loss /= len(validset)
    print(f"epoch {{e + 1}}: validation loss {{valid_loss:.3f}}, accuracy {{right / len(validset):.1%}}")
{stop}"""


@dataclass(frozen=True)
class Check:
    """Validation scored once while training: after `step` steps, on `images` validation images (all
    of them at each epoch's end; within an epoch the first 1/(2 × evaluations), to stay cheap).
    A stack's: its members' mean."""

    step: int
    loss: float
    accuracy: float
    images: int


def _early_stop_start(config: TrainConfig) -> str:
    return "best_loss, best_epoch = float('inf'), 0\n" if config.early_stop else ""


def _dropout_code(config: TrainConfig, arch: network.Architecture | None) -> str:
    """The line that seeds dropout's masks: the app draws them from a private generator seeded so, in
    the same order (network.DropoutMasks)."""
    if arch is None or not arch.has_dropout:
        return ""
    return f"torch.manual_seed({config.batch_seed})  # the dropout masks: the batch-order seed\n"


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


class Single:
    """One `nn.Sequential` (built by `network.build`) as the loop trains it: cross-entropy on the
    scores before the softmax layer, which is there to show probabilities. Cross-entropy on logits
    (log-softmax inside) is the numerically stable form; the log of softmax outputs would underflow
    for confident wrong answers."""

    k = 1

    def __init__(self, model: nn.Sequential):
        self.model = model
        self.body = model[:-1]  # network.logits' layers, sliced once instead of every step

    def parameters(self) -> list[torch.Tensor]:
        return list(self.model.parameters())

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(images)

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
        return any(isinstance(m, nn.BatchNorm1d) for m in self.model.modules())


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
        self.inputs = split.normalized(slice(None), device, config.normalization).flatten(1)
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
            scores = trainee.logits(images.flatten(1))
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
    split's images already normalized and flattened on the device (the loop's validation)."""
    if isinstance(trainee, nn.Module):
        trainee = Single(trainee)
    trainee.train(False)
    k, c = trainee.k, split.dataset.n_classes
    device = trainee.parameters()[0].device
    loss = torch.zeros(k, dtype=torch.float64)
    confusion = torch.zeros(k * c * c, dtype=torch.long)  # per network: true * c + predicted
    offsets = torch.arange(k).unsqueeze(1) * c * c
    probs = []
    for lo in range(0, len(split), batch_size):
        images = (split.normalized(slice(lo, lo + batch_size), device, normalization).flatten(1)
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


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


@dataclass
class Run(network.HasNetwork):
    """One training in a session: which network, how it was trained, its curves, its results on the
    three splits and its weights. `evaluation` is the test set's, for the final report only: choose
    between runs on `validation`."""

    network: Network
    config: TrainConfig
    history: History
    evaluation: Evaluation  # on the test split (held out, not used to choose)
    state: dict[str, torch.Tensor]  # weights after training, on the CPU
    initial_state: dict[str, torch.Tensor] | None = None  # weights before training (for comparison)
    seconds: float = 0.0
    device: str = "cpu"
    name: str = ""  # set for a model loaded from a file: its name
    dynamics: Dynamics | None = None  # each layer's learning dynamics, when recorded (mnistlab.dynamics)
    train_evaluation: Evaluation | None = None  # on the images it learned from (with their noisy labels)
    validation: Evaluation | None = None  # on the validation split: what to choose by

    @property
    def best_epoch(self) -> int | None:
        """The epoch with the lowest validation loss (None for a model loaded from a file)."""
        return self.history.best_epoch()

    def metrics(self) -> dict:
        """The numbers a saved model keeps: test, and where known training and validation accuracy, the
        best validation epoch and the epoch whose weights were kept."""
        out = self.evaluation.metrics()
        if self.train_evaluation is not None:
            out["train_accuracy"] = self.train_evaluation.accuracy
        if self.validation is not None:
            out.update(validation_accuracy=self.validation.accuracy, validation_loss=self.validation.loss)
        if self.best_epoch is not None:
            out["best_epoch"] = self.best_epoch
        if self.history.kept_epoch is not None:
            out["kept_epoch"] = self.history.kept_epoch
        return out

    @property
    def dataset(self) -> Dataset:
        return self.config.data

    def model(self, device="cpu") -> nn.Sequential:
        """The trained network, rebuilt from its weights."""
        model = self.network.build(device)
        model.load_state_dict(self.state)
        return model.eval()

    def initial_model(self) -> nn.Sequential:
        return self.network.build()

    @property
    def normalization(self) -> str:
        """How the network reads images: the name in data.NORMALIZATIONS it was trained with."""
        return self.config.normalization

    @property
    def accuracy(self) -> float:
        return self.evaluation.accuracy

    def label(self) -> str:
        """E.g. "784-128-64-10 relu, adam lr 0.001, batch 64, 5 epochs: test accuracy 97.6%"."""
        if self.name:
            return f"{self.name} ({self.arch.label()}, loaded): test accuracy {self.accuracy:.1%}"
        stopped = f" (stopped at {self.history.steps / self.history.steps_per_epoch:.1f} epochs)" \
            if self.history.stopped_early else ""
        return f"{self.arch.label()}, {self.config.label()}{stopped}: test accuracy {self.accuracy:.1%}"


def run(net: Network, config: TrainConfig, train_split: Split, test_split: Split, device="cpu",
        callback=None, stop=None, recorder: Recorder | None = None, record_dynamics: bool = False,
        on_model=None, pause=None) -> Run:
    """Build the network, train it on the training images `config` picks from `train_split` (the data
    set's training images: `splits.training_splits`), checking validation as it goes, then score it on
    the training, validation and test splits, and keep it all as a `Run`.

    With `record_dynamics` (or a `recorder` of one's own), the Run keeps each layer's learning
    dynamics, probed on the validation split's first images. `on_model(model)` is called with the
    network about to be trained, so a page can draw it as it learns; `pause` holds it between batches
    (see `train`).
    """
    check_split(config, train_split)
    check_split(config, test_split)
    learn, validation = splits.training_splits(train_split, config)
    device = network.resolve_device(device)
    model = net.build(device)
    initial = _cpu_state(model)
    if on_model is not None:
        on_model(model)
    if recorder is None and record_dynamics:
        recorder = Recorder(validation)
    start = time.perf_counter()
    history = train(model, config, learn, device, callback, stop, recorder, validation=validation,
                    pause=pause)
    seconds = time.perf_counter() - start
    scored = {role: evaluate_all(model, s, config.normalization)[0] for role, s in
              (("train", learn), ("validation", validation))}
    return Run(network=net, config=config, history=history,
               evaluation=evaluate(model, test_split, normalization=config.normalization),
               state=_cpu_state(model), initial_state=initial, seconds=seconds, device=str(device),
               dynamics=recorder.result if recorder is not None else None,
               train_evaluation=scored["train"], validation=scored["validation"])


def keep_run(runs: list[Run], new: Run, limit: int = MAX_RUNS_KEPT) -> list[Run]:
    """`runs` with `new` added, dropping the oldest beyond `limit` (each run holds its weights)."""
    return (list(runs) + [new])[-limit:]

