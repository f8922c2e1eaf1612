"""Fully-connected networks as values: an `Architecture`, its `Init`, and a `Network` (both and the
weights' seed), which builds the lesson's named `nn.Sequential`."""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn

from mnistlab.activations import ACTIVATIONS
from mnistlab.dataset import MNIST
from mnistlab.errors import ConfigError
from mnistlab.parse import whole, whole_number

INPUTS, OUTPUTS = MNIST.inputs, MNIST.n_classes  # every data set so far: 28×28 images, 10 classes
# Resource caps, so one visitor cannot take a shared server's memory (also in the README).
MAX_HIDDEN_LAYERS = 8
MAX_WIDTH = 2048
MAX_PARAMETERS = 5_000_000
MAX_INPUTS = 4096  # numbers in a flattened image, or classes


def _as_size(value, position: int) -> int:
    text = str(value).strip()
    if isinstance(value, bool) or not whole_number(text.removeprefix("+")):
        raise ConfigError(f"Hidden layer {position} size must be a whole number from 1 to "
                          f"{MAX_WIDTH}; got {text!r}.")
    size = int(text)
    if not 1 <= size <= MAX_WIDTH:
        raise ConfigError(f"Hidden layer {position} size must be from 1 to {MAX_WIDTH}; got {size}.")
    return size


def _as_activation(value, position: int) -> str:
    name = str(value).strip().lower()
    if name not in ACTIVATIONS:
        raise ConfigError(f"Hidden layer {position} activation must be one of "
                          f"{', '.join(ACTIVATIONS)}; got {str(value)!r}.")
    return name


@dataclass(frozen=True)
class Architecture:
    """784 inputs, hidden layers of the given sizes each with its activation, 10 outputs, softmax."""

    hidden: tuple[int, ...] = (128, 64)
    activations: tuple[str, ...] | str = "relu"  # one name for every layer, or one per layer
    inputs: int = INPUTS  # a data set's flattened image (dataset.Dataset.inputs)
    outputs: int = OUTPUTS  # and its number of classes

    def __post_init__(self):
        hidden = self.hidden if isinstance(self.hidden, (tuple, list)) else (self.hidden,)
        acts = (self.activations,) * len(hidden) if isinstance(self.activations, str) else self.activations
        if len(hidden) == 0:
            raise ConfigError("A network needs at least one hidden layer; give one or more sizes, "
                              "e.g. 128,64.")
        if len(hidden) > MAX_HIDDEN_LAYERS:
            raise ConfigError(f"At most {MAX_HIDDEN_LAYERS} hidden layers are allowed; got {len(hidden)}.")
        if len(acts) != len(hidden):
            raise ConfigError(f"Give one activation per hidden layer, or one for all: {len(hidden)} "
                              f"layer{'s' * (len(hidden) != 1)} but {len(acts)} activations.")
        object.__setattr__(self, "hidden", tuple(_as_size(h, i) for i, h in enumerate(hidden, 1)))
        object.__setattr__(self, "activations", tuple(_as_activation(a, i) for i, a in enumerate(acts, 1)))
        if self.n_parameters > MAX_PARAMETERS:
            raise ConfigError(f"This network has {self.n_parameters:,} parameters; at most "
                              f"{MAX_PARAMETERS:,} are allowed. Use fewer or narrower hidden layers.")

    @classmethod
    def parse(cls, hidden: str, activation: str = "relu") -> Architecture:
        """From text as a user types it: hidden "128,64", activation "relu" or "relu,tanh"."""
        parts = [p.strip() for p in str(hidden).split(",")]
        if parts == [""]:
            raise ConfigError("Give at least one hidden layer size, e.g. 128,64.")
        if "" in parts:
            raise ConfigError(f"Hidden sizes are whole numbers separated by single commas, e.g. "
                              f"128,64; got {hidden!r}.")
        if len(parts) > MAX_HIDDEN_LAYERS:
            raise ConfigError(f"At most {MAX_HIDDEN_LAYERS} hidden layers are allowed; got {len(parts)}.")
        acts = [a.strip() for a in str(activation).split(",")]
        if len(acts) == 1:
            acts = acts * len(parts)
        return cls(tuple(parts), tuple(acts))

    @property
    def sizes(self) -> tuple[int, ...]:
        return (self.inputs, *self.hidden, self.outputs)

    @property
    def n_parameters(self) -> int:
        s = self.sizes
        return sum(a * b + b for a, b in zip(s, s[1:]))

    def layer_names(self) -> list[str]:
        """The lesson's names: fc1, relu1, fc2, ..., output, softmax."""
        names = []
        for i, act in enumerate(self.activations, 1):
            names += [f"fc{i}", f"{act}{i}"]
        return names + ["output", "softmax"]

    def linear_names(self) -> list[str]:
        return [f"fc{i}" for i in range(1, len(self.hidden) + 1)] + ["output"]

    def label(self) -> str:
        """E.g. "784-128-64-10 relu"; activations listed once when all equal."""
        acts = self.activations[0] if len(set(self.activations)) == 1 else "/".join(self.activations)
        return "-".join(map(str, self.sizes)) + " " + acts

    def to_dict(self) -> dict:
        """As files and keys hold it; input and output sizes only where they are not MNIST's (files
        and sweep keys written before they were fields then read the same)."""
        d = {"hidden": list(self.hidden), "activations": list(self.activations)}
        if (self.inputs, self.outputs) != (INPUTS, OUTPUTS):
            d.update(inputs=self.inputs, outputs=self.outputs)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Architecture:
        if not isinstance(d, dict) or "hidden" not in d or "activations" not in d:
            raise ConfigError("An architecture needs 'hidden' (sizes) and 'activations' (names).")
        hidden, acts = d["hidden"], d["activations"]
        if not isinstance(hidden, list) or not isinstance(acts, (list, str)):
            raise ConfigError("An architecture's 'hidden' must be a list of sizes and 'activations' "
                              "a list of names.")
        sizes = {k: whole(f"An architecture's {k}", d[k], 1, MAX_INPUTS)
                 for k in ("inputs", "outputs") if k in d}
        return cls(tuple(hidden), tuple(acts) if isinstance(acts, list) else acts, **sizes)


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


