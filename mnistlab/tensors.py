"""The lesson's network made by hand from tensors: `torch.randn` weights, sigmoid, `torch.mm`."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mnistlab.dataset import MNIST, Dataset


def activation(x: torch.Tensor) -> torch.Tensor:
    """The lesson's sigmoid: 1 / (1 + exp(-x))."""
    return 1 / (1 + torch.exp(-x))


def softmax(x: torch.Tensor) -> torch.Tensor:
    """exp(x) / sum(exp(x)) over dim 1. Subtracting each row's max first changes nothing
    mathematically but keeps exp finite for large scores."""
    e = torch.exp(x - x.max(dim=1, keepdim=True).values)
    return e / torch.sum(e, dim=1).view(-1, 1)


@dataclass(frozen=True, eq=False)
class TensorNetwork:
    """W1, W2, B1, B2 drawn with `torch.randn` in the lesson's order, from a seed: for a data set's
    images (W1 has a row per pixel) and classes (W2 a column per class)."""

    W1: torch.Tensor
    W2: torch.Tensor
    B1: torch.Tensor
    B2: torch.Tensor
    seed: int

    @classmethod
    def random(cls, n_hidden: int = 256, seed: int = 7, dataset: Dataset = MNIST):
        n_input, n_output = dataset.inputs, dataset.n_classes
        g = torch.Generator().manual_seed(seed)  # same numbers as torch.manual_seed(seed)
        W1 = torch.randn(n_input, n_hidden, generator=g)
        W2 = torch.randn(n_hidden, n_output, generator=g)
        B1 = torch.randn((1, n_hidden), generator=g)
        B2 = torch.randn((1, n_output), generator=g)
        return cls(W1, W2, B1, B2, seed)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every tensor of the lesson's forward pass for a batch, by the lesson's names."""
        inputs = images.view(images.shape[0], -1)
        hidden = activation(torch.mm(inputs, self.W1) + self.B1)
        output = activation(torch.mm(hidden, self.W2) + self.B2)
        scores = torch.mm(hidden, self.W2) + self.B2  # part 2: no activation before softmax
        return {"images": images, "inputs": inputs, "W1": self.W1, "B1": self.B1, "hidden": hidden,
                "W2": self.W2, "B2": self.B2, "output": output, "scores": scores,
                "probabilities": softmax(scores)}
