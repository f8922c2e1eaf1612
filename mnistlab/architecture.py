"""A network's architecture as a value: its list of layers (convolutions and pools, then hidden
linear layers and the output), checked when it is made (sizes, shapes, the caps), counted (parameters
and multiply-adds, per layer and in all), written as files, keys and labels hold it; and a `Network`:
an architecture, its `Init` and the weights' seed. The layer types themselves are rows of `layers`;
`network` builds the modules. No torch here: the command line checks its arguments and answers
--help without loading it."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mnistlab.dataset import MNIST
from mnistlab.errors import ConfigError
from mnistlab.layers import (
    MAX_CONV_LAYERS,
    MAX_DROPOUT,
    MAX_WIDTH,
    Conv,
    Flatten,
    Layer,
    Linear,
    Made,
    Output,
    Pool,
    Shape,
    as_activation,
    as_dropout,
    as_size,
    feature_from_dict,
    parse_features,
)
from mnistlab.parse import check_seed, whole

if TYPE_CHECKING:

    from mnistlab.dropout import DropoutMasks

IMAGE, OUTPUTS = MNIST.image_shape, MNIST.n_classes  # every data set so far: 1×28×28 images, 10 classes
INPUTS = MNIST.inputs
# Resource caps, so one visitor cannot take a shared server's memory or cores (also in the README).
MAX_HIDDEN_LAYERS = 8
MAX_PARAMETERS = 5_000_000
MAX_MACS = 20_000_000  # multiply-adds for one image: about 5× the 50K-parameter CNN of the README
MAX_INPUTS = 4096  # numbers in a flattened image, or classes


def _as_flag(value) -> bool:
    if isinstance(value, bool) or value in (0, 1):
        return bool(value)
    raise ConfigError(f"Batch norm must be on or off (true or false); got {value!r}.")


def _as_image(value) -> tuple[int, int, int]:
    if not isinstance(value, (tuple, list)) or len(value) != 3:
        raise ConfigError(f"An image shape is (channels, height, width); got {value!r}.")
    names = ("channels", "height", "width")
    c, h, w = (whole(f"An image's {n}", v, 1, MAX_INPUTS) for n, v in zip(names, value))
    if c * h * w > MAX_INPUTS:
        raise ConfigError(f"An image may hold at most {MAX_INPUTS} numbers; got {c}×{h}×{w}.")
    return (c, h, w)


def _p_text(p: float) -> str:
    return f"{p:g}"


def _feature_label(layer: Conv | Pool) -> str:
    if isinstance(layer, Conv):
        return f"conv {layer.text()}"
    return "pool" if layer.size == 2 else f"pool {layer.size}"


@dataclass(frozen=True)
class Architecture:
    """A network as a list of layers: its convolutions and pools (`features`, none for an MLP), the
    hidden linear layers of the given sizes, each with its activation, and the output layer with its
    softmax. Zero hidden layers is allowed: softmax regression, or a CNN that goes straight from its
    last pool to the output.

    Each hidden layer and convolution may also have batch norm (`BatchNorm1d`/`BatchNorm2d` between
    it and its activation: `batch_norm` is the network's, for all of them) and dropout after its
    activation (`nn.Dropout(p)`, only where p > 0). Without them an MLP is the lesson's, module for
    module. Shapes are checked here: a layer that no longer fits is named in the message.
    """

    hidden: tuple[int, ...] = (128, 64)
    activations: tuple[str, ...] | str = "relu"  # one name for every hidden layer, or one per layer
    image: tuple[int, int, int] = IMAGE  # a data set's (channels, height, width): dataset.Dataset.image_shape
    outputs: int = OUTPUTS  # and its number of classes
    dropout: tuple[float, ...] | float = 0.0  # one probability for every hidden layer, or one per layer
    batch_norm: bool = False
    features: tuple[Conv | Pool, ...] = ()  # convolutions and pools, before the linear layers

    def __post_init__(self):
        hidden = self.hidden if isinstance(self.hidden, (tuple, list)) else (self.hidden,)
        acts = (self.activations,) * len(hidden) if isinstance(self.activations, str) else self.activations
        if len(hidden) > MAX_HIDDEN_LAYERS:
            raise ConfigError(f"At most {MAX_HIDDEN_LAYERS} hidden layers are allowed; got {len(hidden)}.")
        if len(acts) != len(hidden):
            raise ConfigError(f"Give one activation per hidden layer, or one for all: {len(hidden)} "
                              f"layer{'s' * (len(hidden) != 1)} but {len(acts)} activations.")
        object.__setattr__(self, "hidden", tuple(
            as_size(h, f"Hidden layer {i} size", 1, MAX_WIDTH) for i, h in enumerate(hidden, 1)))
        object.__setattr__(self, "activations", tuple(
            as_activation(a, f"Hidden layer {i}") for i, a in enumerate(acts, 1)))
        drops = self.dropout if isinstance(self.dropout, (tuple, list)) else (self.dropout,) * len(hidden)
        if len(drops) != len(hidden):
            raise ConfigError(f"Give one dropout probability per hidden layer, or one for all: {len(hidden)} "
                              f"layer{'s' * (len(hidden) != 1)} but {len(drops)} probabilities.")
        object.__setattr__(self, "dropout", tuple(
            as_dropout(p, f"hidden layer {i}") for i, p in enumerate(drops, 1)))
        object.__setattr__(self, "batch_norm", _as_flag(self.batch_norm))
        object.__setattr__(self, "image", _as_image(self.image))
        object.__setattr__(self, "outputs", whole("An architecture's outputs", self.outputs, 1, MAX_INPUTS))
        features = tuple(self.features)
        if not all(isinstance(f, (Conv, Pool)) for f in features):
            raise ConfigError("Layers before the linear ones are convolutions and pools.")
        if sum(isinstance(f, Conv) for f in features) > MAX_CONV_LAYERS:
            raise ConfigError(f"At most {MAX_CONV_LAYERS} convolutions are allowed; got "
                              f"{sum(isinstance(f, Conv) for f in features)}.")
        if len(features) > 2 * MAX_CONV_LAYERS:
            raise ConfigError(f"At most {2 * MAX_CONV_LAYERS} convolutions and pools are allowed; got "
                              f"{len(features)}.")
        object.__setattr__(self, "features", features)
        shape = self.input_shape
        for position, layer in enumerate(features, 1):  # the shape check: which layer no longer fits
            layer.check(shape, position)
            shape = layer.out_shape(shape)
        if self.n_parameters > MAX_PARAMETERS:
            fewer = ("fewer channels, or fewer or narrower layers" if features else
                     "fewer or narrower hidden layers")
            raise ConfigError(f"This network has {self.n_parameters:,} parameters; at most "
                              f"{MAX_PARAMETERS:,} are allowed. Use {fewer}.")
        if self.macs > MAX_MACS:
            raise ConfigError(f"This network takes {self.macs:,} multiply-adds an image; at most "
                              f"{MAX_MACS:,} are allowed. Use fewer channels, or pool sooner.")

    @classmethod
    def parse(cls, hidden: str, activation: str = "relu", dropout: str = "0",
              batch_norm: bool = False, conv: str = "", pool: bool = True) -> Architecture:
        """From text as a user types it: hidden "128,64" ("" for none), activation "relu" or
        "relu,tanh" (convolutions take the first), dropout "0.5" or "0.5,0.2" (one per hidden layer),
        conv "8:5,16:5" (channels:kernel[:padding], each followed by a 2×2 max pool unless `pool` is
        off; "8:5,pool,16:5" lists pools where they go when it is)."""
        parts = [p.strip() for p in str(hidden).split(",")]
        if parts == [""]:
            parts = []
        if "" in parts:
            raise ConfigError(f"Hidden sizes are whole numbers separated by single commas, e.g. "
                              f"128,64 (or nothing, for no hidden layer); got {hidden!r}.")
        if len(parts) > MAX_HIDDEN_LAYERS:
            raise ConfigError(f"At most {MAX_HIDDEN_LAYERS} hidden layers are allowed; got {len(parts)}.")
        acts = [a.strip() for a in str(activation).split(",")]
        features = parse_features(conv, acts[0], pool and "pool" not in str(conv).lower())
        if len(acts) == 1:
            acts = acts * len(parts)
        drops = [p.strip() for p in str(dropout).split(",")]
        if len(drops) == 1:
            drops = drops * len(parts)
        return cls(tuple(parts), tuple(acts), dropout=tuple(drops), batch_norm=batch_norm, features=features)

    @property
    def inputs(self) -> int:
        """Numbers in one flattened image."""
        return math.prod(self.image)

    @property
    def is_cnn(self) -> bool:
        return bool(self.features)

    @property
    def input_shape(self) -> Shape:
        """What the first layer reads of an image: its maps for a CNN, one row of numbers for an MLP."""
        return self.image if self.features else (self.inputs,)

    def rows(self) -> tuple[Layer, ...]:
        """Every layer in order: convolutions and pools, Flatten after them, hidden layers, output."""
        hidden = tuple(Linear(h, a, p) for h, a, p in zip(self.hidden, self.activations, self.dropout))
        return self.features + (Flatten(),) * self.is_cnn + hidden + (Output(self.outputs),)

    def shapes(self) -> list[Shape]:
        """The shape an image has before the first layer and after each of `rows()`."""
        shapes = [self.input_shape]
        for layer in self.rows():
            shapes.append(layer.out_shape(shapes[-1]))
        return shapes

    def made(self, masks: DropoutMasks | None = None) -> list[Made]:
        """Each layer's modules, named and in order (built only when `masks` is given)."""
        made, counts = [], Counter()
        for layer, shape in zip(self.rows(), self.shapes()):
            counts[layer.kind] += 1
            made += layer.made(counts[layer.kind], shape, self.batch_norm, masks)
        return made

    def table(self) -> list[dict]:
        """One row per layer: what it is, its modules, its output shape, its parameters and multiply-adds."""
        shapes = self.shapes()
        return [{"layer": layer.kind, "text": layer.text(), "shape": shapes[i + 1],
                 "parameters": layer.n_parameters(shapes[i], self.batch_norm), "macs": layer.macs(shapes[i])}
                for i, layer in enumerate(self.rows())]

    @property
    def sizes(self) -> tuple[int, ...]:
        """The linear part's sizes, from what the first linear layer reads: (784, 128, 64, 10)."""
        return (self.shapes()[len(self.features) + self.is_cnn][0], *self.hidden, self.outputs)

    @property
    def n_parameters(self) -> int:
        """Weights and biases, and batch norm's scale and shift (its running statistics are not
        learned: buffers, not parameters)."""
        return sum(row["parameters"] for row in self.table())

    @property
    def macs(self) -> int:
        """Multiply-adds to classify one image (convolutions and linear layers)."""
        return sum(row["macs"] for row in self.table())

    @property
    def has_dropout(self) -> bool:
        return any(p > 0 for p in self.dropout) or any(getattr(f, "dropout", 0) > 0 for f in self.features)

    def layer_names(self) -> list[str]:
        """The lesson's names: fc1, relu1, fc2, ..., output, softmax; with batch norm bn1 after fc1,
        with dropout dropout1 after relu1; a CNN's conv1, relu_conv1, pool1, ..., flatten before them."""
        return [m.name for m in self.made()]

    def bn_names(self) -> list[str]:
        """The hidden linear layers' batch norms: bn1, bn2, ... (a CNN's are bn_conv1, ...)."""
        return [f"bn{i}" for i in range(1, len(self.hidden) + 1)] if self.batch_norm else []

    def linear_names(self) -> list[str]:
        return [f"fc{i}" for i in range(1, len(self.hidden) + 1)] + ["output"]

    def conv_names(self) -> list[str]:
        return [f"conv{i}" for i in range(1, sum(isinstance(f, Conv) for f in self.features) + 1)]

    def weighted_names(self) -> list[str]:
        """The layers whose weights and biases the init draws, in the order it draws them."""
        return [m.name for m in self.made() if m.weighted]

    def features_text(self) -> str:
        """The convolutions and pools as typed: "8:5,pool,16:5,pool"; "" for an MLP."""
        return ",".join(f.text() for f in self.features)

    def dropout_label(self) -> str:
        """E.g. "0.5", or "0.5/0.2" when the layers differ; "" without dropout."""
        if not any(p > 0 for p in self.dropout):
            return ""
        ps = self.dropout[:1] if len(set(self.dropout)) == 1 else self.dropout
        return "/".join(map(_p_text, ps))

    def label(self) -> str:
        """E.g. "784-128-64-10 relu"; activations listed once when all equal; then dropout and batch
        norm when there are, e.g. "784-512-512-10 relu, dropout 0.5, batch norm". A CNN's convolutions
        and pools come first: "conv 8:5 → pool → conv 16:5 → pool → 256-10 relu"."""
        acts = [f.activation for f in self.features if isinstance(f, Conv)] + list(self.activations)
        act = acts[0] if len(set(acts)) == 1 else "/".join(acts)
        drop = self.dropout_label()
        conv_drops = [f.dropout for f in self.features if isinstance(f, Conv) and f.dropout > 0]
        extra = (f", dropout {drop}" if drop else "") + \
            (f", conv dropout {'/'.join(map(_p_text, dict.fromkeys(conv_drops)))}" if conv_drops else "") + \
            (", batch norm" if self.batch_norm else "")
        convs = "".join(f"{_feature_label(f)} → " for f in self.features)
        return convs + "-".join(map(str, self.sizes)) + (f" {act}" if act else "") + extra

    def to_dict(self) -> dict:
        """As files and keys hold it; image shape, outputs, dropout, batch norm and layers only where
        they are not the defaults (files and sweep keys written before they were fields read the same)."""
        d = {"hidden": list(self.hidden), "activations": list(self.activations)}
        if self.image != IMAGE:
            d["image"] = list(self.image)
        if self.outputs != OUTPUTS:
            d["outputs"] = self.outputs
        if any(p > 0 for p in self.dropout):
            d["dropout"] = list(self.dropout)
        if self.batch_norm:
            d["batch_norm"] = True
        if self.features:
            d["layers"] = [f.to_dict() for f in self.features]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Architecture:
        if not isinstance(d, dict) or "hidden" not in d or "activations" not in d:
            raise ConfigError("An architecture needs 'hidden' (sizes) and 'activations' (names).")
        hidden, acts = d["hidden"], d["activations"]
        if not isinstance(hidden, list) or not isinstance(acts, (list, str)):
            raise ConfigError("An architecture's 'hidden' must be a list of sizes and 'activations' "
                              "a list of names.")
        sizes = {}
        if "outputs" in d:
            sizes["outputs"] = whole("An architecture's outputs", d["outputs"], 1, MAX_INPUTS)
        if "image" in d:
            sizes["image"] = _as_image(d["image"])
        elif "inputs" in d:  # before images had a shape: a flattened image of that many numbers
            n = whole("An architecture's inputs", d["inputs"], 1, MAX_INPUTS)
            sizes["image"] = IMAGE if n == INPUTS else (1, 1, n)
        dropout = d.get("dropout", 0.0)
        if not isinstance(dropout, (int, float, list)) or isinstance(dropout, bool):
            raise ConfigError("An architecture's 'dropout' must be a number from 0 to "
                              f"{MAX_DROPOUT:g}, or a list of them (one per hidden layer).")
        layers = d.get("layers", [])
        if not isinstance(layers, list) or len(layers) > 2 * MAX_CONV_LAYERS:
            raise ConfigError(f"An architecture's 'layers' must be a list of at most {2 * MAX_CONV_LAYERS} "
                              f"convolutions and pools.")
        return cls(tuple(hidden), tuple(acts) if isinstance(acts, list) else acts, **sizes,
                   dropout=tuple(dropout) if isinstance(dropout, list) else dropout,
                   batch_norm=d.get("batch_norm", False), features=tuple(map(feature_from_dict, layers)))


@dataclass(frozen=True)
class Init:
    """How weights start: PyTorch's default, optionally zero biases and/or normal(0, std) weights."""

    zero_bias: bool = False
    weight_std: float | None = None  # None keeps PyTorch's default (Kaiming-uniform) weights

    def __post_init__(self):
        if self.weight_std is not None:
            try:
                std = float(self.weight_std)
            except (TypeError, ValueError):
                raise ConfigError(f"Weight std must be a number; got {self.weight_std!r}.") from None
            if not math.isfinite(std) or std <= 0 or std > 10:
                raise ConfigError(f"Weight std must be a finite number above 0 and at most 10; got {std}.")
            object.__setattr__(self, "weight_std", std)

    def label(self) -> str:
        parts = ["default" if self.weight_std is None else f"normal(std={self.weight_std:g})"]
        if self.zero_bias:
            parts.append("zero bias")
        return ", ".join(parts)

    def to_dict(self) -> dict:
        return {"zero_bias": self.zero_bias, "weight_std": self.weight_std}

    @classmethod
    def from_dict(cls, d: dict) -> Init:
        if not isinstance(d, dict):
            raise ConfigError("An init must be a mapping with 'zero_bias' and 'weight_std'.")
        return cls(bool(d.get("zero_bias", False)), d.get("weight_std"))


@dataclass(frozen=True)
class Network:
    """One network before training: its architecture, its init and the seed of its initial weights.
    The same value builds the same weights, so a link, a sweep trial or a saved model holds this and
    not the weights themselves."""

    arch: Architecture = Architecture()
    init: Init = Init()
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "seed", check_seed(self.seed))

    def label(self) -> str:
        """E.g. "784-128-64-10 relu, init default, seed 0"."""
        return f"{self.arch.label()}, init {self.init.label()}, seed {self.seed}"

    def to_dict(self) -> dict:
        return {"arch": self.arch.to_dict(), "init": self.init.to_dict(), "seed": self.seed}

    @classmethod
    def from_dict(cls, d: dict) -> Network:
        if not isinstance(d, dict):
            raise ConfigError("A network must be a mapping with 'arch', 'init' and 'seed'.")
        arch, init = Architecture.from_dict(d.get("arch")), Init.from_dict(d.get("init") or {})
        return cls(arch, init, d.get("seed", 0))


class HasNetwork:
    """For what holds a `network` (a Run, a sweep's Trial, a SavedModel): its architecture, init and
    weights' seed read as its own, written once here."""

    network: Network

    @property
    def arch(self) -> Architecture:
        return self.network.arch

    @property
    def init(self) -> Init:
        return self.network.init

    @property
    def seed(self) -> int:
        """The initial weights' seed (a training's batches have their own: config.batch_seed)."""
        return self.network.seed
