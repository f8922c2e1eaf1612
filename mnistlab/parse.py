"""Reading values a user typed (a widget, a link, a flag) into numbers, or a ConfigError saying what
was wrong and what is allowed. Every parser of outside input goes through these."""

from __future__ import annotations

import math

from mnistlab.errors import ConfigError


def whole_number(text: str) -> bool:
    """Digits 0-9 only, at most 12: what int() reads as typed (str.isdigit also passes '²', which
    int() refuses, and 5,000 digits, which it refuses too)."""
    return text.isascii() and text.isdigit() and len(text) <= 12


def whole(name: str, value, lo: int, hi: int) -> int:
    """`value` as a whole number from `lo` to `hi` ("+5" and " 5 " read as 5)."""
    text = str(value).strip()
    if (isinstance(value, bool) or not whole_number(text.removeprefix("+"))
            or not lo <= int(text) <= hi):
        raise ConfigError(f"{name} must be a whole number from {lo:,} to {hi:,}; got {value!r}.")
    return int(text)


def number(name: str, value, lo: float, hi: float, lo_open: bool) -> float:
    """`value` as a finite number above (`lo_open`) or from `lo`, at most `hi`."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        x = math.nan
    above = x > lo if lo_open else x >= lo
    if isinstance(value, bool) or not math.isfinite(x) or not above or x > hi:
        low = f"above {lo:g}" if lo_open else f"from {lo:g}"
        raise ConfigError(f"{name} must be a number {low} and at most {hi:g}; got {value!r}.")
    return x


def last(value, limit: int | None = None) -> str:
    """A query parameter's value: a repeated one counts by its last value, as `st.query_params`
    reads it; `limit` cuts what a notice would echo back."""
    if isinstance(value, (list, tuple)):
        value = value[-1] if value else ""
    text = "" if value is None else str(value)
    return text if limit is None else text[:limit]


MAX_SEED = 2**31 - 1


def check_seed(seed) -> int:
    if isinstance(seed, bool) or not whole_number(str(seed).strip()) or int(seed) > MAX_SEED:
        raise ConfigError(f"Seed must be a whole number from 0 to {MAX_SEED:,}; got {seed!r}.")
    return int(seed)
