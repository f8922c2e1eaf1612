"""A Build page network as URL query parameters, and back: a copied link rebuilds the same network.

`?hidden=128,64&act=relu,relu&std=default&bias=default&seed=0`, and `&dropout=0.2&bn=1` for a network
with dropout (one probability, or one per hidden layer) and batch norm, and `&data=fashion` for a
data set other than MNIST (a link without it, as every link before there was a choice, is MNIST's).
A CNN adds its convolutions and pools as typed, `&conv=8:5,pool,16:5,pool` (then `hidden=` may be
empty), and only where they are not the defaults its convolutions' activations (`conv_act=tanh`, or
one per convolution; the default is the first hidden layer's, relu without one) and dropout
(`conv_dropout=0.2`, or one per convolution).
The seed fixes the weights, so the link carries a few characters instead of the weights themselves.
Decoding never fails: each value that is malformed or out of range falls back to its default, with
a notice saying so, and so does one that goes with a value that could not be used (`act` with
`hidden`, `conv_act` with `conv`): every value not used is named, so what the notices leave of a link
opens without one.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

from mnistlab import dataset as datasets
from mnistlab import parse
from mnistlab.architecture import Architecture, Init, Network
from mnistlab.errors import ConfigError
from mnistlab.layers import Conv, as_activation, parse_features
from mnistlab.parse import MAX_SEED, check_seed

# Normal-init std values offered on the Build page: a log scale from 0.001 to 10.
STD_SCALE = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
KEYS = ("hidden", "act", "std", "bias", "seed", "dropout", "bn", "data", "conv", "conv_act", "conv_dropout")
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
    if any(p > 0 for p in state.arch.dropout):
        params["dropout"] = state.arch.dropout_label().replace("/", ",")
    if state.arch.batch_norm:
        params["bn"] = "1"
    return params | _conv_params(state.arch)


def _number_text(p: float) -> str:
    """0.2 as "0.2"; a probability that "%g" would round keeps every digit, so the link gives it back."""
    return f"{p:g}" if float(f"{p:g}") == p else repr(p)


def _per_conv(values: list[str]) -> str:
    return values[0] if len(set(values)) == 1 else ",".join(values)


def conv_activation(arch: Architecture) -> str:
    """The activation a link's convolutions have unless it says otherwise: the first hidden layer's
    (as `Architecture.parse` gives them), relu when there is none."""
    return arch.activations[0] if arch.activations else "relu"


def _conv_params(arch: Architecture) -> dict[str, str]:
    """A CNN's part of its link: its layers as typed, then its convolutions' activations and dropout
    only where they are not the defaults (an MLP's link has none of these)."""
    if not arch.features:
        return {}
    convs = [f for f in arch.features if isinstance(f, Conv)]
    params = {"conv": arch.features_text()}
    if any(c.activation != conv_activation(arch) for c in convs):
        params["conv_act"] = _per_conv([c.activation for c in convs])
    if any(c.dropout > 0 for c in convs):
        params["conv_dropout"] = _per_conv([_number_text(c.dropout) for c in convs])
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


def _one_or_more(hidden: str, features: tuple) -> str:
    """A Build link's hidden sizes: Build lays out one or more hidden layers (none only after
    convolutions)."""
    if not hidden.strip() and not features:
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

    features, own_activations = _features(p, notices)
    arch = _hidden_layers(p, features, notices)
    arch = _with_convolutions(arch, features, own_activations, p, notices)
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
                           f"from 0 to {MAX_SEED:,}. Using {DEFAULT.seed}.")

    return Network(arch, Init(zero_bias, std), seed), notices


def _hidden_layers(p: dict[str, str], features: tuple, notices: list[str]) -> Architecture:
    """The link's hidden sizes (`hidden`) with their activations (`act`), each judged on its own: a bad
    `hidden` is named, and so is an `act` that is bad itself or, since it goes with those sizes, one
    that was good but could not be used; the default network where `hidden` cannot be used."""
    if "hidden" not in p and "act" not in p:
        return DEFAULT.arch
    hidden = p.get("hidden", ",".join(map(str, DEFAULT.arch.hidden)))
    act = p.get("act", "")
    try:
        arch = Architecture.parse(_one_or_more(hidden, features), "relu")
    except ConfigError as e:
        notices.append(f"Link value hidden={hidden!r} was not used: {e} "
                       f"Using the default {DEFAULT.arch.label()}.")
        if act and not _as_default(act):
            why = _activation_problem(act) or f"it goes with hidden={hidden!r}, which was not used."
            notices.append(f"Link value act={act!r} was not used: {why} Using relu.")
        return DEFAULT.arch
    if not act:
        return arch
    if not arch.hidden:
        notices.append(f"Link value act={act!r} was not used: the network has no hidden layers "
                       f"(hidden=''); its convolutions' activations are conv_act.")
        return arch
    try:
        return Architecture.parse(hidden, act)
    except ConfigError as e:  # keep the sizes
        notices.append(f"Link value act={act!r} was not used: {e} Using relu.")
        return arch


