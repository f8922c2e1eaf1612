"""The three splits: the data set's 60,000 training images split into the images a network learns
from and the images that choose (validation), and the test images, which only report.

One seeded, stratified order of the training images decides everything: its first `validation`
images validate, the rest train, and a smaller training set is the first N of the rest. Every
prefix of that order holds each class in proportion (to within one image), so 100 training images
hold about 10 of each digit. Label noise, when asked for, then changes exactly round(fraction × N)
of the N training labels, each to a different class drawn uniformly; validation and test labels are
never touched. `split_code` writes the same steps as the torch calls a learner can run: the code
the app shows draws the very same numbers from the very same generator.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict

import torch

from mnistlab.data import Split
from mnistlab.errors import ConfigError
from mnistlab.train_config import MAX_VALIDATION, MIN_VALIDATION, noise_count  # TrainConfig's

CACHED_PER_SPLIT = 4  # settings' splits kept per loaded split: a copy of the images each (~40 MB)

_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def stratified_order(labels: torch.Tensor, n_classes: int, generator: torch.Generator) -> torch.Tensor:
    """A random order of `labels`' indices in which every prefix holds each class in proportion:
    shuffle, group by class (each class still shuffled), then interleave the classes evenly."""
    shuffled = torch.randperm(len(labels), generator=generator)
    grouped = shuffled[labels[shuffled].argsort(stable=True)]
    counts = torch.bincount(labels, minlength=n_classes)
    rank = torch.arange(len(labels)) - (counts.cumsum(0) - counts)[labels[grouped]]  # place in its class
    return grouped[((rank + 0.5).double() / counts[labels[grouped]]).argsort(stable=True)]


def noisy(labels: torch.Tensor, fraction: float, n_classes: int, generator: torch.Generator) -> torch.Tensor:
    """`labels` with exactly noise_count(fraction, n) of them, chosen at random, changed to another
    class drawn uniformly (never their own: a changed label is always wrong)."""
    k = noise_count(fraction, len(labels))
    if k == 0:
        return labels
    labels = labels.clone()
    changed = torch.randperm(len(labels), generator=generator)[:k]
    labels[changed] = (labels[changed] + torch.randint(1, n_classes, (k,), generator=generator)) % n_classes
    return labels


def check_sizes(n_images: int, validation: int, train_images: int | None) -> None:
    if validation >= n_images:
        raise ConfigError(f"A validation split of {validation:,} images leaves none of the {n_images:,} "
                          f"training images to train on; choose from {MIN_VALIDATION:,} to "
                          f"{min(MAX_VALIDATION, n_images - 1):,}.")
    if train_images is not None and train_images > n_images - validation:
        raise ConfigError(f"Training images must be at most {n_images - validation:,} (the "
                          f"{n_images:,} training images less the {validation:,} that validate); "
                          f"got {train_images:,}.")


def training_splits(split: Split, config) -> tuple[Split, Split]:
    """(training, validation) from the data set's training images (`split`, role "train") as
    `config` (a TrainConfig) says: its validation size, split seed, training images and label noise.
    The same settings give the same splits, computed once per loaded split."""
    if split.role != "train":
        raise ValueError(f"Training and validation come from the training images, not a {split.role} split.")
    key = (config.validation, config.split_seed, config.train_images, config.label_noise)
    kept = _cache.setdefault(split, OrderedDict())
    if key in kept:
        kept.move_to_end(key)
        return kept[key]
    check_sizes(len(split), config.validation, config.train_images)
    generator = torch.Generator().manual_seed(config.split_seed)
    order = stratified_order(split.labels, split.dataset.n_classes, generator)
    validate, learn = order[:config.validation], order[config.validation:][:config.train_images]
    labels = noisy(split.labels[learn], config.label_noise, split.dataset.n_classes, generator)
    out = (Split(split.images[learn], labels, "train", split.dataset),
           Split(split.images[validate], split.labels[validate], "validation", split.dataset))
    kept[key] = out
    while len(kept) > CACHED_PER_SPLIT:
        kept.popitem(last=False)
    return out


def split_code(config, n_images: int | None = None) -> str:
    """The split, the smaller training set and the label noise as torch calls, after `trainset =
    datasets.X(...)` and `validset = datasets.X(...)` (the same images, loaded twice so that noise
    in the training labels cannot reach validation's): what `training_splits` does, draw for draw."""
    n_val, n_classes = config.validation, config.data.n_classes
    n_images = n_images or config.data.train_size
    n_train = config.train_images or n_images - n_val
    kind = "digit" if config.dataset == "mnist" else "class"
    lines = [
        f"# {n_val:,} of the {n_images:,} training images validate, each {kind} in proportion: a seeded,",
        f"# stratified split (any first N of `order` holds each {kind} in proportion)",
        f"g = torch.Generator().manual_seed({config.split_seed})",
        "labels = trainset.targets",
        "shuffled = torch.randperm(len(labels), generator=g)",
        f"grouped = shuffled[labels[shuffled].argsort(stable=True)]  # each {kind} together, shuffled",
        f"counts = torch.bincount(labels, minlength={n_classes})",
        f"rank = torch.arange(len(labels)) - (counts.cumsum(0) - counts)[labels[grouped]]  # in its {kind}",
        "order = grouped[((rank + 0.5).double() / counts[labels[grouped]]).argsort(stable=True)]",
        f"validset = Subset(validset, order[:{n_val}])",
        f"train_indices = order[{n_val}:]" + (f"[:{n_train}]  # the first {n_train:,} training images"
                                              if config.train_images else ""),
    ]
    k = noise_count(config.label_noise, n_train)
    if k:
        lines += [
            f"# label noise: {k:,} of the {n_train:,} training labels changed, each to another {kind}",
            f"changed = train_indices[torch.randperm({n_train}, generator=g)[:{k}]]",
            "trainset.targets = trainset.targets.clone()",
            f"trainset.targets[changed] = (trainset.targets[changed] + torch.randint(1, {n_classes}, ({k},), "
            f"generator=g)) % {n_classes}",
        ]
    lines.append("trainset = Subset(trainset, train_indices)")
    return "\n".join(lines) + "\n"
