"""What a lesson step is, and the values a visitor may change that its code reads.

A step is a small value: a title, a line or two on what it shows, its code for the visitor's values,
and a note where the 2018 code no longer runs or misleads. Each part of the lesson is a tuple of them
(`lesson_networks`, `lesson_validation`); `lesson` runs them, and the notebook export writes them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from mnistlab.dataset import MNIST, Dataset
from mnistlab.errors import ConfigError
from mnistlab.network import MAX_WIDTH, Architecture, Init, Network, check_seed

BATCH = 64  # the lesson's batch size: the image index runs over one batch
SEED = 7  # the lesson's torch.manual_seed: its batches, hence images[0], on every page that shows them


@dataclass(frozen=True)
class LessonValues:
    """What a visitor may change in the lesson; every later step follows."""

    n_hidden: int = 256  # steps 5-9: the one hidden layer of the 784-256-10 network
    hidden: tuple[int, int] = (128, 64)  # steps 11-14: the 784-128-64-10 ReLU network
    seed: int = SEED  # torch.manual_seed: the batch order and every network's first weights
    std: float = 0.01  # step 12: weight.data.normal_(std=...)
    index: int = 0  # the image of the batch shown in steps 3 and 13

    def __post_init__(self):
        for name, size in [("Hidden units", self.n_hidden), *(
                (f"fc{i} units", s) for i, s in enumerate(self.hidden, 1))]:
            if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_WIDTH:
                raise ConfigError(f"{name} must be a whole number from 1 to {MAX_WIDTH:,}; got {size!r}.")
        if len(self.hidden) != 2:
            raise ConfigError(f"The lesson's ReLU network has two hidden layers; got {len(self.hidden)}.")
        object.__setattr__(self, "hidden", tuple(self.hidden))
        object.__setattr__(self, "seed", check_seed(self.seed))
        object.__setattr__(self, "std", Init(weight_std=self.std).weight_std)
        if isinstance(self.index, bool) or not isinstance(self.index, int) or not 0 <= self.index < BATCH:
            raise ConfigError(f"The image index must be a whole number from 0 to {BATCH - 1}; "
                              f"got {self.index!r}.")

    def sigmoid_network(self) -> Network:
        """Steps 8 and 9's network as Build makes it: the same weights for the seed."""
        return Network(Architecture((self.n_hidden,), "sigmoid"), Init(), self.seed)

    def relu_network(self) -> Network:
        """Steps 11 and 14's network as Build makes it (Build names the last layer `output`)."""
        return Network(Architecture(self.hidden, "relu"), Init(), self.seed)


DEFAULT = LessonValues()


def data_folder_text(dataset: Dataset = MNIST) -> str:
    """Where the lesson's code reads a data set: $MNISTLAB_DATA when set, else the course's folder."""
    return os.environ.get("MNISTLAB_DATA") or dataset.lesson_folder


@dataclass(frozen=True)
class Step:
    number: int
    title: str
    text: str  # what the step shows, in a line or two
    code: Callable[[LessonValues], str]
    note: str | None = None  # where the lesson's 2018 code changed, and why
    edits: tuple[str, ...] = ()  # the LessonValues fields edited at this step
    # A figure of the step's results, beside its printout, from the namespace after the step and its values
    picture: Callable[[dict, LessonValues], object] | None = None

    def source(self, values: LessonValues = DEFAULT) -> str:
        return self.code(values)
