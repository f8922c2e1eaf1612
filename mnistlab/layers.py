"""A network's layers as rows of one table: what each kind of layer takes, the shape it maps a batch's
image to, its parameters and multiply-adds, the modules it puts in the `nn.Sequential` and how the
shown code writes them. Adding a layer type is one more row here (ARCHITECTURE.md says how).

A network (`network.Architecture`) is a list of these: its convolutions and pools (`Conv`, `Pool`,
what the user lists), then `Flatten` when there were any, its hidden `Linear` layers and its
`Output`. Shapes are an image's, without the batch: (channels, height, width), then (features,).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from mnistlab.activations import ACTIVATIONS
from mnistlab.errors import ConfigError
from mnistlab.parse import whole_number

if TYPE_CHECKING:
    from torch import nn

    from mnistlab.dropout import DropoutMasks

# Caps (also in the README's Limits), so one visitor cannot take a shared server.
MAX_CONV_LAYERS = 6  # convolutions in one network
MAX_CHANNELS = 256  # feature maps of one convolution
MAX_KERNEL = 11
MAX_POOL = 4
MAX_WIDTH = 2048  # units of one hidden linear layer
MAX_DROPOUT = 0.9  # a dropout probability; at 1 a layer would pass nothing on

Shape = tuple[int, ...]


def shape_text(shape: Shape) -> str:
    """(8, 24, 24) as "8×24×24", (256,) as "256"."""
    return "×".join(map(str, shape))


def _maps(shape: Shape) -> str:
    return f"{shape[1]}×{shape[2]} maps"


def as_size(value, what: str, lo: int, hi: int) -> int:
    """A whole number from `lo` to `hi`, typed or given; a message naming `what` otherwise."""
    text = str(value).strip()
    if isinstance(value, bool) or not whole_number(text.removeprefix("+")):
        raise ConfigError(f"{what} must be a whole number from {lo:,} to {hi:,}; got {text!r}.")
    if not lo <= int(text) <= hi:
        raise ConfigError(f"{what} must be from {lo:,} to {hi:,}; got {int(text)}.")
    return int(text)


def as_activation(value, what: str) -> str:
    name = str(value).strip().lower()
    if name not in ACTIVATIONS:
        raise ConfigError(f"{what} activation must be one of {', '.join(ACTIVATIONS)}; got {str(value)!r}.")
    return name


def as_dropout(value, what: str) -> float:
    try:
        p = float(str(value).strip()) if not isinstance(value, bool) else math.nan
    except ValueError:
        p = math.nan
    if not 0 <= p <= MAX_DROPOUT:  # NaN fails too
        raise ConfigError(f"Dropout for {what} must be a number from 0 (none) to {MAX_DROPOUT:g}; got "
                          f"{str(value).strip()!r}.")
    return p


def _torch_nn(masks: DropoutMasks | None):
    """torch.nn where `masks` asks for modules to be made, None where only their code is: a layer's
    check, shapes, counts and code need no torch, so the command line's help and checks answer
    without loading it."""
    if masks is None:
        return None
    from torch import nn

    return nn


@dataclass(frozen=True)
class Made:
    """One module of a layer as the network holds it and as the shown code writes it."""

    name: str  # in the nn.Sequential: conv1, relu_conv1, pool1, flatten, fc1, bn1, relu1, output
    code: str  # its constructor as the shown code writes it: "nn.Conv2d(1, 8, kernel_size=5)"
    module: nn.Module | None = None  # None where only the code was asked for
    weighted: bool = False  # has a weight and bias the init draws (Conv2d, Linear)
    function: str | None = None  # as a function of {x} in a forward(); None: a module there too


class Layer:
    """What every row has. `number` is the layer's count among its kind (conv2, pool1, fc3)."""

    kind: ClassVar[str]

    def check(self, shape: Shape, position: int) -> None:
        """A ConfigError saying why this layer, at `position` in the list, does not fit `shape`."""

    def out_shape(self, shape: Shape) -> Shape:
        raise NotImplementedError

    def n_parameters(self, shape: Shape, batch_norm: bool) -> int:
        return 0

    def macs(self, shape: Shape) -> int:
        """Multiply-adds for one image (convolutions and linear layers; activations, batch norm and
        pooling are elementwise and not counted)."""
        return 0

    def made(self, number: int, shape: Shape, batch_norm: bool, masks: DropoutMasks | None) -> list[Made]:
        """Its modules in order (with `masks` None: their code only, nothing built)."""
        raise NotImplementedError

    def text(self) -> str:
        """As the layer list is typed: "8:5", "8:5:1", "pool"."""
        raise NotImplementedError


