"""Networks as values: an `Architecture` (architecture.py: its list of layers), its `Init`, and a
`Network` (both and the weights' seed), which builds the lesson's named `nn.Sequential`."""

from __future__ import annotations

import math
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mnistlab.architecture import (  # noqa: F401 - the caps: where callers find them
    INPUTS,
    MAX_HIDDEN_LAYERS,
    MAX_INPUTS,
    MAX_MACS,
    MAX_PARAMETERS,
    OUTPUTS,
    Architecture,
)
from mnistlab.devices import available_devices, resolve_device  # noqa: F401 - where callers find them
from mnistlab.errors import ConfigError
from mnistlab.layers import MAX_CONV_LAYERS, MAX_DROPOUT, MAX_WIDTH, Dropout, DropoutMasks  # noqa: F401
from mnistlab.parse import whole_number


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


def state_shapes(arch: Architecture) -> dict[str, tuple[int, ...]]:
    """Every tensor a network of `arch` holds (weights, biases, batch norm's statistics), by its
    state_dict name, with its shape; nothing drawn or allocated."""
    with torch.device("meta"):
        model = nn.Sequential(OrderedDict((m.name, m.module) for m in arch.made(DropoutMasks())))
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def build(arch: Architecture, init: Init = Init(), seed: int = 0, device="cpu") -> nn.Sequential:
    """The lesson's named `nn.Sequential`, weights drawn as the generated code draws them.

    The same numbers as `torch.manual_seed(seed)` followed by constructing the layers in order and
    applying the init, but from a private generator: visitors of one server never share RNG state.
    A CNN's model reads images (B, C, H, W) and knows their shape (`image_shape`); an MLP's reads
    them flattened, as the lesson's does.
    """
    seed = check_seed(seed)
    masks = DropoutMasks()  # one stream for all its dropout layers, as torch's global one in the code
    # skip_init: no weights drawn from the global RNG here; they are all drawn from g below. Batch
    # norm starts at weight 1, bias 0 and draws nothing, nor do dropout and pooling.
    made = arch.made(masks)
    model = nn.Sequential(OrderedDict((m.name, m.module) for m in made))
    if arch.is_cnn:
        model.image_shape = arch.image
    g = torch.Generator().manual_seed(seed)
    weighted = [m.module for m in made if m.weighted]
    with torch.no_grad():
        for layer in weighted:  # nn.Linear's and nn.Conv2d's reset_parameters, drawn from g
            nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=g)
            bound = 1 / math.sqrt(layer.weight[0].numel())  # fan-in: inputs, or in-channels × kernel
            nn.init.uniform_(layer.bias, -bound, bound, generator=g)
        for layer in weighted:
            if init.zero_bias:
                layer.bias.fill_(0)
            if init.weight_std is not None:
                layer.weight.normal_(std=init.weight_std, generator=g)
    return model.to(resolve_device(device))


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


def as_input(model: nn.Sequential, images: torch.Tensor) -> torch.Tensor:
    """A batch of images as `model`'s first layer reads them: (B, C, H, W) for a CNN, flattened to
    (B, C·H·W) for an MLP (from (B, 1, 28, 28), (B, 28, 28) or already flat)."""
    shape = getattr(model, "image_shape", None)
    return images.reshape(images.shape[0], *shape) if shape else images.reshape(images.shape[0], -1)


def numbers_per_image(model: nn.Sequential) -> int:
    """The most numbers one image becomes in any layer of `model` (its widest activation)."""
    shape = getattr(model, "image_shape", None)
    sizes = [m.out_features for m in model.modules() if isinstance(m, nn.Linear)]
    if shape is not None:
        h, w = shape[1:]
        sizes += [math.prod(shape)] + [m.out_channels * (h + 2 * m.padding[0]) * (w + 2 * m.padding[1])
                                       for m in model.modules() if isinstance(m, nn.Conv2d)]
    else:
        sizes += [m.in_features for m in model.modules() if isinstance(m, nn.Linear)]
    return max(sizes, default=1)


def logits(model: nn.Sequential, images: torch.Tensor) -> torch.Tensor:
    """Scores before the softmax layer: what training's cross-entropy needs."""
    return model[:-1](as_input(model, images))


def probabilities(model: nn.Sequential, images: torch.Tensor) -> torch.Tensor:
    """The lesson's forward pass: flatten (an MLP), run every layer, softmax; rows sum to 1."""
    return model(as_input(model, images))


WEIGHTED = (nn.Linear, nn.Conv2d, nn.BatchNorm1d, nn.BatchNorm2d)


def parameter_table(model: nn.Sequential) -> list[dict]:
    """One row per layer with parameters (Linear, Conv2d, batch norm): its weight and bias shapes and
    parameter count."""
    rows = []
    for name, layer in model.named_children():
        if isinstance(layer, WEIGHTED):
            rows.append({"layer": name, "weight": tuple(layer.weight.shape), "bias": tuple(layer.bias.shape),
                         "parameters": layer.weight.numel() + layer.bias.numel()})
    return rows
