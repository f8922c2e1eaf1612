"""Training a built network on MNIST, evaluating it, and the `Run` a page keeps of each training.

The loop is the lesson's: batches from a loader, forward, loss, backward, optimizer step. It reads
batches from `data.FastLoader` (the split held once in memory) and reports progress to a callback,
which can also stop it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from mnistlab import network
from mnistlab.data import NORMALIZATION_RANGE, FastLoader, Split, check_normalization, normalize_code
from mnistlab.dynamics import Dynamics, Recorder
from mnistlab.errors import ConfigError

OPTIMIZERS = ("adam", "sgd")
# Caps per run, so one visitor cannot hold a shared server's CPUs for long (also in the README).
MAX_EPOCHS = 20
MAX_BATCH_SIZE = 4096
MAX_LR = 10.0
MAX_RUNS_KEPT = 8  # runs a session keeps; each holds its weights before and after training
REPORT_EVERY = 20  # steps between progress reports: often enough for a live curve, cheap enough


def _as_int(name: str, value, lo: int, hi: int) -> int:
    text = str(value).strip()
    if (isinstance(value, bool) or not network.whole_number(text.removeprefix("+"))
            or not lo <= int(text) <= hi):
        raise ConfigError(f"{name} must be a whole number from {lo} to {hi}; got {value!r}.")
    return int(text)


def _as_float(name: str, value, lo: float, hi: float, lo_open: bool) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    above = number > lo if lo_open else number >= lo
    if isinstance(value, bool) or not math.isfinite(number) or not above or number > hi:
        low = f"above {lo:g}" if lo_open else f"from {lo:g}"
        raise ConfigError(f"{name} must be a number {low} and at most {hi:g}; got {value!r}.")
    return number


@dataclass(frozen=True)
class TrainConfig:
    """How to train: optimizer ("adam" or "sgd" with momentum), learning rate, batch size, epochs, seed,
    and the input normalization (a name in data.NORMALIZATIONS; the lesson's by default).

    The seed orders the batches; the same seed gives the same batches, so two networks trained with
    it see the same digits in the same order (an A/B comparison). The normalization stays with the
    trained network: it must read drawings and test images the way it read its training images.
    """

    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9  # SGD only
    batch_size: int = 64
    epochs: int = 5
    seed: int = 0
    normalization: str = "lesson"

    def __post_init__(self):
        opt = str(self.optimizer).strip().lower()
        if opt not in OPTIMIZERS:
            raise ConfigError(f"Optimizer must be one of {', '.join(OPTIMIZERS)}; got {self.optimizer!r}.")
        object.__setattr__(self, "optimizer", opt)
        object.__setattr__(self, "lr", _as_float("Learning rate", self.lr, 0, MAX_LR, lo_open=True))
        object.__setattr__(self, "momentum", _as_float("Momentum", self.momentum, 0, 0.999, lo_open=False))
        object.__setattr__(self, "batch_size", _as_int("Batch size", self.batch_size, 1, MAX_BATCH_SIZE))
        object.__setattr__(self, "epochs", _as_int("Epochs", self.epochs, 1, MAX_EPOCHS))
        object.__setattr__(self, "seed", network.check_seed(self.seed))
        object.__setattr__(self, "normalization", check_normalization(self.normalization))

    def label(self) -> str:
        """E.g. "adam lr 0.001, batch 64, 5 epochs" (", inputs [0, 1]" when not the lesson's)."""
        opt = self.optimizer if self.optimizer == "adam" else f"sgd momentum {self.momentum:g}"
        scale = NORMALIZATION_RANGE[self.normalization]
        inputs = "" if self.normalization == "lesson" else f", inputs {scale}"
        epochs = f"{self.epochs} epoch{'s' * (self.epochs != 1)}"
        return f"{opt} lr {self.lr:g}, batch {self.batch_size}, {epochs}{inputs}"

    def make_optimizer(self, parameters) -> torch.optim.Optimizer:
        # fused: one kernel updates every tensor. Fewer ops than per-tensor updates: ~20% faster per
        # epoch alone, and far fewer GIL waits in a busy server.
        if self.optimizer == "adam":
            return torch.optim.Adam(parameters, lr=self.lr, fused=True)
        return torch.optim.SGD(parameters, lr=self.lr, momentum=self.momentum, fused=True)

    def to_dict(self) -> dict:
        return {"optimizer": self.optimizer, "lr": self.lr, "momentum": self.momentum,
                "batch_size": self.batch_size, "epochs": self.epochs, "seed": self.seed,
                "normalization": self.normalization}

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        if not isinstance(d, dict):
            raise ConfigError("Training settings must be a mapping of optimizer, lr, momentum, "
                              "batch_size, epochs, seed and normalization.")
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in d.items() if k in known})


