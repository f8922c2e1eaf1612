"""Fully-connected networks as values: an `Architecture`, its `Init`, and a `Network` (both and the
weights' seed), which builds the lesson's named `nn.Sequential`."""

from __future__ import annotations

import math
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
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
MAX_DROPOUT = 0.9  # a dropout probability; at 1 a layer would pass nothing on


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


def _as_dropout(value, position: int) -> float:
    try:
        p = float(str(value).strip()) if not isinstance(value, bool) else math.nan
    except ValueError:
        p = math.nan
    if not 0 <= p <= MAX_DROPOUT:  # NaN fails too
        raise ConfigError(f"Dropout for hidden layer {position} must be a number from 0 (none) to "
                          f"{MAX_DROPOUT:g}; got {str(value).strip()!r}.")
    return p


def _as_flag(value) -> bool:
    if isinstance(value, bool) or value in (0, 1):
        return bool(value)
    raise ConfigError(f"Batch norm must be on or off (true or false); got {value!r}.")


def _p_text(p: float) -> str:
    return f"{p:g}"


@dataclass(frozen=True)
class Architecture:
    """784 inputs, hidden layers of the given sizes each with its activation, 10 outputs, softmax.

    Each hidden layer may also have batch norm (`nn.BatchNorm1d` between its Linear and its
    activation) and dropout after its activation (`nn.Dropout(p)`, only where p > 0): by default
    neither, so a network without them is the lesson's, module for module.
    """

    hidden: tuple[int, ...] = (128, 64)
    activations: tuple[str, ...] | str = "relu"  # one name for every layer, or one per layer
    inputs: int = INPUTS  # a data set's flattened image (dataset.Dataset.inputs)
    outputs: int = OUTPUTS  # and its number of classes
    dropout: tuple[float, ...] | float = 0.0  # one probability for every hidden layer, or one per layer
    batch_norm: bool = False

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
        drops = self.dropout if isinstance(self.dropout, (tuple, list)) else (self.dropout,) * len(hidden)
        if len(drops) != len(hidden):
            raise ConfigError(f"Give one dropout probability per hidden layer, or one for all: {len(hidden)} "
                              f"layer{'s' * (len(hidden) != 1)} but {len(drops)} probabilities.")
        object.__setattr__(self, "dropout", tuple(_as_dropout(p, i) for i, p in enumerate(drops, 1)))
        object.__setattr__(self, "batch_norm", _as_flag(self.batch_norm))
        if self.n_parameters > MAX_PARAMETERS:
            raise ConfigError(f"This network has {self.n_parameters:,} parameters; at most "
                              f"{MAX_PARAMETERS:,} are allowed. Use fewer or narrower hidden layers.")

    @classmethod
    def parse(cls, hidden: str, activation: str = "relu", dropout: str = "0",
              batch_norm: bool = False) -> Architecture:
        """From text as a user types it: hidden "128,64", activation "relu" or "relu,tanh", dropout
        "0.5" or "0.5,0.2"."""
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
        drops = [p.strip() for p in str(dropout).split(",")]
        if len(drops) == 1:
            drops = drops * len(parts)
        return cls(tuple(parts), tuple(acts), dropout=tuple(drops), batch_norm=batch_norm)

    @property
    def sizes(self) -> tuple[int, ...]:
        return (self.inputs, *self.hidden, self.outputs)

    @property
    def n_parameters(self) -> int:
        """Weights and biases, and batch norm's scale and shift (its running statistics are not
        learned: buffers, not parameters)."""
        s = self.sizes
        return sum(a * b + b for a, b in zip(s, s[1:])) + 2 * sum(self.hidden) * self.batch_norm

    @property
    def has_dropout(self) -> bool:
        return any(p > 0 for p in self.dropout)

    def layer_names(self) -> list[str]:
        """The lesson's names: fc1, relu1, fc2, ..., output, softmax; with batch norm bn1 after fc1,
        with dropout dropout1 after relu1."""
        names = []
        for i, (act, p) in enumerate(zip(self.activations, self.dropout), 1):
            names += [f"fc{i}"] + [f"bn{i}"] * self.batch_norm + [f"{act}{i}"] + [f"dropout{i}"] * (p > 0)
        return names + ["output", "softmax"]

    def bn_names(self) -> list[str]:
        return [f"bn{i}" for i in range(1, len(self.hidden) + 1)] if self.batch_norm else []

    def linear_names(self) -> list[str]:
        return [f"fc{i}" for i in range(1, len(self.hidden) + 1)] + ["output"]

    def dropout_label(self) -> str:
        """E.g. "0.5", or "0.5/0.2" when the layers differ; "" without dropout."""
        if not self.has_dropout:
            return ""
        ps = self.dropout[:1] if len(set(self.dropout)) == 1 else self.dropout
        return "/".join(map(_p_text, ps))

    def label(self) -> str:
        """E.g. "784-128-64-10 relu"; activations listed once when all equal; then dropout and batch
        norm when there are, e.g. "784-512-512-10 relu, dropout 0.5, batch norm"."""
        acts = self.activations[0] if len(set(self.activations)) == 1 else "/".join(self.activations)
        extra = (f", dropout {self.dropout_label()}" if self.has_dropout else "") + \
            (", batch norm" if self.batch_norm else "")
        return "-".join(map(str, self.sizes)) + " " + acts + extra

    def to_dict(self) -> dict:
        """As files and keys hold it; input and output sizes, dropout and batch norm only where they
        are not the defaults (files and sweep keys written before they were fields then read the same)."""
        d = {"hidden": list(self.hidden), "activations": list(self.activations)}
        if (self.inputs, self.outputs) != (INPUTS, OUTPUTS):
            d.update(inputs=self.inputs, outputs=self.outputs)
        if self.has_dropout:
            d["dropout"] = list(self.dropout)
        if self.batch_norm:
            d["batch_norm"] = True
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
        dropout = d.get("dropout", 0.0)
        if not isinstance(dropout, (int, float, list)) or isinstance(dropout, bool):
            raise ConfigError("An architecture's 'dropout' must be a number from 0 to "
                              f"{MAX_DROPOUT:g}, or a list of them (one per hidden layer).")
        return cls(tuple(hidden), tuple(acts) if isinstance(acts, list) else acts, **sizes,
                   dropout=tuple(dropout) if isinstance(dropout, list) else dropout,
                   batch_norm=d.get("batch_norm", False))


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


