"""The lesson, step by step: its three parts, the Lesson page's address, and each step's code run as a
notebook runs it.

`run` executes a part's steps' code in order in one namespace, as Jupyter runs a notebook's cells,
and keeps what each prints (and the value of its last expression: a module's repr, or a figure). The
Lesson page and the notebook export read the same steps (`lesson_networks.STEPS`,
`lesson_validation.STEPS`, `lesson_convolutions.STEPS`), so what the page shows is what the
downloaded notebook prints.
"""

from __future__ import annotations

import ast
import builtins
import io
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from mnistlab import lesson_convolutions, lesson_networks, lesson_validation, parse, plots
from mnistlab.dataset import FASHION, MNIST, Dataset
from mnistlab.errors import ConfigError
from mnistlab.lesson_step import DEFAULT, LessonValues, Step
from mnistlab.share import STD_SCALE

# -- the URL: /lesson?step=5&present=1&units=256&layers=128,64&seed=7&std=0.01&image=0 ---------------

N_STEPS = 14  # part 1's: a link without a part opens part 1
VALUE_KEYS = ("units", "layers", "seed", "std", "image")
MAX_PARAM_LENGTH = 40  # longer values are not echoed back in a notice


def _shown(text: str) -> str:
    return repr(text) if len(text) <= MAX_PARAM_LENGTH else f"of {len(text):,} characters"


def parse_step(value, n_steps: int = N_STEPS) -> tuple[int, str | None]:
    """The step a URL's `step` asks for (1 to `n_steps`, a part's steps), and a notice when it
    cannot be used.

    A missing or empty `step` is step 1, where the lesson starts; anything else that is not a whole
    number from 1 to `n_steps` is step 1 with a notice saying what is allowed.
    """
    text = parse.last(value).strip()
    if text == "":
        return 1, None
    if text.isascii() and text.isdigit() and 1 <= int(text) <= n_steps:
        return int(text), None
    return 1, f"The link's step {_shown(text)} is not a step of this lesson: steps are 1 to {n_steps}. " \
              f"Showing step 1."


N_PARTS = 3


def parse_part(value) -> tuple[int, str | None]:
    """The part a URL's `part` asks for: missing is part 1 (links from before part 2 keep opening
    part 1's steps); anything but a part's number is part 1 with a notice."""
    text = parse.last(value).strip()
    if text == "":
        return 1, None
    if text in [str(n) for n in range(1, N_PARTS + 1)]:
        return int(text), None
    return 1, f"The link's part {_shown(text)} is not a part of this lesson: parts are 1 to {N_PARTS}. " \
              f"Showing part 1."


def parse_present(value) -> bool:
    """Presenter mode from the URL: `present=1` (or true, yes, on)."""
    return parse.last(value).strip().lower() in ("1", "true", "yes", "on")


def encode_values(values: LessonValues) -> dict[str, str]:
    return {"units": str(values.n_hidden), "layers": ",".join(map(str, values.hidden)),
            "seed": str(values.seed), "std": f"{values.std:g}", "image": str(values.index)}


def decode_values(params: Mapping[str, object]) -> tuple[LessonValues, list[str]]:
    """The values a link carries, and one notice per value that could not be used (it keeps its
    default). Missing parameters take their defaults silently."""
    values, notices = DEFAULT, []
    for key, name, convert in [
        ("units", "n_hidden", int), ("layers", "hidden", lambda t: tuple(int(p) for p in t.split(","))),
        ("seed", "seed", int), ("std", "std", float), ("image", "index", int),
    ]:
        text = parse.last(params.get(key, "")).strip()
        if text == "":
            continue
        try:
            if len(text) > MAX_PARAM_LENGTH:
                raise ConfigError(f"it is {len(text):,} characters long.")
            parsed = convert(text)
            if name == "std" and parsed not in STD_SCALE:
                raise ConfigError(f"the std must be one of {', '.join(f'{s:g}' for s in STD_SCALE)}.")
            values = replace(values, **{name: parsed})
        except (ValueError, ConfigError) as e:  # ConfigError is a ValueError; int("x") too
            reason = str(e) if isinstance(e, ConfigError) else "it is not a number."
            notices.append(f"The link's {key} {_shown(text)} was not used: {reason} "
                           f"Using {encode_values(DEFAULT)[key]}.")
    return values, notices