def training_code(config: TrainConfig) -> str:
    """The lesson's training loop with these settings: what `train` does, step for step."""
    opt = (f"optim.Adam(model.parameters(), lr={config.lr:g}, fused=True)" if config.optimizer == "adam" else
           f"optim.SGD(model.parameters(), lr={config.lr:g}, momentum={config.momentum:g}, fused=True)")
    return f"""import torch
from torch import nn, optim
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

transform = transforms.Compose([transforms.ToTensor(),
                                transforms.{normalize_code(config.normalization)}])
trainset = datasets.MNIST("~/.pytorch/MNIST_data/", download=True, train=True, transform=transform)
trainloader = DataLoader(trainset, batch_size={config.batch_size}, shuffle=True,
                         generator=torch.Generator().manual_seed({config.seed}))  # the batch order
criterion = nn.CrossEntropyLoss()  # takes scores (logits), applies log-softmax itself
optimizer = {opt}

for e in range({config.epochs}):
    for images, labels in trainloader:
        images = images.view(images.shape[0], -1)
        optimizer.zero_grad()
        logits = model[:-1](images)  # every layer but the softmax (model: the nn.Sequential from Build)
        loss = criterion(logits, labels)
        loss.backward()
        optimizer.step()
"""


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
    """Training curves: one loss and one batch accuracy per step, and where each epoch ended."""

    steps_per_epoch: int
    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    epoch_ends: list[int] = field(default_factory=list)  # step count at the end of each whole epoch
    stopped_early: bool = False

    @property
    def steps(self) -> int:
        return len(self.loss)

    def epochs_axis(self) -> list[float]:
        """Each step's position in epochs, so runs with different batch sizes share an x axis."""
        return [(i + 1) / self.steps_per_epoch for i in range(self.steps)]

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


def train(model: nn.Sequential, config: TrainConfig, split: Split, device="cpu",
          callback=None, stop=None, recorder=None) -> History:
    """Train `model` in place on `split` and return its curves.

    The loss is cross-entropy on `network.logits`, the scores before the softmax layer: the softmax
    layer is there to show probabilities, and cross-entropy on logits (log-softmax inside) is the
    numerically stable form; taking the log of softmax outputs would underflow for confident wrong
    answers. `callback(progress)` is called every REPORT_EVERY steps and at each epoch's end; training
    stops early when it returns False or when `stop` (a threading.Event) is set. A `recorder`
    (`dynamics.Recorder`) gathers each layer's learning dynamics as it goes, without changing
    what is trained.
    """
    device = network.resolve_device(device)
    loader = FastLoader(split, config.batch_size, shuffle=True, seed=config.seed, device=device,
                        normalization=config.normalization)
    optimizer = config.make_optimizer(model.parameters())
    history = History(steps_per_epoch=len(loader))
    total = len(loader) * config.epochs
    body = model[:-1]  # network.logits' layers, sliced once instead of every step
    # Each step's loss and right answers stay on the device until a report, so a GPU is not
    # synchronised every step (and a CPU runs 2 small ops a step for them, not 5).
    losses, rights, sizes = [], [], []
    model.train()
    if recorder is not None:
        recorder.start(model, config.normalization, len(loader), config.epochs)
    step = 0
    for epoch in range(1, config.epochs + 1):
        seen = right = 0  # this epoch's images so far, and how many were classified right
        for images, labels in loader:
            scores = body(images.flatten(1))
            loss = F.cross_entropy(scores, labels)
            optimizer.zero_grad()
            loss.backward()
            recording = recorder is not None and recorder.due(step)
            if recording:
                recorder.before_step()
            optimizer.step()
            if recording:
                recorder.after_step(step)
            losses.append(loss.detach())
            rights.append((scores.argmax(1) == labels).sum())
            sizes.append(len(labels))
            step += 1
            if recorder is not None and recorder.snapshot_due(step):
                recorder.snapshot(step)
            end = step % len(loader) == 0
            stopping = stop is not None and stop.is_set()
            if step % REPORT_EVERY == 0 or end or stopping:
                new_loss, new_right = torch.stack(losses).tolist(), torch.stack(rights).tolist()
                history.loss += new_loss
                history.accuracy += [r / n for r, n in zip(new_right, sizes)]
                if end:
                    history.epoch_ends.append(step)
                seen, right = seen + sum(sizes), right + sum(new_right)
                rows = tuple(recorder.flush()) if recorder is not None else ()
                if callback is not None:
                    progress = Progress(step=step, total_steps=total, epoch=epoch, epochs=config.epochs,
                                        loss=sum(new_loss) / len(new_loss), accuracy=right / seen,
                                        recent_accuracy=sum(new_right) / sum(sizes),
                                        steps_per_epoch=len(loader), epoch_end=end, dynamics=rows)
                    stopping |= callback(progress) is False
                losses, rights, sizes = [], [], []
                if stopping:
                    history.stopped_early = step < total
                    return _done(model, history, recorder, step)
                # Torch releases the GIL inside each op; this also hands it over between reports, so
                # other visitors' pages stay responsive. (Every step would cost ~20% of the speed.)
                time.sleep(0)
    return _done(model, history, recorder, step)


