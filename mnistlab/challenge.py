"""A class challenge: its rules (`Challenge`), the hidden images it is scored on, and the score.

The hidden images are a fixed part of the data set's test split: its last `HIDDEN_SIZE` (5,000)
images, test indices 5,000 to 9,999 for MNIST and Fashion-MNIST. A challenge's seed permutes them
into a public part (a third by default: its score is shown at once) and a private part (scored at
once too, shown only when the teacher closes the class: a board chosen on the public part is judged
on images nobody could tune to). Pages that show test images one by one can leave out
`hidden_indices(dataset)`.

The Ladder (Blum & Hardt 2015, "The Ladder: a reliable leaderboard for machine learning
competitions") shows a new public score only when it beats the student's best shown score by at
least a step, rounded to the step; otherwise the best shown stays. Probing the public part one
image at a time then gains nothing.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

import torch

from mnistlab.dataset import DATASETS, Dataset
from mnistlab.errors import ClassError

HIDDEN_SIZE = 5_000  # the last test images of the data set
PUBLIC_FRACTION = 1 / 3
FAMILIES = ("mlp", "cnn")
DEFAULT_BUDGET = 50_000
MAX_BUDGET = 10_000_000
DEFAULT_LIMIT = 5  # submissions per student per LIMIT_WINDOW_S
MAX_LIMIT = 1_000
LIMIT_WINDOW_S = 3600
MAX_LADDER_STEP = 10.0  # percentage points


def hidden_indices(dataset: Dataset | str) -> torch.Tensor:
    """The test indices a challenge scores on (its public and private parts), in order: the data set's
    last HIDDEN_SIZE test images."""
    d = check_dataset(dataset)
    return torch.arange(d.test_size - HIDDEN_SIZE, d.test_size)


def split_hidden(dataset: Dataset | str, seed: int,
                 public_fraction: float = PUBLIC_FRACTION) -> tuple[torch.Tensor, torch.Tensor]:
    """The hidden test indices split by the challenge's seed: (public, private), each sorted."""
    hidden = hidden_indices(dataset)
    order = torch.randperm(len(hidden), generator=torch.Generator().manual_seed(int(seed)))
    n_public = round(len(hidden) * public_fraction)
    public, private = hidden[order[:n_public]], hidden[order[n_public:]]
    return public.sort().values, private.sort().values


def check_dataset(dataset: Dataset | str) -> Dataset:
    if isinstance(dataset, Dataset):
        return dataset
    key = str(dataset).strip().lower()
    if key not in DATASETS:
        raise ClassError(f"A challenge's data set is one of {', '.join(DATASETS)}; got {str(dataset)!r:.40}.")
    return DATASETS[key]


def check_families(families) -> tuple[str, ...]:
    """"mlp", "mlp,cnn" (or a sequence of them) as a tuple in FAMILIES' order."""
    given = families.split(",") if isinstance(families, str) else list(families)
    names = {str(f).strip().lower() for f in given} - {""}
    if not names or names - set(FAMILIES):
        raise ClassError(f"The families allowed are mlp, cnn or mlp,cnn; got {str(families)!r:.40}.")
    return tuple(f for f in FAMILIES if f in names)


def _whole(what: str, value, low: int, high: int, allowed: str) -> int:
    try:
        number = value if isinstance(value, int) and not isinstance(value, bool) else int(str(value).strip())
    except ValueError:
        number = None
    if number is None or not low <= number <= high:
        raise ClassError(f"{what} must be a whole number {allowed}; got {str(value)!r:.40}.")
    return number


