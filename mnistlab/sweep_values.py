"""A sweep's axes as typed (a page's menus, a link, the command line): each value checked, with a
one-line ConfigError naming the axis and what it allows."""

from __future__ import annotations

import math

from mnistlab import layers
from mnistlab.errors import ConfigError
from mnistlab.share import STD_SCALE

MAX_CONV_STACKS = 4  # convolution stacks one sweep compares ("none", an MLP, among them)
WIDTH_RULES = {"same": "the same width in every layer (e.g. 64-64-64)",
               "halving": "halving layer by layer (e.g. 64-32-16)"}


def parse_list(name: str, text, convert=str) -> tuple:
    """"16, 64,256" as a tuple of values; a one-line ConfigError naming `name` otherwise."""
    if isinstance(text, (list, tuple)):
        parts = [str(p).strip() for p in text]
    else:
        parts = [p.strip() for p in str(text).split(",")]
    if parts == [""] or not parts:
        raise ConfigError(f"{name}: give at least one value.")
    if "" in parts:
        raise ConfigError(f"{name}: values are separated by single commas; got {text!r}.")
    out = []
    for p in parts:
        try:
            out.append(convert(p))
        except ConfigError:
            raise
        except (TypeError, ValueError):
            raise ConfigError(f"{name}: {p!r} is not a valid value.") from None
    return tuple(dict.fromkeys(out))  # in the order given, each once


def std_value(value) -> float | None:
    if value is None or str(value).strip().lower() in ("default", "none", ""):
        return None
    try:
        std = float(value)
    except (TypeError, ValueError):
        std = math.nan
    if std not in STD_SCALE:
        raise ConfigError(f"Init must be 'default' or a normal std on Build's scale "
                          f"({', '.join(f'{s:g}' for s in STD_SCALE)}); got {value!r}.")
    return std


def widths_for(width: int, depth: int, rule: str) -> tuple[int, ...]:
    """The hidden sizes of a `depth`-layer network built from `width` by `rule` (see WIDTH_RULES)."""
    if rule == "halving":
        return tuple(max(1, width >> i) for i in range(depth))
    return (width,) * depth


BATCH_NORM = {"off": False, "on": True, "false": False, "true": True, "no": False, "yes": True}


def dropout_value(value) -> float:
    try:
        p = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        p = math.nan
    if not 0 <= p <= layers.MAX_DROPOUT:  # NaN fails too
        raise ConfigError(f"Dropouts must be numbers from 0 (none) to {layers.MAX_DROPOUT:g}, e.g. "
                          f"0,0.2,0.5; got {str(value).strip()!r}.")
    return p


def batch_norm_value(value) -> bool:
    if isinstance(value, bool):
        return value
    name = str(value).strip().lower()
    if name not in BATCH_NORM:
        raise ConfigError(f"Batch norm must be off, on, or off,on to compare both; "
                          f"got {str(value).strip()!r}.")
    return BATCH_NORM[name]


def batch_norm_text(on: bool) -> str:
    return "on" if on else "off"


def conv_stacks(value) -> tuple[str, ...]:
    """Convolution stacks as typed, separated by ';': "none;8:5,16:5;32:3:1,64:3:1" (each convolution
    followed by a 2×2 max pool unless the stack places its pools), each as its canonical text."""
    parts = list(value) if isinstance(value, (list, tuple)) else str(value).split(";")
    parts = [str(p).strip().lower() for p in parts]
    if not parts or "" in parts:
        raise ConfigError(f"Convolution stacks are separated by single ';', e.g. none;8:5,16:5 (none: an "
                          f"MLP); got {';'.join(parts)!r}.")
    stacks = []
    for p in parts:
        features = layers.parse_features(p, "relu", "pool" not in p)
        stacks.append(",".join(f.text() for f in features) or "none")
    stacks = tuple(dict.fromkeys(stacks))
    if len(stacks) > MAX_CONV_STACKS:
        raise ConfigError(f"A sweep compares at most {MAX_CONV_STACKS} convolution stacks; got "
                          f"{len(stacks)}.")
    return stacks