def _done(model: nn.Sequential, history: History, recorder, step: int) -> History:
    if recorder is not None:
        recorder.finish(step)  # the last rows, and a snapshot of the weights as trained
    model.eval()
    return history


@dataclass
class Evaluation:
    """A trained network on the test split: what a user checks after training."""

    loss: float
    accuracy: float
    per_class_accuracy: list[float]
    confusion: torch.Tensor  # (10, 10) int64 counts; row = true digit, column = predicted
    misclassified: torch.Tensor  # (K,) indices into the test split
    misclassified_probabilities: torch.Tensor  # (K, 10), the network's probabilities for them

    @property
    def n_misclassified(self) -> int:
        return len(self.misclassified)

    def metrics(self) -> dict:
        """The numbers worth saving with a model."""
        return {"test_loss": self.loss, "test_accuracy": self.accuracy,
                "per_class_accuracy": self.per_class_accuracy}


@torch.no_grad()
def evaluate(model: nn.Sequential, split: Split, device=None, batch_size: int = 10_000,
             normalization: str = "lesson") -> Evaluation:
    """Loss, accuracy, per-class accuracy, confusion matrix and every mistake on `split`, its images
    normalized as the network was trained (`normalization`)."""
    if device is None:
        device = next(model.parameters()).device
    model.eval()
    probs = []
    total_loss = 0.0
    for lo in range(0, len(split), batch_size):
        images = split.normalized(slice(lo, lo + batch_size), device, normalization)
        labels = split.labels[lo:lo + batch_size].to(device)
        scores = network.logits(model, images)
        total_loss += F.cross_entropy(scores, labels, reduction="sum").item()
        probs.append(scores.softmax(1).cpu())
    probabilities = torch.cat(probs)
    predicted = probabilities.argmax(1)
    labels = split.labels
    confusion = torch.bincount(labels * 10 + predicted, minlength=100).reshape(10, 10)
    per_class = (confusion.diag() / confusion.sum(1).clamp(min=1)).tolist()
    wrong = (predicted != labels).nonzero().flatten()
    return Evaluation(loss=total_loss / len(split), accuracy=(predicted == labels).float().mean().item(),
                      per_class_accuracy=per_class, confusion=confusion, misclassified=wrong,
                      misclassified_probabilities=probabilities[wrong])


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


@dataclass
class Run:
    """One training in a session: what was trained and how, its curves, its test results and weights."""

    arch: network.Architecture
    init: network.Init
    seed: int  # the weights' seed (the batches' seed is config.seed)
    config: TrainConfig
    history: History
    evaluation: Evaluation
    state: dict[str, torch.Tensor]  # weights after training, on the CPU
    initial_state: dict[str, torch.Tensor] | None = None  # weights before training (for comparison)
    seconds: float = 0.0
    device: str = "cpu"
    name: str = ""  # set for a model loaded from a file: its name
    dynamics: Dynamics | None = None  # each layer's learning dynamics, when recorded (mnistlab.dynamics)

    def model(self, device="cpu") -> nn.Sequential:
        """The trained network, rebuilt from its weights."""
        model = network.build(self.arch, self.init, self.seed, device)
        model.load_state_dict(self.state)
        return model.eval()

    def initial_model(self) -> nn.Sequential:
        return network.build(self.arch, self.init, self.seed)

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


def run(arch: network.Architecture, init: network.Init, seed: int, config: TrainConfig,
        train_split: Split, test_split: Split, device="cpu", callback=None, stop=None,
        recorder: Recorder | None = None, record_dynamics: bool = False) -> Run:
    """Build the network, train it, evaluate it on the test split, and keep it all as a `Run`.

    With `record_dynamics` (or a `recorder` of one's own), the Run keeps each layer's learning
    dynamics, probed on `test_split`'s first images.
    """
    device = network.resolve_device(device)
    model = network.build(arch, init, seed, device)
    initial = _cpu_state(model)
    if recorder is None and record_dynamics:
        recorder = Recorder(test_split)
    start = time.perf_counter()
    history = train(model, config, train_split, device, callback, stop, recorder)
    seconds = time.perf_counter() - start
    return Run(arch=arch, init=init, seed=network.check_seed(seed), config=config, history=history,
               evaluation=evaluate(model, test_split, device, normalization=config.normalization),
               state=_cpu_state(model),
               initial_state=initial, seconds=seconds, device=str(device),
               dynamics=recorder.result if recorder is not None else None)


def keep_run(runs: list[Run], new: Run, limit: int = MAX_RUNS_KEPT) -> list[Run]:
    """`runs` with `new` added, dropping the oldest beyond `limit` (each run holds its weights)."""
    return (list(runs) + [new])[-limit:]