def _activated(made: list[Made], suffix: str, size: int, norm: str, batch_norm: bool, activation: str,
               dropout: float, masks: DropoutMasks | None) -> list[Made]:
    """A weighted layer's batch norm (when its network has it), activation and dropout (where p > 0)."""
    nn = _torch_nn(masks)
    if batch_norm:
        made.append(Made(f"bn{suffix}", f"nn.{norm}({size})", masks and getattr(nn, norm)(size)))
    made.append(Made(f"{activation}{suffix}", ACTIVATIONS[activation].code_module,
                     masks and ACTIVATIONS[activation].module(),
                     function=f"{ACTIVATIONS[activation].code_function}({{x}})"))
    if dropout > 0:
        made.append(Made(f"dropout{suffix}", f"nn.Dropout(p={dropout!r})", masks and masks.dropout(dropout),
                         function=f"F.dropout({{x}}, p={dropout!r}, training=self.training)"))
    return made


@dataclass(frozen=True)
class Conv(Layer):
    """A convolution, stride 1: `channels` feature maps, each from a `kernel`×`kernel` filter over all
    the maps before it, zero-padded by `padding` on each side; then batch norm (`BatchNorm2d`, when
    its network has batch norm), its activation and dropout (where p > 0)."""

    channels: int
    kernel: int
    padding: int = 0
    activation: str = "relu"
    dropout: float = 0.0
    kind: ClassVar[str] = "conv"

    def __post_init__(self):
        k = as_size(self.kernel, "A convolution's kernel", 1, MAX_KERNEL)
        channels = as_size(self.channels, "A convolution's channels", 1, MAX_CHANNELS)
        object.__setattr__(self, "channels", channels)
        object.__setattr__(self, "kernel", k)
        object.__setattr__(self, "padding", as_size(self.padding, f"A {k}×{k} kernel's padding", 0, k - 1))
        object.__setattr__(self, "activation", as_activation(self.activation, "A convolution's"))
        object.__setattr__(self, "dropout", as_dropout(self.dropout, "a convolution"))

    def check(self, shape, position):
        k, p = self.kernel, self.padding
        if min(shape[1:]) + 2 * p < k:
            after = f"after layer {position - 1}" if position > 1 else "of the input image"
            padded = f" (padded by {p}: {shape[1] + 2 * p}×{shape[2] + 2 * p})" if p else ""
            raise ConfigError(f"Layer {position}: a {k}×{k} kernel does not fit the {_maps(shape)} {after}"
                              f"{padded}. Use a smaller kernel, more padding, or fewer pools before it.")

    def out_shape(self, shape):
        grow = 2 * self.padding - self.kernel + 1
        return (self.channels, shape[1] + grow, shape[2] + grow)

    def n_parameters(self, shape, batch_norm):
        return shape[0] * self.channels * self.kernel ** 2 + self.channels * (1 + 2 * batch_norm)

    def macs(self, shape):
        _, h, w = self.out_shape(shape)
        return self.channels * h * w * shape[0] * self.kernel ** 2

    def made(self, number, shape, batch_norm, masks):
        c_in, k, p = shape[0], self.kernel, self.padding
        nn = _torch_nn(masks)
        code = f"nn.Conv2d({c_in}, {self.channels}, kernel_size={k}" + (f", padding={p})" if p else ")")
        module = masks and nn.utils.skip_init(nn.Conv2d, c_in, self.channels, k, padding=p)
        made = [Made(f"conv{number}", code, module, weighted=True)]
        return _activated(made, f"_conv{number}", self.channels, "BatchNorm2d", batch_norm, self.activation,
                          self.dropout, masks)

    def text(self):
        return f"{self.channels}:{self.kernel}" + (f":{self.padding}" if self.padding else "")

    def to_dict(self) -> dict:
        d = {"type": "conv", "channels": self.channels, "kernel": self.kernel}
        if self.padding:
            d["padding"] = self.padding
        d["activation"] = self.activation
        if self.dropout:
            d["dropout"] = self.dropout
        return d


