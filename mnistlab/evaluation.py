"""The one evaluation: `evaluate_all` scores a `Trainee` (one network or a stack) on a split, in eval
mode; `evaluate` is its one-network form with every mistake kept. What it gives is an `Evaluation`."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mnistlab import network
from mnistlab.data import Split
from mnistlab.trainee import Single


@dataclass
class Evaluation:
    """A trained network on one split: what a user checks after training."""

    loss: float
    accuracy: float
    per_class_accuracy: list[float]
    confusion: torch.Tensor  # (classes, classes) int64 counts; row = true class, column = predicted
    misclassified: torch.Tensor | None = None  # (K,) indices into the split
    misclassified_probabilities: torch.Tensor | None = None  # (K, classes), the network's probabilities
    split: str = "test"  # the role of the split it was scored on: train, validation or test

    @property
    def n_misclassified(self) -> int:
        return int(self.confusion.sum() - self.confusion.diagonal().sum())

    def metrics(self) -> dict:
        """The numbers worth saving with a model."""
        return {"test_loss": self.loss, "test_accuracy": self.accuracy,
                "per_class_accuracy": self.per_class_accuracy}


@torch.no_grad()
def evaluate_all(trainee, split: Split, normalization: str = "lesson", batch_size: int = 10_000,
                 mistakes: bool = False, inputs: torch.Tensor | None = None) -> list[Evaluation]:
    """Each of `trainee`'s networks on `split` (its images normalized as they were trained, read once
    for all of them), in eval mode: loss, accuracy, per-class accuracy, confusion matrix, and with
    `mistakes` every misclassified image with its probabilities (one network only). `inputs`: the
    split's images already normalized on the device (the loop's validation)."""
    if isinstance(trainee, nn.Module):
        trainee = Single(trainee)
    trainee.train(False)
    k, c = trainee.k, split.dataset.n_classes
    batch_size = min(batch_size, getattr(trainee, "eval_batch", batch_size))
    device = trainee.parameters()[0].device
    loss = torch.zeros(k, dtype=torch.float64)
    confusion = torch.zeros(k * c * c, dtype=torch.long)  # per network: true * c + predicted
    offsets = torch.arange(k).unsqueeze(1) * c * c
    probs = []
    for lo in range(0, len(split), batch_size):
        images = (split.normalized(slice(lo, lo + batch_size), device, normalization)
                  if inputs is None else inputs[lo:lo + batch_size])
        labels = split.labels[lo:lo + batch_size].to(device)
        scores = trainee.logits(images)  # (n, c) or (K, n, c)
        loss += trainee.losses(scores, labels, "sum").reshape(k).cpu().double()
        if mistakes:
            probs.append(scores.softmax(-1).cpu())
        cells = (labels * c + scores.argmax(-1)).cpu().reshape(k, -1) + offsets
        confusion += torch.bincount(cells.flatten(), minlength=k * c * c)
    confusion = confusion.view(k, c, c)
    right = confusion.diagonal(dim1=1, dim2=2)
    per_class = right / confusion.sum(2).clamp(min=1)
    accuracy = right.sum(1) / len(split)
    out = [Evaluation(loss=loss[m].item() / len(split), accuracy=accuracy[m].item(),
                      per_class_accuracy=per_class[m].tolist(), confusion=confusion[m], split=split.role)
           for m in range(k)]
    if mistakes:
        probabilities = torch.cat(probs)
        wrong = (probabilities.argmax(1) != split.labels).nonzero().flatten()
        out[0].misclassified, out[0].misclassified_probabilities = wrong, probabilities[wrong]
    return out


def evaluate(model: nn.Sequential, split: Split, device=None, batch_size: int = 10_000,
             normalization: str = "lesson") -> Evaluation:
    """One network on `split`, with every mistake (see `evaluate_all`)."""
    if device is not None:
        model.to(network.resolve_device(device))
    return evaluate_all(model, split, normalization, batch_size, mistakes=True)[0]
