"""A data set as the lesson loads it (torchvision + DataLoader) and a fast in-memory path.

Which data set is a `dataset.Dataset`; this module reads its files, holds each split once as a
uint8 tensor (`Split`, which knows its data set and its role), and normalizes whole batches at
once (`FastLoader`), giving the values the lesson's per-image PIL pipeline gives.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from mnistlab.dataset import MNIST, Dataset
from mnistlab.errors import DataError
from mnistlab.normalization import (  # noqa: F401 - where callers find them
    MEAN,
    NORMALIZATION_RANGE,
    NORMALIZATION_TEXT,
    NORMALIZATIONS,
    STD,
    check_normalization,
    normalize_code,
)


def make_transform(normalization: str = "lesson"):
    """ToTensor then Normalize with the named mean and std, as torchvision's datasets take it."""
    from torchvision import transforms  # here: the command line's help and parsing need no torchvision

    mean, std = NORMALIZATIONS[check_normalization(normalization)]
    return transforms.Compose([transforms.ToTensor(), transforms.Normalize((mean,), (std,))])


def data_root(root: str | os.PathLike | None = None, dataset: Dataset = MNIST) -> Path:
    """The data folder: the argument, else $MNISTLAB_DATA, else where the course keeps the data set
    (~/.pytorch/MNIST_data/ for MNIST)."""
    if root is None:
        root = os.environ.get("MNISTLAB_DATA") or dataset.lesson_folder
    return Path(root).expanduser()


def raw_folder(root=None, dataset: Dataset = MNIST) -> Path:
    """Where torchvision reads `dataset`'s four files: <root>/<its class name>/raw/."""
    return data_root(root, dataset) / dataset.torchvision_name / "raw"


def _fix_hint(root: Path, dataset: Dataset) -> str:
    debian = (f", or install Debian's copy (`apt-get install {dataset.debian_package}`, which puts them "
              f"in {dataset.debian_folder})") if dataset.debian_package else ""
    return (
        f"Put the four {dataset.title} files ({', '.join(dataset.raw_files)}) in "
        f"{raw_folder(root, dataset)}, or set MNISTLAB_DATA to a folder that holds "
        f"{dataset.torchvision_name}/raw/, or connect to the internet so they can be downloaded{debian}."
    )


def _not_downloaded(root: Path, dataset: Dataset, error: Exception) -> str:
    """What happened when `dataset` could not be downloaded, and the two ways out (three on Debian)."""
    # torchvision's message is "Error downloading <file>:" then each mirror's error: the last says why
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    reason = lines[-1] if lines and not lines[-1].endswith(":") else "no download server could be reached"
    debian = (f" On Debian or Ubuntu, `apt-get install {dataset.debian_package}` is a third way."
              if dataset.debian_package else "")
    return (f"{dataset.title} is not on this computer yet, and downloading it failed ({reason}). "
            f"Either connect to the internet once and try again: {dataset.title} ({dataset.download_size}) "
            f"is then kept in {root}. Or set MNISTLAB_DATA to a folder that already holds "
            f"{dataset.torchvision_name}/raw/ with its four files ({', '.join(dataset.raw_files)}).{debian}")


def _debian_instead(dataset: Dataset) -> str:
    if not dataset.debian_package:
        return ""
    return (f", or delete them and install Debian's copy (`apt-get install {dataset.debian_package}`): "
            f"the files missing are then unpacked from {dataset.debian_folder}")


def debian_available(root=None, dataset: Dataset = MNIST) -> bool:
    """`dataset`'s files are missing here, and its Debian package's folder is there to unpack."""
    folder = dataset.debian_folder
    return folder is not None and folder.is_dir() and not files_present(root, dataset)


def unpack_debian(root=None, dataset: Dataset = MNIST):
    """The Debian package's gzipped files decompressed into `root` (see data_sources), or a DataError."""
    from mnistlab import data_sources

    return data_sources.unpack_debian(dataset.torchvision_class(), data_root(root, dataset),
                                      dataset.debian_folder, dataset.debian_package)


def load_dataset(train: bool = True, root=None, download: bool = True, dataset: Dataset = MNIST):
    """torchvision's class for `dataset` with the lesson's transform. Files missing: unpacked from
    the Debian package's folder when there is one, else downloaded when possible."""
    root = data_root(root, dataset)
    split = "training" if train else "test"
    if debian_available(root, dataset):
        unpack_debian(root, dataset)
    raw = raw_folder(root, dataset)
    made = [f for f in (raw, *raw.parents) if not f.exists()]  # deepest first
    try:
        ds = dataset.torchvision_class()(root, train=train, download=download,
                                         transform=make_transform("lesson"))  # [0, 1], then [-1, 1]
    except Exception as e:  # torchvision raises RuntimeError, OSError, ValueError... for all of these
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        if not files_present(root, dataset):
            for folder in made:  # what the attempt made and left empty
                with contextlib.suppress(OSError):
                    folder.rmdir()
            if download:
                raise DataError(_not_downloaded(root, dataset, e)) from e
            raise DataError(f"The {dataset.title} {split} files are not in {root} and downloading was not "
                            f"allowed ({reason}). {_fix_hint(root, dataset)}") from e
        raise DataError(f"The {dataset.title} {split} files in {raw_folder(root, dataset)} are damaged "
                        f"({type(e).__name__}: {reason}). Replace them with the original "
                        f"files ({', '.join(dataset.raw_files)}){_debian_instead(dataset)}.") from e
    if len(ds.data) != len(ds.targets):
        raise DataError(f"The {dataset.title} {split} files in {root} disagree: {len(ds.data)} images but "
                        f"{len(ds.targets)} labels. Replace them with the original files.")
    return ds


