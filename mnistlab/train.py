"""How a network is trained (`TrainConfig`), the one training loop, the one evaluation, and the `Run`
a page keeps of each training.

The loop is the lesson's: batches from a loader, forward, loss, backward, optimizer step. It reads
batches from `data.FastLoader` (the split held once in memory) and reports progress to a callback,
which can also stop it. It trains one `nn.Sequential` or a stack of networks (`stacked.Stack`)
alike: whatever it trains supplies its scores, its losses and its parameters (`Trainee`).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field, fields
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from mnistlab import network, parse
from mnistlab.data import NORMALIZATION_RANGE, FastLoader, Split, check_normalization, normalize_code
from mnistlab.dataset import DATASETS, Dataset
from mnistlab.dataset import DEFAULT as DEFAULT_DATASET
from mnistlab.dataset import get as dataset_named
from mnistlab.dynamics import Dynamics, Recorder
from mnistlab.errors import ConfigError
from mnistlab.network import Network

OPTIMIZERS = ("adam", "sgd")
# Caps per run, so one visitor cannot hold a shared server's CPUs for long (also in the README).
MAX_EPOCHS = 20
MAX_BATCH_SIZE = 4096
MAX_LR = 10.0
MAX_TRAIN_IMAGES = 60_000
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

    optimizer: str = setting("adam", "Optimizer", "adam or sgd (with momentum)", "--optimizer")
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
        None, "Training images", "train on the first N training images only (default: all)", "--train-images")

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
        if self.train_images in (None, "", 0, "0"):
            set_("train_images", None)
        else:
            set_("train_images", parse.whole("Training images", self.train_images, 1, MAX_TRAIN_IMAGES))

    @classmethod
    def settings(cls) -> list:
        """Its fields, each with `metadata` label, help and flag."""
        return list(fields(cls))

    @property
    def data(self) -> Dataset:
        return dataset_named(self.dataset)

    def label(self) -> str:
        """E.g. "adam lr 0.001, batch 64, 5 epochs" (", inputs [0, 1]" when not the lesson's)."""
        opt = self.optimizer if self.optimizer == "adam" else f"sgd momentum {self.momentum:g}"
        scale = NORMALIZATION_RANGE[self.normalization]
        inputs = "" if self.normalization == "lesson" else f", inputs {scale}"
        epochs = f"{self.epochs} epoch{'s' * (self.epochs != 1)}"
        data = "" if self.dataset == DEFAULT_DATASET.name else f", {self.data.title}"
        first = f", first {self.train_images:,} images" if self.train_images else ""
        return f"{opt} lr {self.lr:g}, batch {self.batch_size}, {epochs}{inputs}{data}{first}"

    def make_optimizer(self, parameters) -> torch.optim.Optimizer:
        # fused: one kernel updates every tensor. Fewer ops than per-tensor updates: ~20% faster per
        # epoch alone, and far fewer GIL waits in a busy server.
        if self.optimizer == "adam":
            return torch.optim.Adam(parameters, lr=self.lr, fused=True)
        return torch.optim.SGD(parameters, lr=self.lr, momentum=self.momentum, fused=True)

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


def training_code(config: TrainConfig, arch: network.Architecture | None = None) -> str:
    """The lesson's training loop with these settings: what `train` does, step for step (for a
    network with dropout, from the masks' seed on: `arch` says whether it has)."""
    opt = (f"optim.Adam(model.parameters(), lr={config.lr:g}, fused=True)" if config.optimizer == "adam" else
           f"optim.SGD(model.parameters(), lr={config.lr:g}, momentum={config.momentum:g}, fused=True)")
    ds = config.data
    subset = ""
    if config.train_images:
        subset = (f"trainset = torch.utils.data.Subset(trainset, range({config.train_images}))"
                  f"  # the first {config.train_images:,} images\n")
    return f"""import torch
from torch import nn, optim
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

transform = transforms.Compose([transforms.ToTensor(),
                                transforms.{normalize_code(config.normalization)}])
trainset = datasets.{ds.torchvision_name}("{ds.lesson_folder}", download=True, train=True,
                            transform=transform)
{subset}trainloader = DataLoader(trainset, batch_size={config.batch_size}, shuffle=True,
                         generator=torch.Generator().manual_seed({config.batch_seed}))  # the batch order
criterion = nn.CrossEntropyLoss()  # takes scores (logits), applies log-softmax itself
optimizer = {opt}
{_dropout_code(config, arch)}
for e in range({config.epochs}):
    for images, labels in trainloader:
        images = images.view(images.shape[0], -1)
        optimizer.zero_grad()
        logits = model[:-1](images)  # every layer but the softmax (model: the nn.Sequential from Build)
        loss = criterion(logits, labels)
        loss.backward()
        optimizer.step()
"""


def _dropout_code(config: TrainConfig, arch: network.Architecture | None) -> str:
    """The lines that put dropout and batch norm in their training behaviour and seed the masks:
    the app draws them from a private generator seeded so, in the same order (network.DropoutMasks)."""
    if arch is None or not (arch.has_dropout or arch.batch_norm):
        return ""
    lines = "model.train()  # dropout drops, batch norm normalizes by each batch (model.eval() to predict)\n"
    if arch.has_dropout:
        lines += f"torch.manual_seed({config.batch_seed})  # the dropout masks: the batch-order seed\n"
    return lines


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


@dataclass
class History:
    """Training curves: one loss and one batch accuracy per step (a stack's: its members' mean), where
    each epoch ended, and each member's mean loss over each epoch."""

    steps_per_epoch: int
    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    epoch_ends: list[int] = field(default_factory=list)  # step count at the end of each whole epoch
    epoch_loss: list[list[float]] = field(default_factory=list)  # per epoch, per member
    stopped_early: bool = False

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

    def seed_dropout(self, seed: int) -> None:
        network.seed_dropout(self.model, seed)

    @property
    def batch_norm(self) -> bool:
        return any(isinstance(m, nn.BatchNorm1d) for m in self.model.modules())


class FusedAdam:
    """`torch.optim.Adam(fused=True)`'s step, the very kernel with the very settings, without the
    ~0.15 ms of Python bookkeeping its `step()` adds (at batch 64 a fifth of a small network's step)."""

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


def check_split(config: TrainConfig, split: Split) -> None:
    """A network learns and is scored on the data set its settings name, never another."""
    if split.dataset.name != config.dataset:
        raise ConfigError(f"These settings train on {config.data.title}, but the images given are "
                          f"{split.dataset.title}'s.")


def train(trainee, config: TrainConfig, split: Split, device="cpu",
          callback=None, stop=None, recorder=None) -> History:
    """Train `trainee` (an nn.Sequential, or any `Trainee`: a stack) in place on `split` and return
    its curves.

    `callback(progress)` is called every REPORT_EVERY steps and at each epoch's end; training
    stops early when it returns False or when `stop` (a threading.Event) is set. A `recorder`
    (`dynamics.Recorder`, for one nn.Sequential) gathers each layer's learning dynamics as it
    goes, without changing what is trained.
    """
    if isinstance(trainee, nn.Module):
        trainee = Single(trainee)
    check_split(config, split)
    if config.train_images:
        split = split.first(config.train_images)
    device = network.resolve_device(device)
    loader = FastLoader(split, config.batch_size, shuffle=True, seed=config.batch_seed, device=device,
                        normalization=config.normalization)
    optimizer = FusedAdam.wrapping(config.make_optimizer(trainee.parameters()))
    history = History(steps_per_epoch=len(loader))
    total = len(loader) * config.epochs
    # Each step's loss and right answers stay on the device until a report, so a GPU is not
    # synchronised every step (and a CPU runs 2 small ops a step for them, not 5).
    losses, rights, sizes = [], [], []
    epoch_loss = torch.zeros(trainee.k, device=device)
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
            stopping = stop is not None and stop.is_set()
            if step % REPORT_EVERY == 0 or end or stopping:
                step_losses, step_rights = torch.stack(losses), torch.stack(rights)  # (n,) or (n, K)
                epoch_loss += step_losses.reshape(len(losses), -1).sum(0)
                per_step = step_losses.reshape(len(losses), -1).mean(1).tolist()
                right_steps = (step_rights.reshape(len(rights), -1).sum(1) / trainee.k).tolist()
                history.loss += per_step
                history.accuracy += [r / n for r, n in zip(right_steps, sizes)]
                if end:
                    history.epoch_ends.append(step)
                    history.epoch_loss.append((epoch_loss / len(loader)).tolist())
                    epoch_loss.zero_()
                seen, right = seen + sum(sizes), right + sum(right_steps)
                rows = tuple(recorder.flush()) if recorder is not None else ()
                if callback is not None:
                    progress = Progress(step=step, total_steps=total, epoch=epoch, epochs=config.epochs,
                                        loss=sum(per_step) / len(per_step), accuracy=right / seen,
                                        recent_accuracy=sum(right_steps) / sum(sizes),
                                        steps_per_epoch=len(loader), epoch_end=end, dynamics=rows)
                    stopping |= callback(progress) is False
                losses, rights, sizes = [], [], []
                if stopping:
                    history.stopped_early = step < total
                    return _done(trainee, history, recorder, step)
                # Torch releases the GIL inside each op; this also hands it over between reports, so
                # other visitors' pages stay responsive. (Every step would cost ~20% of the speed.)
                time.sleep(0)
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

    @property
    def n_misclassified(self) -> int:
        return int(self.confusion.sum() - self.confusion.diagonal().sum())

    def metrics(self) -> dict:
        """The numbers worth saving with a model."""
        return {"test_loss": self.loss, "test_accuracy": self.accuracy,
                "per_class_accuracy": self.per_class_accuracy}


@torch.no_grad()
def evaluate_all(trainee, split: Split, normalization: str = "lesson", batch_size: int = 10_000,
                 mistakes: bool = False) -> list[Evaluation]:
    """Each of `trainee`'s networks on `split` (its images normalized as they were trained, read once
    for all of them): loss, accuracy, per-class accuracy, confusion matrix, and with `mistakes` every
    misclassified image with its probabilities (one network only)."""
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
        images = split.normalized(slice(lo, lo + batch_size), device, normalization).flatten(1)
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
                      per_class_accuracy=per_class[m].tolist(), confusion=confusion[m]) for m in range(k)]
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
class Run:
    """One training in a session: which network, how it was trained, its curves, its test results
    and its weights."""

    network: Network
    config: TrainConfig
    history: History
    evaluation: Evaluation
    state: dict[str, torch.Tensor]  # weights after training, on the CPU
    initial_state: dict[str, torch.Tensor] | None = None  # weights before training (for comparison)
    seconds: float = 0.0
    device: str = "cpu"
    name: str = ""  # set for a model loaded from a file: its name
    dynamics: Dynamics | None = None  # each layer's learning dynamics, when recorded (mnistlab.dynamics)

    @property
    def arch(self) -> network.Architecture:
        return self.network.arch

    @property
    def init(self) -> network.Init:
        return self.network.init

    @property
    def seed(self) -> int:
        """The initial weights' seed (the batches' is config.batch_seed)."""
        return self.network.seed

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
        """E.g. "784-128-64-10 relu, adam lr 0.001, batch 64, 5 epochs: 97.6%"."""
        if self.name:
            return f"{self.name} ({self.arch.label()}, loaded): {self.accuracy:.1%}"
        stopped = f" (stopped at {self.history.steps / self.history.steps_per_epoch:.1f} epochs)" \
            if self.history.stopped_early else ""
        return f"{self.arch.label()}, {self.config.label()}{stopped}: {self.accuracy:.1%}"


