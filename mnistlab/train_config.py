"""How a network is trained: `TrainConfig`, every training setting as one field (its label, help and
command-line flag with it), checked once; and the caps that keep one visitor from holding a shared
server. The lesson's training code written from a config is `training_code`'s.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from mnistlab import parse
from mnistlab.dataset import DATASETS, Dataset
from mnistlab.dataset import DEFAULT as DEFAULT_DATASET
from mnistlab.dataset import get as dataset_named
from mnistlab.errors import ConfigError
from mnistlab.normalization import NORMALIZATION_RANGE, check_normalization

if TYPE_CHECKING:  # no torch at import: the command line makes its flags from these fields
    import torch


OPTIMIZERS = ("adam", "adamw", "sgd")
# Caps per run, so one visitor cannot hold a shared server's CPUs for long (also in the README).
MAX_EPOCHS = 20
MAX_BATCH_SIZE = 4096
MAX_LR = 10.0
MAX_WEIGHT_DECAY = 1.0
MAX_EVALUATIONS = 10  # validation evaluations per epoch
# Training images set aside to validate (splits.training_splits sets them aside)
DEFAULT_VALIDATION, MIN_VALIDATION, MAX_VALIDATION = 10_000, 1_000, 20_000
# What a page offers for the settings with a widget of their own
WEIGHT_DECAYS = (0.0, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0)
TRAIN_SIZES = (100, 300, 1_000, 3_000, 10_000, None)  # None: all that do not validate
LABEL_NOISES = tuple(i / 20 for i in range(21))
EARLY_STOPS = (None, *range(1, 11))
WEIGHT_DECAY_TEXT = (
    "With adam or sgd, weight decay is L2 regularization: weight decay × each weight is added to its "
    "gradient, so Adam divides it by the same running scale as the gradient, and weights with large "
    "gradients are barely held back. adamw decays the weights apart from the gradient (decoupled: each "
    "step shrinks every weight by lr × weight decay × itself), so every weight is pulled toward 0 alike.")


def noise_count(fraction: float, n: int) -> int:
    """How many of `n` training labels a label-noise `fraction` changes."""
    return round(fraction * n)


def link_text(value) -> str:
    """A setting's value as a link, a sweep's label and the CLI write it, read back by its own check:
    0.001, 1000, all (None: all training images)."""
    return "all" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class SweepAxis:
    """How a sweep varies a setting: its axis (the `SweepSettings` field of the values to try, e.g.
    `weight_decays`), what a list of them is called in a message, and its link parameter. The
    sweep's flag is the setting's; its results column and Explore's menu are the setting's label."""

    axis: str
    title: str
    link: str


def setting(default, label: str, help: str, flag: str, *, choices: tuple | None = None,
            text: Callable[[Any], str] = link_text, menu: bool = False, explain: str = "",
            sweep: SweepAxis | None = None):
    """A TrainConfig field with what the command line, the pages and a sweep say of it: a new setting
    is a field, and its flag, widgets, sweep axis, link parameter and results column come with it.

    `choices`: the values a page's widget offers (a slider, or with `menu` a drop-down), each read as
    `text` says (also in results tables and charts); `explain`: more than `help`, where a page has
    room; `sweep`: how a sweep varies it (see SweepAxis), offering its `choices` on Explore."""
    if sweep is not None and choices is None:
        raise ValueError(f"{label}: a setting a sweep varies needs the choices Explore offers.")
    return field(default=default, metadata={"label": label, "help": help, "flag": flag, "choices": choices,
                                            "text": text, "menu": menu, "explain": explain, "sweep": sweep})


def _decay_text(w: float) -> str:
    return f"{w:g}" if w else "0 (off)"


def _images_text(n: int | None) -> str:
    return "all" if n is None else f"{n:,}"


def _epochs_text(k: int | None) -> str:
    return f"after {k} epoch{'s' * (k != 1)}" if k else "off"


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
    # A sweep's grid nests its axes in this order (weight decay, training images, label noise): keep
    # it, or a random sample of a sweep saved before picks other trials.
    weight_decay: float = setting(
        0.0, "Weight decay", f"from 0 to {MAX_WEIGHT_DECAY:g}: L2 regularization with adam and sgd, "
                             f"decoupled with adamw", "--weight-decay",
        choices=WEIGHT_DECAYS, text=_decay_text, explain=WEIGHT_DECAY_TEXT,
        sweep=SweepAxis("weight_decays", "Weight decays", "wd"))
    train_images: int | None = setting(
        None, "Training images",
        "train on the first N images of a seeded stratified order of the training split, each class in "
        "proportion, e.g. 100, 1000 (default: all that do not validate)", "--train-images",
        choices=TRAIN_SIZES, text=_images_text, menu=True,
        sweep=SweepAxis("train_sizes", "Training-set sizes", "images"))
    validation: int = setting(
        DEFAULT_VALIDATION, "Validation images",
        f"training images set aside to choose with (never trained on), {MIN_VALIDATION:,} to "
        f"{MAX_VALIDATION:,}; the test images only report", "--validation")
    split_seed: int = setting(0, "Split seed", "which training images validate, their order, and which "
                                               "labels the label noise changes", "--split-seed")
    label_noise: float = setting(
        0.0, "Label noise", "the fraction of training labels changed to another class at random, from 0 to 1 "
                            "(validation and test labels are never changed)", "--label-noise",
        choices=LABEL_NOISES, text=lambda f: f"{f:.0%}",
        sweep=SweepAxis("label_noises", "Label noises", "noise"))
    early_stop: int | None = setting(
        None, "Early stopping", f"stop after this many epochs (1 to {MAX_EPOCHS}) without a lower validation "
                                f"loss and keep the best epoch's weights (default: off)", "--early-stop",
        choices=EARLY_STOPS, text=_epochs_text, menu=True)
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
        set_("batch_seed", parse.check_seed(self.batch_seed))
        set_("normalization", check_normalization(self.normalization))
        set_("validation", parse.whole("Validation images", self.validation, MIN_VALIDATION,
                                       MAX_VALIDATION))
        set_("split_seed", parse.check_seed(self.split_seed))
        if self.train_images in (None, "", 0, "0"):
            set_("train_images", None)
        else:
            hi = self.data.train_size - self.validation
            try:
                set_("train_images", parse.whole("Training images", self.train_images, 1, hi))
            except ConfigError:
                raise ConfigError(f"Training images must be a whole number from 1 to {hi:,} (the "
                                  f"{self.data.train_size:,} training images less the {self.validation:,} "
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
        """Its fields, each with `metadata` label, help and flag (and choices, text, sweep: `setting`)."""
        return list(fields(cls))

    @classmethod
    def swept(cls) -> list:
        """The settings a sweep can vary (their `sweep` axis), in the order its grid nests them."""
        return [f for f in fields(cls) if f.metadata["sweep"] is not None]

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
        if self.validation != DEFAULT_VALIDATION:
            first += f", {self.validation:,} validate"
        noise = f", {self.label_noise:.0%} label noise" if self.label_noise else ""
        stop = f", early stop {self.early_stop}" if self.early_stop else ""
        return (f"{opt} lr {self.lr:g}{decay}, batch {self.batch_size}, {epochs}{inputs}{data}{first}"
                f"{noise}{stop}")

    def splits_text(self) -> str:
        """What these settings train on, validate with and test on, in a sentence (Markdown)."""
        ds = self.data
        total = ds.train_size
        n = self.train_images or total - self.validation
        which = (f"the first in a seeded order of its {total:,}, each class in proportion"
                 if self.train_images else f"its {total:,} less those that validate")
        noisy = noise_count(self.label_noise, n)
        noise = f"; {noisy:,} of their labels ({self.label_noise:.0%}) changed at random" if noisy else ""
        stop = (f"; training stops after {self.early_stop} epoch{'s' * (self.early_stop != 1)} without a "
                f"lower validation loss, keeping the best epoch's weights") if self.early_stop else ""
        return (f"Cross-entropy loss on the network's scores, an optimizer step per batch of its **{n:,} "
                f"training images** ({ds.title}: {which}{noise}), checked "
                f"{self.evaluations} times an epoch on **{self.validation:,} validation images** set aside "
                f"(never trained on: they choose the best epoch{stop}); then the **{ds.test_size:,} test "
                f"images** it has never seen, which only report.")

    def make_optimizer(self, parameters) -> torch.optim.Optimizer:
        import torch

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
