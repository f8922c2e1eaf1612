"""What the training loop trains (`Trainee`): `k` networks that read the same batches. `Single` is one
`nn.Sequential`; `stacked.Stack` is K of them. The loop and the evaluation read either alike."""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from mnistlab import network


class Trainee(Protocol):
    """What the loop trains: `k` networks that read the same batches (1 for one nn.Sequential)."""

    k: int

    def parameters(self) -> list[torch.Tensor]: ...

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """A batch of images (B, 1, 28, 28) to scores: (B, classes) for one network, (K, B, classes) for K."""

    def losses(self, scores: torch.Tensor, labels: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """Cross-entropy: a 0-dim tensor for one network, (K,) for K."""

    def train(self, mode: bool = True): ...


EVAL_NUMBERS = 25_000_000  # numbers in the largest activation of one evaluation batch: 100 MB


class Single:
    """One `nn.Sequential` (built by `network.build`) as the loop trains it: cross-entropy on the
    scores before the softmax layer, which is there to show probabilities. Cross-entropy on logits
    (log-softmax inside) is the numerically stable form; the log of softmax outputs would underflow
    for confident wrong answers."""

    k = 1

    def __init__(self, model: nn.Sequential):
        self.model = model
        self.body = model[:-1]  # network.logits' layers, sliced once instead of every step
        # images an evaluation reads at once: a CNN's feature maps of 10,000 images would take GBs
        self.eval_batch = max(1, EVAL_NUMBERS // network.numbers_per_image(model))

    def parameters(self) -> list[torch.Tensor]:
        return list(self.model.parameters())

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(network.as_input(self.model, images))

    def losses(self, scores: torch.Tensor, labels: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        return F.cross_entropy(scores, labels, reduction=reduction)

    def train(self, mode: bool = True):
        self.model.train(mode)
        return self

    def state(self) -> dict[str, torch.Tensor]:
        """A copy of its weights (and any buffers), to come back to (early stopping)."""
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(state)

    def seed_dropout(self, seed: int) -> None:
        network.seed_dropout(self.model, seed)

    @property
    def batch_norm(self) -> bool:
        return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in self.model.modules())