def run(net: Network, config: TrainConfig, train_split: Split, test_split: Split, device="cpu",
        callback=None, stop=None, recorder: Recorder | None = None, record_dynamics: bool = False) -> Run:
    """Build the network, train it, evaluate it on the test split, and keep it all as a `Run`.

    With `record_dynamics` (or a `recorder` of one's own), the Run keeps each layer's learning
    dynamics, probed on `test_split`'s first images.
    """
    check_split(config, test_split)
    device = network.resolve_device(device)
    model = net.build(device)
    initial = _cpu_state(model)
    if recorder is None and record_dynamics:
        recorder = Recorder(test_split)
    start = time.perf_counter()
    history = train(model, config, train_split, device, callback, stop, recorder)
    seconds = time.perf_counter() - start
    return Run(network=net, config=config, history=history,
               evaluation=evaluate(model, test_split, normalization=config.normalization),
               state=_cpu_state(model), initial_state=initial, seconds=seconds, device=str(device),
               dynamics=recorder.result if recorder is not None else None)


def keep_run(runs: list[Run], new: Run, limit: int = MAX_RUNS_KEPT) -> list[Run]:
    """`runs` with `new` added, dropping the oldest beyond `limit` (each run holds its weights)."""
    return (list(runs) + [new])[-limit:]