def _ends(value) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise ClassError(f"A challenge's end must be a date and time; got {value!r:.40}.")
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Challenge:
    """What a teacher sets for a class: the data set, the most parameters a network may have, the
    families allowed, submissions per student per hour, when it ends (None: when the class is
    closed), and the Ladder's step in percentage points (None: every public score is shown)."""

    dataset: str = "mnist"
    budget: int = DEFAULT_BUDGET
    families: tuple[str, ...] = ("mlp",)
    limit: int = DEFAULT_LIMIT
    ends: datetime | None = None
    ladder: float | None = None
    seed: int | None = None  # permutes the hidden images into public and private parts (None: drawn
    # when the challenge is set on a class)
    public_fraction: float = PUBLIC_FRACTION

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "dataset", check_dataset(self.dataset).name)
        set_(self, "budget", _whole("The parameter budget", self.budget, 1, MAX_BUDGET,
                                    f"from 1 to {MAX_BUDGET:,}"))
        set_(self, "families", check_families(self.families))
        set_(self, "limit", _whole("The submission limit", self.limit, 1, MAX_LIMIT,
                                   f"from 1 to {MAX_LIMIT:,} per hour"))
        set_(self, "ends", _ends(self.ends))
        set_(self, "ladder", check_ladder(self.ladder))
        if self.seed is not None:
            set_(self, "seed", _whole("A challenge's seed", self.seed, 0, 2**31 - 1, "from 0 to 2**31 - 1"))
        f = self.public_fraction
        if not isinstance(f, (int, float)) or isinstance(f, bool) or not 0.05 <= f <= 0.95:
            raise ClassError(f"The public part is a fraction of the hidden images from 0.05 to 0.95; "
                             f"got {f!r:.40}.")

    @property
    def data(self) -> Dataset:
        return DATASETS[self.dataset]

    def families_text(self) -> str:
        """"MLP", "CNN" or "MLP or CNN"."""
        return " or ".join(f.upper() for f in self.families)

    def label(self) -> str:
        """"MNIST, at most 50,000 parameters, MLP or CNN, 5 submissions an hour, Ladder 1 point"."""
        ends = f", ends {self.ends:%Y-%m-%d %H:%M} UTC" if self.ends else ""
        ladder = (f", Ladder step {self.ladder:g} point{'s' * (self.ladder != 1)}" if self.ladder else "")
        families = self.families_text()
        return (f"{self.data.title}, at most {self.budget:,} parameters, {families}, "
                f"{self.limit} submission{'s' * (self.limit != 1)} an hour{ends}{ladder}")

    def check_network(self, saved) -> None:
        """A `model_files.SavedModel` this challenge accepts, or a ClassError saying what it allows."""
        if saved.dataset.name != self.dataset:
            raise ClassError(f"This model learned {saved.dataset.title}; this challenge is on "
                             f"{self.data.title}: train on {self.data.title} and submit again.")
        arch = saved.network.arch
        family = "cnn" if arch.is_cnn else "mlp"
        if family not in self.families:
            raise ClassError(f"This model is a{'n' * (family == 'mlp')} {family.upper()}; this challenge "
                             f"allows {self.families_text()} only.")
        if arch.n_parameters > self.budget:
            raise ClassError(f"This model has {arch.n_parameters:,} parameters; this challenge allows at "
                             f"most {self.budget:,}: use fewer or narrower layers.")


def check_ladder(step) -> float | None:
    """The Ladder's step in percentage points (0 < step <= 10), or None (0, "off") for no Ladder."""
    if step is None or (isinstance(step, str) and step.strip().lower() in ("", "off", "0")):
        return None
    try:
        value = float(step) if not isinstance(step, bool) else math.nan
    except (TypeError, ValueError):
        value = math.nan
    if value == 0:
        return None
    if not 0 < value <= MAX_LADDER_STEP:  # also NaN
        raise ClassError(f"The Ladder's step is in percentage points, above 0 and at most "
                         f"{MAX_LADDER_STEP:g} (0 or off: no Ladder); got {str(step)!r:.40}.")
    return value


def ladder(best_shown: float | None, score: float, step: float | None) -> float:
    """The public score shown for `score` (accuracies, 0 to 1), given the student's best shown so far:
    with a Ladder step (percentage points), `score` rounded to the step when it beats the best shown
    by at least the step, else the best shown; without one, `score` itself."""
    if not step:
        return score
    fraction = step / 100
    if best_shown is not None and score < best_shown + fraction - 1e-12:
        return best_shown
    return round(round(score / fraction) * fraction, 10)


# -- scoring ----------------------------------------------------------------------------------------

_splits: dict[str, object] = {}
_splits_lock = threading.Lock()


def test_split(dataset: Dataset | str):
    """The data set's test split, loaded once per process (a `data.Split`)."""
    from mnistlab import data

    d = check_dataset(dataset)
    with _splits_lock:
        if d.name not in _splits:
            _splits[d.name] = data.load_split(False, dataset=d)
        return _splits[d.name]


def part(split, indices: torch.Tensor):
    """The images of `split` at `indices`, as a test split of their own."""
    from mnistlab.data import Split

    return Split(split.images[indices], split.labels[indices], "test", split.dataset)


@dataclass(frozen=True)
class Scores:
    public: float  # accuracy on the public part
    private: float  # on the private part: never shown before the class is closed


def score(saved, challenge: Challenge, split=None) -> Scores:
    """A network (a checked `model_files.SavedModel`) scored on the challenge's public and private
    parts of `split` (its data set's test split; loaded once if not given), as `evaluation` scores
    any network: its own normalization, eval mode, no gradients, on the CPU."""
    from mnistlab import evaluation

    if challenge.seed is None:
        raise ValueError("a challenge is scored once its seed is set (ClassStore.set_challenge draws one)")
    challenge.check_network(saved)
    split = split if split is not None else test_split(challenge.dataset)
    whole = split.role == "test" and len(split) == split.dataset.test_size
    if split.dataset.name != challenge.dataset or not whole:
        raise ValueError(f"score needs {challenge.data.title}'s whole test split; got {split!r}")
    model = saved.model("cpu")
    public, private = split_hidden(challenge.dataset, challenge.seed, challenge.public_fraction)
    accuracy = [evaluation.evaluate_all(model, part(split, idx), saved.normalization)[0].accuracy
                for idx in (public, private)]
    return Scores(*accuracy)
