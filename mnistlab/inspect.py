"""What a network's hidden layers do with a batch: activations, saturated and dead units.

A sigmoid or tanh unit is saturated where its local gradient has fallen below 5% of its peak, so
it barely learns from that input; a ReLU unit is dead when it outputs 0 for every image in the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mnistlab.network import ACTIVATIONS

SATURATION = 0.05  # gradient below this fraction of its peak counts as saturated


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
    """Boolean mask of ReLU units (columns) that output 0 for every image (row) of the batch."""
    return (values <= 0).all(dim=0)


@dataclass(frozen=True, eq=False)
class LayerActivations:
    """One hidden layer's outputs over a batch, and how many of them cannot learn much."""

    name: str  # the lesson's layer name, e.g. "relu1"
    activation: str
    values: torch.Tensor  # (batch, width), on the CPU
    share: float  # of activations saturated (sigmoid/tanh), or of units dead (ReLU)

    @property
    def problem(self) -> str:
        return "dead units" if self.activation == "relu" else "saturated"

    def label(self) -> str:
        """E.g. "relu1: 12% dead units" or "sigmoid1: 87% saturated"."""
        return f"{self.name}: {self.share:.0%} {self.problem}"

    def __repr__(self) -> str:
        return f"LayerActivations({self.label()}, {tuple(self.values.shape)})"


def layer_activations(values: torch.Tensor, activation: str, name: str) -> LayerActivations:
    values = values.detach().to("cpu", torch.float32)
    if activation == "relu":
        share = dead_units(values).float().mean().item()
    else:
        share = saturated(values, activation).float().mean().item()
    return LayerActivations(name, activation, values, share)


@torch.no_grad()
def hidden_activations(model: nn.Sequential, images: torch.Tensor) -> list[LayerActivations]:
    """Run a batch through `model` (built by `network.build`) and keep every hidden layer's output."""
    device = next(model.parameters()).device
    x = images.reshape(images.shape[0], -1).to(device)
    layers = []
    for name, module in model.named_children():
        x = module(x)
        for act, cls in ACTIVATIONS.items():
            if type(module) is cls and name != "softmax":
                layers.append(layer_activations(x, act, name))
    return layers