@dataclass(frozen=True)
class Pool(Layer):
    """Max pooling: each `size`×`size` window of each map (stride `size`) down to its largest value."""

    size: int = 2
    kind: ClassVar[str] = "pool"

    def __post_init__(self):
        object.__setattr__(self, "size", as_size(self.size, "A pool's size", 2, MAX_POOL))

    def check(self, shape, position):
        if min(shape[1:]) < self.size:
            after = f"after layer {position - 1}" if position > 1 else "of the input image"
            raise ConfigError(f"Layer {position}: a {self.size}×{self.size} pool does not fit the "
                              f"{_maps(shape)} {after}. Use fewer pools or more padding before it.")

    def out_shape(self, shape):
        return (shape[0], shape[1] // self.size, shape[2] // self.size)

    def made(self, number, shape, batch_norm, masks):
        nn = _torch_nn(masks)
        return [Made(f"pool{number}", f"nn.MaxPool2d({self.size})", masks and nn.MaxPool2d(self.size),
                     function=f"F.max_pool2d({{x}}, {self.size})")]

    def text(self):
        return "pool" if self.size == 2 else f"pool{self.size}"

    def to_dict(self) -> dict:
        return {"type": "pool", "size": self.size}


@dataclass(frozen=True)
class Flatten(Layer):
    """Each image's maps as one row of numbers, for the linear layers after the convolutions."""

    kind: ClassVar[str] = "flatten"

    def out_shape(self, shape):
        return (math.prod(shape),)

    def made(self, number, shape, batch_norm, masks):
        nn = _torch_nn(masks)
        return [Made("flatten", "nn.Flatten()", masks and nn.Flatten(),
                     function="{x}.view({x}.shape[0], -1)")]

    def text(self):
        return "flatten"


@dataclass(frozen=True)
class Linear(Layer):
    """A hidden fully-connected layer: `size` units, then batch norm (`BatchNorm1d`, when its network
    has batch norm), its activation and dropout (where p > 0): the lesson's fc1, bn1, relu1, dropout1."""

    size: int
    activation: str = "relu"
    dropout: float = 0.0
    kind: ClassVar[str] = "linear"

    def out_shape(self, shape):
        return (self.size,)

    def n_parameters(self, shape, batch_norm):
        return shape[0] * self.size + self.size * (1 + 2 * batch_norm)

    def macs(self, shape):
        return shape[0] * self.size

    def made(self, number, shape, batch_norm, masks):
        nn = _torch_nn(masks)
        made = [Made(f"fc{number}", f"nn.Linear({shape[0]}, {self.size})",
                     masks and nn.utils.skip_init(nn.Linear, shape[0], self.size), weighted=True)]
        return _activated(made, str(number), self.size, "BatchNorm1d", batch_norm, self.activation,
                          self.dropout, masks)

    def text(self):
        return str(self.size)


@dataclass(frozen=True)
class Output(Layer):
    """The output layer, one unit a class, and the softmax that makes its scores probabilities."""

    classes: int
    kind: ClassVar[str] = "output"

    def out_shape(self, shape):
        return (self.classes,)

    def n_parameters(self, shape, batch_norm):
        return shape[0] * self.classes + self.classes

    def macs(self, shape):
        return shape[0] * self.classes

    def made(self, number, shape, batch_norm, masks):
        nn = _torch_nn(masks)
        return [Made("output", f"nn.Linear({shape[0]}, {self.classes})",
                     masks and nn.utils.skip_init(nn.Linear, shape[0], self.classes), weighted=True),
                Made("softmax", "nn.Softmax(dim=1)", masks and nn.Softmax(dim=1),
                     function="F.softmax({x}, dim=1)")]

    def text(self):
        return str(self.classes)


# The layers a user lists before the linear ones, by the name files and keys give their type.
FEATURE_LAYERS: dict[str, type[Layer]] = {"conv": Conv, "pool": Pool}


def feature_from_dict(d) -> Conv | Pool:
    """A convolution or pool as files, links and sweep keys hold it ({"type": "conv", ...})."""
    if not isinstance(d, dict) or not isinstance(d.get("type"), str) or d["type"] not in FEATURE_LAYERS:
        raise ConfigError(f"A layer must be a mapping with 'type' one of {', '.join(FEATURE_LAYERS)}; "
                          f"got {str(d)[:60]!r}.")
    fields = {k: v for k, v in d.items() if k != "type"}
    allowed = {"conv": {"channels", "kernel", "padding", "activation", "dropout"},
               "pool": {"size"}}[d["type"]]
    if set(fields) - allowed:
        raise ConfigError(f"A {d['type']} layer takes {', '.join(sorted(allowed))}; got "
                          f"{', '.join(sorted(set(fields) - allowed))}.")
    if d["type"] == "conv" and not {"channels", "kernel"} <= set(fields):
        raise ConfigError("A conv layer needs 'channels' and 'kernel'.")
    return FEATURE_LAYERS[d["type"]](**fields)


def parse_features(text: str, activation: str = "relu", pool: bool = False) -> tuple[Conv | Pool, ...]:
    """Convolutions and pools as typed: "8:5,pool,16:5,pool" (channels:kernel[:padding], "pool" for a
    2×2 max pool, "pool3" for 3×3); with `pool`, a 2×2 pool after each convolution ("8:5,16:5", as
    the command line's --conv reads it). "" or "none": no convolutions (an MLP)."""
    text = str(text).strip().lower()
    if text in ("", "none"):
        return ()
    activation = as_activation(activation, "The convolutions'")
    items = [item.strip() for item in text.split(",")]
    layers: list[Conv | Pool] = []
    for position, item in enumerate(items, 1):
        if item.startswith("pool"):
            size = item.removeprefix("pool") or "2"
            if not whole_number(size):
                raise ConfigError(f"Layer {position}: a pool is written pool (2×2) or pool3 (3×3); "
                                  f"got {item!r}.")
            layers.append(Pool(int(size)))
            continue
        parts = item.split(":")
        if len(parts) not in (2, 3) or not all(whole_number(p.strip()) for p in parts):
            raise ConfigError(f"Layer {position}: a convolution is channels:kernel or "
                              f"channels:kernel:padding in whole numbers, e.g. 8:5 or 32:3:1; got {item!r}.")
        layers.append(Conv(*(int(p) for p in parts), activation=activation))
        if pool:
            layers.append(Pool(2))
    return tuple(layers)