MAX_SEED = 2**31 - 1


def check_seed(seed) -> int:
    if isinstance(seed, bool) or not whole_number(str(seed).strip()) or int(seed) > MAX_SEED:
        raise ConfigError(f"Seed must be a whole number from 0 to {MAX_SEED}; got {seed!r}.")
    return int(seed)


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

    def build(self, device="cpu") -> nn.Sequential:
        return build(self.arch, self.init, self.seed, device)

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


def build(arch: Architecture, init: Init = Init(), seed: int = 0, device="cpu") -> nn.Sequential:
    """The lesson's named `nn.Sequential`, weights drawn as the generated code draws them.

    The same numbers as `torch.manual_seed(seed)` followed by constructing the layers in order and
    applying the init, but from a private generator: visitors of one server never share RNG state.
    """
    seed = check_seed(seed)
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    sizes = arch.sizes
    # skip_init: no weights drawn from the global RNG here; they are all drawn from g below.
    for i, act in enumerate(arch.activations, 1):
        layers[f"fc{i}"] = nn.utils.skip_init(nn.Linear, sizes[i - 1], sizes[i])
        layers[f"{act}{i}"] = ACTIVATIONS[act].module()
    layers["output"] = nn.utils.skip_init(nn.Linear, sizes[-2], sizes[-1])
    layers["softmax"] = nn.Softmax(dim=1)
    model = nn.Sequential(layers)
    g = torch.Generator().manual_seed(seed)
    linears = [getattr(model, n) for n in arch.linear_names()]
    with torch.no_grad():
        for layer in linears:  # nn.Linear.reset_parameters, drawn from g
            nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=g)
            bound = 1 / math.sqrt(layer.in_features)
            nn.init.uniform_(layer.bias, -bound, bound, generator=g)
        for layer in linears:
            if init.zero_bias:
                layer.bias.fill_(0)
            if init.weight_std is not None:
                layer.weight.normal_(std=init.weight_std, generator=g)
    return model.to(resolve_device(device))


def logits(model: nn.Sequential, images: torch.Tensor) -> torch.Tensor:
    """Scores before the softmax layer: what training's cross-entropy needs."""
    return model[:-1](images.reshape(images.shape[0], -1))


def probabilities(model: nn.Sequential, images: torch.Tensor) -> torch.Tensor:
    """The lesson's forward pass: flatten, run every layer, softmax; rows sum to 1."""
    return model(images.reshape(images.shape[0], -1))


def parameter_table(model: nn.Sequential) -> list[dict]:
    """One row per Linear layer: its weight and bias shapes and parameter count."""
    rows = []
    for name, layer in model.named_children():
        if isinstance(layer, nn.Linear):
            rows.append({"layer": name, "weight": tuple(layer.weight.shape), "bias": tuple(layer.bias.shape),
                         "parameters": layer.weight.numel() + layer.bias.numel()})
    return rows


# -- devices -------------------------------------------------------------------------------------

def available_devices() -> list[str]:
    """The devices present here, best first, always ending with "cpu"."""
    found = []
    if torch.cuda.is_available():
        found.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return found + ["cpu"]


def resolve_device(name="auto") -> torch.device:
    """"auto" picks the best present; naming an absent one is an error that says what is present."""
    if isinstance(name, torch.device):
        name = name.type if name.index is None else str(name)
    name = str(name).strip().lower()
    present = available_devices()
    if name == "auto":
        return torch.device(present[0])
    if name.split(":")[0] not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"Device must be auto, {', '.join(present)}; got {name!r}.")
    if name.split(":")[0] not in present:
        raise ConfigError(f"Device {name!r} is not available on this machine; available: "
                          f"{', '.join(present)} (or auto).")
    return torch.device(name)
