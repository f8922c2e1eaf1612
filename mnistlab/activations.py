"""The activation functions a hidden layer can use, and what they do with a batch.

`ACTIVATIONS` is the one table of them: the module `network.build` puts in the `nn.Sequential`, the
function a stack applies, how generated code writes each, its colour in figures, and what goes wrong
with it (a sigmoid or tanh unit saturates where its local gradient has fallen below 5% of its peak,
so it barely learns from that input; a ReLU unit is dead when it outputs 0 for every image of a batch).
Adding an activation is one entry here. The table names torch's module and function; torch itself
is imported only where they are used (a layer's shape, counts and code, and the command line's
checks, need none of it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from torch import nn

SATURATION = 0.05  # gradient below this fraction of its peak counts as saturated


@dataclass(frozen=True)
class Activation:
    """One activation function, as every part of the app names and draws it."""

    name: str  # as the lesson names its layers: relu1, sigmoid2, ...; and torch's function (torch.relu)
    module_name: str  # its module in torch.nn (ReLU)
    code_module: str  # how generated code writes the module
    code_function: str  # and the function, in a forward()
    color: str  # in the sweep's figures
    problem: str  # "saturated" or "dead": what the learning dynamics watch for

    def __repr__(self) -> str:
        return f"Activation({self.name})"

    @property
    def module(self) -> type[nn.Module]:
        """Its module, as the nn.Sequential holds it."""
        from torch import nn

        return getattr(nn, self.module_name)

    @property
    def function(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """The same, on a tensor (a stack's slice)."""
        import torch

        return getattr(torch, self.name)


ACTIVATIONS: dict[str, Activation] = {a.name: a for a in (
    Activation("sigmoid", "Sigmoid", "nn.Sigmoid()", "torch.sigmoid", "#e45756", "saturated"),
    Activation("tanh", "Tanh", "nn.Tanh()", "torch.tanh", "#54a24b", "saturated"),
    Activation("relu", "ReLU", "nn.ReLU()", "F.relu", "#4c78a8", "dead"),
)}


def of_module(module: nn.Module) -> str | None:
    """The name of the activation `module` is (e.g. "relu" for an nn.ReLU), None when it is none."""
    for a in ACTIVATIONS.values():
        if type(module) is a.module:
            return a.name
    return None


def saturated(values: torch.Tensor, activation: str) -> torch.Tensor:
    """Boolean mask of sigmoid/tanh outputs whose local gradient is below SATURATION of its peak."""
    if activation == "sigmoid":
        gradient = values * (1 - values) / 0.25
    elif activation == "tanh":
        gradient = 1 - values**2
    else:
        raise ValueError(f"Saturation is defined for sigmoid and tanh, not {activation!r}.")
    return gradient < SATURATION


def dead_units(values: torch.Tensor) -> torch.Tensor:
    """Boolean mask of ReLU units (columns) that output 0 for every image (row) of the batch; of a
    convolution's (B, C, H, W) outputs, its maps (C) that are 0 everywhere for every image."""
    dead = (values <= 0).all(dim=0)
    return dead.flatten(1).all(1) if values.dim() == 4 else dead


@dataclass(frozen=True, eq=False)
class LayerActivations:
    """One hidden layer's outputs over a batch, and how many of them cannot learn much."""

    name: str  # the lesson's layer name, e.g. "relu1"
    activation: str
    values: torch.Tensor  # (batch, width), on the CPU
    share: float  # of activations saturated (sigmoid/tanh), or of units dead (ReLU)

    @property
    def problem(self) -> str:
        return "dead units" if ACTIVATIONS[self.activation].problem == "dead" else "saturated"

    def label(self) -> str:
        """E.g. "relu1: 12% dead units" or "sigmoid1: 87% saturated"."""
        return f"{self.name}: {self.share:.0%} {self.problem}"

    def __repr__(self) -> str:
        return f"LayerActivations({self.label()}, {tuple(self.values.shape)})"


def layer_activations(values: torch.Tensor, activation: str, name: str) -> LayerActivations:
    import torch

    values = values.detach().to("cpu", torch.float32)
    if ACTIVATIONS[activation].problem == "dead":
        share = dead_units(values).float().mean().item()
    else:
        share = saturated(values, activation).float().mean().item()
    return LayerActivations(name, activation, values, share)


def hidden_activations(model: nn.Sequential, images: torch.Tensor) -> list[LayerActivations]:
    """Run a batch through `model` (built by `network.build`) and keep every hidden layer's output."""
    import torch

    device = next(model.parameters()).device
    x = images.reshape(images.shape[0], -1).to(device)
    layers = []
    with torch.no_grad():
        for name, module in model.named_children():
            x = module(x)
            act = of_module(module)
            if act is not None:
                layers.append(layer_activations(x, act, name))
    return layers