RAW_FILES = MNIST.raw_files


def files_present(root=None, dataset: Dataset = MNIST) -> bool:
    """All four raw files are there (torchvision wants all four, whichever split is asked for)."""
    raw = raw_folder(root, dataset)
    return all((raw / name).exists() for name in dataset.raw_files)


def trainloader(root=None, batch_size: int = 64, shuffle: bool = True, train: bool = True,
                dataset: Dataset = MNIST) -> DataLoader:
    """The lesson's loader: `DataLoader(trainset, batch_size=64, shuffle=True)`."""
    return DataLoader(load_dataset(train, root, dataset=dataset), batch_size=batch_size, shuffle=shuffle)


ROLES = ("train", "validation", "test")


@dataclass(frozen=True, eq=False)
class Split:
    """One split held once in memory: images (N, height, width) uint8 (its data set's image shape),
    labels (N,) int64, the data set they come from, and their role: what training learns from, what
    chooses, or what reports."""

    images: torch.Tensor
    labels: torch.Tensor
    role: str = "train"
    dataset: Dataset = MNIST

    def __post_init__(self):
        if self.role not in ROLES:
            raise ValueError(f"A split's role is one of {', '.join(ROLES)}; got {self.role!r}.")

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        return f"Split({self.dataset.name} {self.role}, {len(self)} images)"

    def first(self, n: int) -> Split:
        """Its first `n` images, in the same role (a quick look, a smaller training set)."""
        return Split(self.images[:n], self.labels[:n], self.role, self.dataset)

    def normalized(self, index, device="cpu", normalization: str = "lesson") -> torch.Tensor:
        """Images at `index` as the transform gives them: (B, 1, height, width) float, [-1, 1] for the
        lesson's."""
        return normalize(self.images[index].to(device), normalization)

    def class_counts(self) -> list[int]:
        return torch.bincount(self.labels, minlength=self.dataset.n_classes).tolist()


def normalize(images_u8: torch.Tensor, normalization: str = "lesson") -> torch.Tensor:
    """uint8 (B, height, width) to float (B, 1, height, width), computed as ToTensor + Normalize
    (default: the lesson's)."""
    mean, std = NORMALIZATIONS[normalization]
    x = images_u8.unsqueeze(-3).to(torch.float32).div_(255)
    return x.sub_(mean).div_(std)


def load_split(train: bool = True, root=None, download: bool = True, dataset: Dataset = MNIST) -> Split:
    """The fast path's source: torchvision reads the files, we keep its uint8 tensors."""
    ds = load_dataset(train, root, download, dataset)
    images, labels = ds.data, ds.targets.to(torch.int64)
    if images.dtype != torch.uint8 or tuple(images.shape[1:]) != dataset.image_shape[1:]:
        raise DataError(f"The {dataset.title} files in {data_root(root, dataset)} do not hold "
                        f"{dataset.shape_text()} 8-bit images (found {tuple(images.shape)}, {images.dtype}). "
                        f"Replace them with the originals.")
    return Split(images.contiguous(), labels.contiguous(), "train" if train else "test", dataset)


class FastLoader:
    """Batches like the lesson's `trainloader`, from a `Split` in memory.

    Each pass draws a new permutation from its own seeded generator, so the same seed gives the
    same batches in the same order on every machine, and visitors never share random state: the
    very batches of `DataLoader(dataset, batch_size, shuffle=True,
    generator=torch.Generator().manual_seed(seed))`, pass after pass.
    """

    def __init__(self, split: Split, batch_size: int = 64, shuffle: bool = True, seed: int = 0,
                 device="cpu", drop_last: bool = False, normalization: str = "lesson"):
        if not 1 <= int(batch_size) <= len(split):
            raise DataError(f"Batch size must be between 1 and {len(split)}; got {batch_size}.")
        self.split, self.batch_size, self.shuffle = split, int(batch_size), shuffle
        self.device, self.drop_last = torch.device(device), drop_last
        self.normalization = check_normalization(normalization)
        self.generator = torch.Generator().manual_seed(int(seed))
        # Copy the split to the device once; batches then never cross the bus.
        if self.device.type == "cpu":
            self._images, self._labels = split.images, split.labels
        else:
            self._images = split.images.to(self.device)
            self._labels = split.labels.to(self.device)

    def __len__(self) -> int:
        n = len(self.split)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        n = len(self.split)
        order = None
        if self.shuffle:
            # What DataLoader(shuffle=True, generator=g) draws from g in a pass: a seed for its
            # workers, the order, and, once the pass is over, a permutation its sampler throws away.
            # Drawing the same keeps the two in step (tests/test_data.py checks it against DataLoader).
            torch.empty((), dtype=torch.int64).random_(generator=self.generator)
            order = torch.randperm(n, generator=self.generator).to(self.device)
        for b in range(len(self)):
            lo, hi = b * self.batch_size, min((b + 1) * self.batch_size, n)
            if order is None:
                images, labels = self._images[lo:hi], self._labels[lo:hi]
            else:
                idx = order[lo:hi]
                # index_select: the same rows as self._images[idx], in half the time on a CPU
                images, labels = self._images.index_select(0, idx), self._labels.index_select(0, idx)
            yield normalize(images, self.normalization), labels
        if self.shuffle:
            torch.randperm(n, generator=self.generator)
