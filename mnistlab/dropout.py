"""Dropout that draws its masks from its network's own generator (`DropoutMasks`), never torch's
global one: the torch half of a layer row's dropout (`layers` describes it, this makes it)."""

from __future__ import annotations

import torch
from torch import nn


class DropoutMasks:
    """Where a network's dropout layers draw their masks: one private generator, seeded, shared by
    its layers in the order they run; never torch's global generator, which every visitor's thread
    shares. Seeded with s, the masks are those of `nn.Dropout` after `torch.manual_seed(s)` on a CPU
    (what the generated training code does); `network.seed_dropout` reseeds it (the loop does, each run)."""

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

    def dropout(self, p: float) -> Dropout:
        """A dropout layer drawing from these masks."""
        return Dropout(p, self)

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
