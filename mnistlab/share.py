"""A Build page network as URL query parameters, and back: a copied link rebuilds the same network.

`?hidden=128,64&act=relu,relu&std=default&bias=default&seed=0`, and `&dropout=0.2&bn=1` for a network
with dropout (one probability, or one per hidden layer) and batch norm, and `&data=fashion` for a
data set other than MNIST (a link without it, as every link before there was a choice, is MNIST's).
The seed fixes the weights, so the link carries a few characters instead of the weights themselves.
Decoding never fails: each value that is malformed or out of range falls back to its default, with
a notice saying so.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

from mnistlab import dataset as datasets
from mnistlab import parse
from mnistlab.errors import ConfigError
from mnistlab.network import MAX_SEED, Architecture, Init, Network, check_seed

# Normal-init std values offered on the Build page: a log scale from 0.001 to 10.
STD_SCALE = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
KEYS = ("hidden", "act", "std", "bias", "seed", "dropout", "bn", "data")
ON, OFF = ("1", "on", "true", "yes"), ("0", "off", "false", "no", "")
MAX_VALUE_LENGTH = 100  # a real link's values are short; longer ones are not echoed back


DEFAULT = Network()  # what the Build page's link carries: architecture, init and seed (weights follow)


def encode(state: Network, dataset: datasets.Dataset | str = datasets.DEFAULT) -> dict[str, str]:
    """Query parameters for `state` on `dataset`, every value spelled out so a reader of the link sees
    the network (the data set only when it is not MNIST; dropout and batch norm only when it has them:
    a link without them reads as before)."""
    std = state.init.weight_std
    data = datasets.get(dataset).name
    params = {
        "hidden": ",".join(map(str, state.arch.hidden)),
        "act": ",".join(state.arch.activations),
        "std": "default" if std is None else f"{std:g}",
        "bias": "zero" if state.init.zero_bias else "default",
        "seed": str(state.seed),
        **({} if data == datasets.DEFAULT.name else {"data": data}),
    }
    if state.arch.has_dropout:
        params["dropout"] = state.arch.dropout_label().replace("/", ",")
    if state.arch.batch_norm:
        params["bn"] = "1"
    return params


def linked_dataset(params: Mapping[str, object]) -> datasets.Dataset:
    """The data set a link names (`data=`); MNIST for a link without it. A ConfigError for a name
    that is none of them."""
    if "data" not in params:
        return datasets.DEFAULT
    return datasets.get(parse.last(params["data"], MAX_VALUE_LENGTH).strip())


def nearest_std(std: float) -> float:
    """The value on the page's log-scale slider closest to `std`."""
    return min(STD_SCALE, key=lambda s: abs(math.log(s) - math.log(std)))


def _one_or_more(hidden: str) -> str:
    """A Build link's hidden sizes: Build lays out one or more hidden layers."""
    if not hidden.strip():
        raise ConfigError("Give at least one hidden layer size, e.g. 128,64.")
    return hidden


def decode(params: Mapping[str, object]) -> tuple[Network, list[str]]:
    """The state a link describes, and one notice per value that could not be used.

    Missing parameters take their defaults silently; unknown ones are ignored.
    """
    p, notices = {}, []
    for k in KEYS:
        if k in params:
            value = parse.last(params[k]).strip()
            if len(value) > MAX_VALUE_LENGTH:
                notices.append(f"Link value {k}=... was not used: it is {len(value):,} characters long "
                               f"(at most {MAX_VALUE_LENGTH}). Using the default.")
            else:
                p[k] = value

    arch = DEFAULT.arch
    if "hidden" in p or "act" in p:
        hidden = p.get("hidden", ",".join(map(str, DEFAULT.arch.hidden)))
        try:
            arch = Architecture.parse(_one_or_more(hidden), p.get("act") or "relu")
        except ConfigError as e:
            try:  # keep the sizes if only the activations were wrong
                arch = Architecture.parse(_one_or_more(hidden), "relu")
                notices.append(f"Link value act={p.get('act')!r} was not used: {e} Using relu.")
            except ConfigError:
                notices.append(f"Link value hidden={hidden!r} was not used: {e} "
                               f"Using the default {DEFAULT.arch.label()}.")

    arch = _with_layers(arch, p, notices)

    std = None
    raw_std = p.get("std", "default")
    if raw_std.lower() not in ("default", ""):
        try:
            std = float(Init(weight_std=raw_std).weight_std)
        except ConfigError as e:
            notices.append(f"Link value std={raw_std!r} was not used: {e} Using PyTorch's default init.")
        else:
            if std not in STD_SCALE:
                snapped = nearest_std(std)
                notices.append(f"Link value std={raw_std!r} is not on the page's scale "
                               f"({', '.join(f'{s:g}' for s in STD_SCALE)}); using {snapped:g}.")
                std = snapped

    raw_bias = p.get("bias", "default").lower()
    if raw_bias not in ("default", "zero", ""):
        notices.append(f"Link value bias={p['bias']!r} was not used: bias must be 'default' or 'zero'. "
                       f"Using the default.")
    zero_bias = raw_bias == "zero"

    seed = DEFAULT.seed
    if p.get("seed", "") != "":
        try:
            seed = check_seed(p["seed"])
        except ConfigError:
            notices.append(f"Link value seed={p['seed']!r} was not used: the seed must be a whole number "
                           f"from 0 to {MAX_SEED}. Using {DEFAULT.seed}.")

    return Network(arch, Init(zero_bias, std), seed), notices


def _with_layers(arch: Architecture, p: dict[str, str], notices: list[str]) -> Architecture:
    """`arch` with the link's dropout and batch norm; a value that cannot be used is left out, with a
    notice saying why."""
    bn = p.get("bn", "").lower()
    if bn not in ON + OFF:
        notices.append(f"Link value bn={p['bn']!r} was not used: batch norm is 1 (on) or 0 (off). "
                       f"Using no batch norm.")
    try:
        arch = dataclasses.replace(arch, batch_norm=bn in ON)
    except ConfigError as e:  # e.g. its scale and shift push the network past the parameter cap
        notices.append(f"Link value bn={p['bn']!r} was not used: {e}")
    raw = p.get("dropout", "")
    if raw in ("", "0"):
        return arch
    try:
        drops = tuple(v.strip() for v in raw.split(","))
        return dataclasses.replace(arch, dropout=drops * len(arch.hidden) if len(drops) == 1 else drops)
    except ConfigError as e:
        notices.append(f"Link value dropout={raw!r} was not used: {e} Using no dropout.")
        return arch
