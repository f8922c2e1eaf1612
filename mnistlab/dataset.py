"""The data sets a network can learn from, each described once.

A `Dataset` is what torchvision's MNIST-style classes differ by (torchvision's `FashionMNIST` is
its `MNIST` with other files and classes) plus what this app shows of it: class names, its own
pixel mean and std, its image shape, split sizes and files' checksums, where the course's code keeps
it. Loading (`data`, `data_sources`), figures, generated code, notebooks, saved models, sweep keys and
links all read it from here; adding a data set is one more description in `DATASETS`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from mnistlab.errors import ConfigError

DEBIAN_ROOT = "/usr/share/datasets"  # where Debian's dataset-* packages put their files


@dataclass(frozen=True)
class Dataset:
    """One data set of images in classes, as torchvision reads it: its shape, sizes and files too."""

    name: str  # in links (?data=mnist), model files, sweep keys and the command line
    title: str  # as a page writes it
    torchvision_name: str  # the class in torchvision.datasets, also its folder under the data root
    classes: tuple[str, ...]  # class names, in label order
    mean: float  # of its training images' pixels, ToTensor's scale [0, 1]
    std: float
    things: str  # what an image shows, for sentences: "digits"
    lesson_folder: str  # where the course's code keeps it ("~/.pytorch/MNIST_data/")
    download_size: str  # for the first visit's message
    # The four files torchvision reads from <root>/<torchvision_name>/raw/, in its `resources` order,
    # each with the MD5 of its uncompressed bytes, as published with the data set. Not the .gz files':
    # torchvision checks those of its own download, and Debian's recompressed copies differ from them.
    raw_md5: tuple[tuple[str, str], ...]
    image_shape: tuple[int, int, int] = (1, 28, 28)  # (channels, height, width), as a batch holds one
    train_size: int = 60_000  # images in its training split (the files' first pair)
    test_size: int = 10_000  # and in its test split
    debian_package: str | None = None  # a Debian/Ubuntu package with its gzipped files, if there is one
    prepare: str = "digit"  # how a drawing or an upload is made into its images (mnistlab.preprocess)

    def __repr__(self) -> str:
        return f"Dataset({self.name})"

    @property
    def inputs(self) -> int:
        """Numbers in one flattened image: a network's first layer reads this many."""
        return math.prod(self.image_shape)

    @property
    def channels(self) -> int:
        return self.image_shape[0]

    @property
    def height(self) -> int:
        return self.image_shape[1]

    @property
    def width(self) -> int:
        return self.image_shape[2]

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def torchvision_class(self):
        from torchvision import datasets  # here: only loading data needs torchvision

        return getattr(datasets, self.torchvision_name)

    @property
    def raw_files(self) -> tuple[str, ...]:
        """The four files torchvision reads from <root>/<torchvision_name>/raw/."""
        return tuple(name for name, _ in self.raw_md5)

    def split_size(self, train: bool) -> int:
        """Images in its training split (`train`) or its test split."""
        return self.train_size if train else self.test_size

    def shape_text(self) -> str:
        """Its images' size as a sentence writes it: "28×28"."""
        return f"{self.height}×{self.width}"

    @property
    def debian_folder(self) -> Path | None:
        """Where `debian_package` puts the gzipped files (/usr/share/datasets/<its name>/)."""
        if self.debian_package is None:
            return None
        return Path(DEBIAN_ROOT) / self.debian_package.removeprefix("dataset-")

    def normalize_code(self) -> str:
        """Its own Normalize step as the lesson writes one."""
        return f"Normalize(({self.mean:g},), ({self.std:g},))"


MNIST = Dataset(
    name="mnist", title="MNIST", torchvision_name="MNIST", classes=tuple("0123456789"),
    mean=0.1307, std=0.3081,  # as pytorch/examples writes them
    things="digits", lesson_folder="~/.pytorch/MNIST_data/", download_size="about 12 MB",
    raw_md5=(("train-images-idx3-ubyte", "6bbc9ace898e44ae57da46a324031adb"),
             ("train-labels-idx1-ubyte", "a25bea736e30d166cdddb491f175f624"),
             ("t10k-images-idx3-ubyte", "2646ac647ad5339dbf082846283269ea"),
             ("t10k-labels-idx1-ubyte", "27ae3e4e09519cfbb04c329615203637")))

# Zalando's product photos, made into MNIST's format (Xiao, Rasul & Vollgraf 2017): the same sizes,
# harder to tell apart. Its mean and std: tests/test_dataset_stats.py computes them from the files.
FASHION = Dataset(
    name="fashion", title="Fashion-MNIST", torchvision_name="FashionMNIST",
    classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
             "Ankle boot"),
    mean=0.2860, std=0.3530, things="clothes", lesson_folder="~/.pytorch/F_MNIST_data/",
    download_size="about 30 MB", debian_package="dataset-fashion-mnist", prepare="garment",
    raw_md5=(("train-images-idx3-ubyte", "f4a8712d7a061bf5bd6d2ca38dc4d50a"),
             ("train-labels-idx1-ubyte", "9018921c3c673c538a1fc5bad174d6f9"),
             ("t10k-images-idx3-ubyte", "8181f5470baa50b63fa0f6fddb340f0a"),
             ("t10k-labels-idx1-ubyte", "15d484375f8d13e6eb1aabb0c3f46965")))

DATASETS: dict[str, Dataset] = {d.name: d for d in (MNIST, FASHION)}
DEFAULT = MNIST


def get(name) -> Dataset:
    """The data set called `name` (a `Dataset` passes through); a ConfigError naming those there are."""
    if isinstance(name, Dataset):
        return name
    key = str(name).strip().lower()
    if key not in DATASETS:
        raise ConfigError(f"Data set must be one of {', '.join(DATASETS)}; got {name!r}.")
    return DATASETS[key]