def _as_default(act: str) -> bool:
    """Whether `act` asks for what the default network has anyway (relu): used, so not named."""
    try:
        return Architecture.parse(",".join(map(str, DEFAULT.arch.hidden)), act) == DEFAULT.arch
    except ConfigError:
        return False


def _activation_problem(act: str) -> str | None:
    """What is wrong with `act` whatever sizes it goes with (a name that is no activation), or None."""
    try:
        for i, name in enumerate(act.split(",")):
            as_activation(name, f"Hidden layer {i + 1}")
    except ConfigError as e:
        return str(e)
    return None


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
    if not arch.hidden:
        notices.append(f"Link value dropout={raw!r} was not used: the network has no hidden layers "
                       f"(hidden=''); its convolutions' dropout is conv_dropout.")
        return arch
    try:
        drops = tuple(v.strip() for v in raw.split(","))
        return dataclasses.replace(arch, dropout=drops * len(arch.hidden) if len(drops) == 1 else drops)
    except ConfigError as e:
        notices.append(f"Link value dropout={raw!r} was not used: {e} Using no dropout.")
        return arch


def _features(p: dict[str, str], notices: list[str]) -> tuple[tuple, bool]:
    """The link's convolutions and pools (`conv`), with their dropout and activations, checked on
    their own (shapes, caps), and whether the activations were the link's own (`conv_act`); () and
    a notice naming what was wrong when `conv` cannot be used. Where `conv_act` or `conv_dropout`
    cannot be used, a notice, and the convolutions keep the defaults."""
    raw = p.get("conv", "")
    try:
        features = parse_features(raw, "relu")
        Architecture((), features=features)  # the shape check: which layer no longer fits
    except ConfigError as e:
        notices.append(f"Link value conv={raw!r} was not used: {e} Using no convolutions.")
        _unused_with_conv(p, notices)
        return (), False
    n, own_activations = sum(isinstance(f, Conv) for f in features), False
    if not n:
        _unused_with_conv(p, notices)
    for key, field, default in (("conv_act", "activation", None), ("conv_dropout", "dropout", "0")):
        if p.get(key, "") == "" or not n:
            continue
        values = [v.strip() for v in p[key].split(",")]
        try:
            if len(values) not in (1, n):
                raise ConfigError(f"Give one value for all {n} convolutions, or one each; got "
                                  f"{len(values)}.")
            values = iter(values * n if len(values) == 1 else values)
            changed = tuple(dataclasses.replace(f, **{field: next(values)}) if isinstance(f, Conv) else f
                            for f in features)
            Architecture((), features=changed)
            features, own_activations = changed, own_activations or field == "activation"
        except ConfigError as e:
            notices.append(f"Link value {key}={p[key]!r} was not used: {e} Using "
                           f"{'the default activation' if default is None else 'no dropout'} for the "
                           f"convolutions.")
    return features, own_activations


def _with_convolutions(arch: Architecture, features: tuple, own_activations: bool, p: dict[str, str],
                       notices: list[str]) -> Architecture:
    """`arch` after the link's convolutions; without them (and a notice) where together they pass a cap."""
    if not features:
        return arch
    act = conv_activation(arch)
    if not own_activations:  # the network's default
        features = tuple(dataclasses.replace(f, activation=act) if isinstance(f, Conv) else f
                         for f in features)
    try:
        return dataclasses.replace(arch, features=features)
    except ConfigError as e:
        notices.append(f"Link value conv={p['conv']!r} was not used: {e} Using no convolutions.")
        _unused_with_conv(p, notices)
        return arch


def _unused_with_conv(p: dict[str, str], notices: list[str]) -> None:
    """A notice for each of the convolutions' own values (`conv_act`, `conv_dropout`) in a link whose
    network has no convolutions: they go with them."""
    why = (f"it goes with conv={p['conv']!r}, which was not used." if p.get("conv") else
           "the link has no convolutions (conv=).")
    for key in ("conv_act", "conv_dropout"):
        if p.get(key):
            notices.append(f"Link value {key}={p[key]!r} was not used: {why}")