class HasWeights(HasNetwork):
    """For what holds a network's trained weights too (a SavedModel; a Run): the network they make."""

    state: dict[str, torch.Tensor]  # named as in the network

    def model(self, device="cpu") -> nn.Sequential:
        """The network, rebuilt from its architecture and loaded with its weights, in eval mode."""
        model = self.network.build(device)
        model.load_state_dict(self.state)
        return model.eval()


def build(arch: Architecture, init: Init = Init(), seed: int = 0, device="cpu") -> nn.Sequential:
    """The lesson's named `nn.Sequential`, weights drawn as the generated code draws them.

    The same numbers as `torch.manual_seed(seed)` followed by constructing the layers in order and
    applying the init, but from a private generator: visitors of one server never share RNG state.
    """
    seed = check_seed(seed)
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    sizes = arch.sizes
    masks = DropoutMasks()  # one stream for all its dropout layers, as torch's global one in the code
    # skip_init: no weights drawn from the global RNG here; they are all drawn from g below. Batch
    # norm starts at weight 1, bias 0 and draws nothing, nor does dropout.
    for i, (act, p) in enumerate(zip(arch.activations, arch.dropout), 1):
        layers[f"fc{i}"] = nn.utils.skip_init(nn.Linear, sizes[i - 1], sizes[i])
        if arch.batch_norm:
            layers[f"bn{i}"] = nn.BatchNorm1d(sizes[i])
        layers[f"{act}{i}"] = ACTIVATIONS[act].module()
        if p > 0:
            layers[f"dropout{i}"] = Dropout(p, masks)
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


class DropoutMasks:
    """Where a network's dropout layers draw their masks: one private generator, seeded, shared by
    its layers in the order they run; never torch's global generator, which every visitor's thread
    shares. Seeded with s, the masks are those of `nn.Dropout` after `torch.manual_seed(s)` on a CPU
    (what the generated training code does); `seed_dropout` reseeds it (the loop does, each run)."""

    def __init__(self, seed: int = 0):
        self.seed, self._generator = seed, None

    def generator(self, device: torch.device) -> torch.Generator:
        if self._generator is None or self._generator.device != device:
            self._generator = torch.Generator(device).manual_seed(self.seed)
        return self._generator

    def bernoulli(self, like: torch.Tensor, p: float) -> torch.Tensor:
        """A mask scaled as `nn.Dropout`'s: 0 with probability p, else 1 / (1 - p); ATen's CPU dropout
        draws it exactly so: `empty_like(x).bernoulli_(1 - p).div_(1 - p)`, then `x * mask`."""
        return torch.empty_like(like).bernoulli_(1 - p, generator=self.generator(like.device)).div_(1 - p)

    def __deepcopy__(self, memo):
        copy = DropoutMasks(self.seed)
        if self._generator is not None:
            copy._generator = torch.Generator(self._generator.device)
            copy._generator.set_state(self._generator.get_state())
        return copy


class Dropout(nn.Dropout):
    """`nn.Dropout` drawing its masks from its network's `DropoutMasks`: the same outputs, the same
    printout ("Dropout(p=0.5, inplace=False)"), no state of its own."""

    def __init__(self, p: float, masks: DropoutMasks):
        super().__init__(p)
        self.masks = masks

    def _get_name(self) -> str:
        return "Dropout"  # prints as the nn.Dropout of the generated code

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        return x * self.masks.bernoulli(x, self.p)


def seed_dropout(model: nn.Module, seed: int) -> None:
    """Dropout masks from now on drawn from a generator seeded with `seed`, one stream for all of
    `model`'s dropout layers (as `torch.manual_seed(seed)` makes for the generated code's)."""
    masks = DropoutMasks(check_seed(seed))
    for module in model.modules():
        if isinstance(module, Dropout):
            module.masks = masks


@contextmanager
def evaluating(model: nn.Module):
    """`model` in eval mode for a while (dropout off, batch norm on its running statistics), then
    back in the mode it was in: for a look at a network that is training, from its own thread."""
    was = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was)


def as_evaluated(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """`module(x)` as in eval mode, without switching `module` (another thread may be training it):
    dropout passes x on, batch norm uses its running statistics."""
    if isinstance(module, nn.modules.dropout._DropoutNd):
        return x
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return F.batch_norm(x, module.running_mean, module.running_var, module.weight, module.bias,
                            False, 0.0, module.eps)
    return module(x)


def logits(model: nn.Sequential, images: torch.Tensor) -> torch.Tensor:
    """Scores before the softmax layer: what training's cross-entropy needs."""
    return model[:-1](images.reshape(images.shape[0], -1))


def probabilities(model: nn.Sequential, images: torch.Tensor) -> torch.Tensor:
    """The lesson's forward pass: flatten, run every layer, softmax; rows sum to 1."""
    return model(images.reshape(images.shape[0], -1))


def parameter_table(model: nn.Sequential) -> list[dict]:
    """One row per Linear (and BatchNorm1d) layer: its weight and bias shapes and parameter count."""
    rows = []
    for name, layer in model.named_children():
        if isinstance(layer, (nn.Linear, nn.BatchNorm1d)):
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
