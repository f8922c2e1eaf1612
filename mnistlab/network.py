"""Networks made: a `Network` (architecture.py: its list of layers, its `Init` and the weights' seed)
built into the lesson's named `nn.Sequential`, and what the app asks of one. The values themselves
need no torch and live in architecture.py; their names are here too, where callers find them."""

from __future__ import annotations

import math
from collections import OrderedDict
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from mnistlab.architecture import (  # noqa: F401 - the values and caps: where callers find them
    INPUTS,
    MAX_HIDDEN_LAYERS,
    MAX_INPUTS,
    MAX_MACS,
    MAX_PARAMETERS,
    OUTPUTS,
    Architecture,
    HasNetwork,
    Init,
    Network,
)
from mnistlab.devices import available_devices, resolve_device  # noqa: F401 - where callers find them
from mnistlab.dropout import Dropout, DropoutMasks  # noqa: F401 - where callers find them
from mnistlab.layers import MAX_CONV_LAYERS, MAX_DROPOUT, MAX_WIDTH  # noqa: F401
from mnistlab.parse import MAX_SEED, check_seed  # noqa: F401 - where callers find them


class HasWeights(HasNetwork):
    """For what holds a network's trained weights too (a SavedModel; a Run): the network they make."""

    state: dict[str, torch.Tensor]  # named as in the network

    def model(self, device="cpu") -> nn.Sequential:
        """The network, rebuilt from its architecture and loaded with its weights, in eval mode."""
        model = build_network(self.network, device)
        model.load_state_dict(self.state)
        return model.eval()

    def predictor(self) -> nn.Sequential:
        """`model()` on the CPU, built once for this object and kept: for predictions only (it stays in
        eval mode and is never trained), so every rerun and visitor reading these weights shares it
        rather than building the network and loading its weights again (Draw, on every stroke)."""
        kept = self.__dict__.get("_predictor")
        if kept is None:
            kept = self.__dict__["_predictor"] = self.model()
        return kept


def state_shapes(arch: Architecture) -> dict[str, tuple[int, ...]]:
    """Every tensor a network of `arch` holds (weights, biases, batch norm's statistics), by its
    state_dict name, with its shape; nothing drawn or allocated."""
    with torch.device("meta"):
        model = nn.Sequential(OrderedDict((m.name, m.module) for m in arch.made(DropoutMasks())))
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def build(arch: Architecture, init: Init = Init(), seed: int = 0,  # noqa: B008 - a frozen value
          device="cpu") -> nn.Sequential:
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


def build_network(net: Network, device="cpu") -> nn.Sequential:
    """`build` of a `Network`'s architecture, init and seed."""
    return build(net.arch, net.init, net.seed, device)


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