# -- the parts -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Part:
    """One part of the lesson: its steps, the LessonValues its code reads, the data set it loads."""

    number: int
    title: str
    steps: tuple[Step, ...]
    reads: tuple[str, ...]
    dataset: Dataset = MNIST

    @property
    def label(self) -> str:
        return f"Part {self.number}: {self.title}"

    def values(self, values: LessonValues) -> LessonValues:
        """`values` with only what this part reads (the rest at their defaults): one cache entry
        per different output."""
        return replace(DEFAULT, **{name: getattr(values, name) for name in self.reads})


PARTS: tuple[Part, ...] = (
    Part(1, "Neural networks in PyTorch", lesson_networks.STEPS,
         ("n_hidden", "hidden", "seed", "std", "index")),
    Part(2, "Validation and overfitting", lesson_validation.STEPS, ("seed",)),
    Part(3, "Convolutions", lesson_convolutions.STEPS, ("seed",), FASHION),
)
assert len(PARTS) == N_PARTS and len(PARTS[0].steps) == N_STEPS and all(
    [s.number for s in p.steps] == list(range(1, len(p.steps) + 1)) for p in PARTS)


def step(number: int, part: int = 1) -> Step:
    return PARTS[part - 1].steps[number - 1]


# -- running the steps ----------------------------------------------------------------------------

@dataclass
class Output:
    """What one step gave: printed text, its last expression's value (repr, or a figure)."""

    printed: str = ""
    result: str | None = None  # the repr of the last expression, as Jupyter shows it (Out[n])
    figure: object | None = None  # a Plotly figure, the last expression's value
    picture: object | None = None  # a Plotly figure of the step's results (Step.picture)
    namespace: dict = field(default_factory=dict, repr=False)  # after the step (the last step's only)

    @property
    def text(self) -> str:
        """Everything shown as text: what was printed, then the last expression's repr."""
        return "\n".join(t for t in (self.printed.rstrip("\n"), self.result) if t)


# The steps seed torch's global RNG (torch.manual_seed) as the lesson does: one lesson runs at a time,
# so two visitors' steps never draw from it in between each other's.
_GLOBAL_RNG = threading.Lock()


def _run_cell(source: str, namespace: dict) -> Output:
    """Runs a cell as Jupyter does: every statement, then shows the last one's value if it is an
    expression (and not None)."""
    out = io.StringIO()
    namespace["print"] = lambda *args, **kw: builtins.print(*args, **{**kw, "file": out})
    tree = ast.parse(source)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, "<lesson>", "exec"), namespace)  # noqa: S102 - the lesson's own code
    value = None if last is None else eval(compile(ast.Expression(last.value), "<lesson>", "eval"), namespace)
    result = Output(out.getvalue())
    if value is not None and hasattr(value, "to_plotly_json"):
        result.figure = value
    elif value is not None:
        result.result = repr(value)
    return result


def run(values: LessonValues = DEFAULT, upto: int | None = None, part: int = 1) -> list[Output]:
    """Every step's output of a part from step 1 to `upto` (all when None), its code run with
    `values` in one namespace."""
    namespace = {"__name__": "__lesson__", "view_classify": plots.view_classify}
    outputs = []
    with _GLOBAL_RNG:
        for s in PARTS[part - 1].steps[:upto]:
            outputs.append(_run_cell(s.source(values), namespace))
            if s.picture is not None:
                outputs[-1].picture = s.picture(namespace, values)
    namespace.pop("print", None)
    outputs[-1].namespace = namespace
    return outputs
