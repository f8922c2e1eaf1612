"""How pixels reach a network, by name: the lesson's Normalize, a data set's own mean and std, or
none; their ranges and code as the app writes them. A trained network keeps the name of its choice
(`data` normalizes batches with it; no torch here, so the command line checks it without loading it)."""

from __future__ import annotations

from mnistlab.dataset import DATASETS
from mnistlab.errors import ConfigError

# How pixels reach a network: ToTensor (to [0, 1]) then Normalize((mean,), (std,)). A network must
# read at prediction time what it was trained on, so a trained model keeps the name of its choice:
# the lesson's, none, or a data set's own mean and std, named after that data set.
NORMALIZATIONS = {
    "lesson": (0.5, 0.5),  # the lesson's: [-1, 1], the background at -1
    **{d.name: (d.mean, d.std) for d in DATASETS.values()},  # its own: mean 0, std 1
    "none": (0.0, 1.0),  # ToTensor alone: [0, 1], the background at 0
}
NORMALIZATION_RANGE = {"lesson": "[-1, 1]", "none": "[0, 1]",  # for labels
                       **{d.name: "mean 0, std 1" for d in DATASETS.values()}}
MEAN, STD = NORMALIZATIONS["lesson"]


def normalize_code(normalization: str = "lesson") -> str:
    """The Normalize step as the lesson writes it, e.g. "Normalize((0.5,), (0.5,))"."""
    mean, std = NORMALIZATIONS[normalization]
    return f"Normalize(({mean:g},), ({std:g},))"


NORMALIZATION_TEXT = {  # for a menu
    "lesson": f"the lesson's {normalize_code('lesson')}: pixels in [-1, 1]",
    **{d.name: f"{d.title}'s mean and std, {d.normalize_code()}: pixels with mean 0, std 1"
       for d in DATASETS.values()},
    "none": "ToTensor alone: pixels in [0, 1]",
}


def check_normalization(name) -> str:
    """One of NORMALIZATIONS' names, or a ConfigError saying which exist."""
    key = str(name).strip().lower()
    if key not in NORMALIZATIONS:
        raise ConfigError(f"Input normalization must be one of {', '.join(NORMALIZATIONS)}; got {name!r}.")
    return key
