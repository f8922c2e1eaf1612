"""The shift test: a drawing moved a few pixels each way, and turned a few degrees, as each network
reads it, and each network's probability of the drawn class at every move.

A convolution looks for the same small pattern everywhere and a pool forgets exactly where it was,
so a CNN's answer should survive a small move; an MLP's first layer has one weight per pixel, so a
digit moved off the pixels it learned on reads as another picture. The test measures it rather than
saying it: `shift_test` returns the numbers, `shift_plots` draws them.

Moves are torchvision's affine (`transforms.v2.functional.affine`, bilinear, turning as `rotate`
does: anticlockwise for a positive angle), computed for every move at once with torch's
`affine_grid` and `grid_sample` (tests/test_shift_test.py holds it to torchvision, move by move), on
the image as its data set stores it (8 bits, background 0), which is then normalized as the network
was trained: what comes in from outside the field is background, as in every image it learned from.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mnistlab import network
from mnistlab.data import normalize
from mnistlab.dataset import MNIST, Dataset

SHIFTS = tuple(range(-4, 5))  # pixels, each way: MNIST's digits sit centred, a few pixels off is a new image
ANGLES = tuple(a / 2 for a in range(-30, 31, 5))  # -15° to 15° by 2.5°, anticlockwise positive
BACKGROUND = 0  # the stored images' background (white ink on black; a garment's after its negation)


def moves(shifts=SHIFTS, angles=ANGLES) -> list[tuple[int, int, float]]:
    """(dx, dy, angle) of every image the test shows a network: each shift on a grid (rows dy, columns
    dx, not turned), then each angle (not moved)."""
    return [(dx, dy, 0.0) for dy in shifts for dx in shifts] + [(0, 0, float(a)) for a in angles]


def _thetas(where: list[tuple[float, float, float]], height: int, width: int) -> torch.Tensor:
    """(N, 2, 3): each move as the matrix `affine_grid` takes (output to input, in its -1..1 units):
    torchvision's inverse affine matrix in pixels about the centre, rescaled as its `_affine_grid` does."""
    out = []
    for dx, dy, angle in where:
        r = math.radians(-angle)  # affine turns clockwise for a positive angle; as rotate, the other way
        cos, sin = math.cos(r), math.sin(r)
        m = [cos, sin, -cos * dx - sin * dy, -sin, cos, sin * dx - cos * dy]
        out.append([[m[0], m[1] * height / width, m[2] * 2 / width],
                    [m[3] * width / height, m[4], m[5] * 2 / height]])
    return torch.tensor(out, dtype=torch.float32)


def moved(images: np.ndarray | torch.Tensor, where: list[tuple[float, float, float]]) -> torch.Tensor:
    """Images (B, H, W) uint8 at each move (dx pixels right, dy down, turned angle degrees
    anticlockwise about the centre): (moves, B, H, W) uint8, background where the field had nothing."""
    x = torch.as_tensor(np.asarray(images), dtype=torch.uint8)
    b, h, w = x.shape
    n = len(where)
    grid = F.affine_grid(_thetas(where, h, w), [n, 1, h, w], align_corners=False)
    # The image and a mask of ones, sampled together: as torchvision does, to fill with the background.
    source = torch.stack([x.to(torch.float32), torch.ones(b, h, w)], dim=1)  # (B, 2, H, W)
    out = F.grid_sample(source.repeat(n, 1, 1, 1), grid.repeat_interleave(b, dim=0), mode="bilinear",
                        padding_mode="zeros", align_corners=False)
    image, mask = out[:, 0], out[:, 1]
    return ((image - BACKGROUND) * mask + BACKGROUND).round_().to(torch.uint8).reshape(n, b, h, w)


def moved_batch(images: np.ndarray | torch.Tensor, shifts=SHIFTS, angles=ANGLES) -> torch.Tensor:
    """Images (B, H, W) uint8, as their data set stores them, at every move of `moves`: (moves, B, H, W)."""
    return moved(images, moves(shifts, angles))


@dataclass(frozen=True, eq=False)
class ShiftTest:
    """One network's probability of one class for a drawing at each shift and each angle."""

    label: str  # the network, as the page names it
    target: int  # the class whose probability is measured
    classes: tuple[str, ...]  # the network's data set's class names
    shifts: tuple[int, ...]
    angles: tuple[float, ...]
    by_shift: np.ndarray  # (len(shifts), len(shifts)): rows dy (down positive), columns dx (right positive)
    by_angle: np.ndarray  # (len(angles),)
    answer_shift: np.ndarray  # the network's answer (its most probable class) at each shift, as by_shift
    answer_angle: np.ndarray  # and at each angle

    @property
    def kept_shift(self) -> np.ndarray:
        """At each shift: is `target` still the network's answer?"""
        return self.answer_shift == self.target

    @property
    def kept_angle(self) -> np.ndarray:
        return self.answer_angle == self.target

    @property
    def class_name(self) -> str:
        return self.classes[self.target]

    @property
    def plain(self) -> float:
        """The probability on the drawing as it is (shift 0, 0)."""
        c = self.shifts.index(0)
        return float(self.by_shift[c, c])

    def within(self, pixels: int) -> np.ndarray:
        """The probabilities at the shifts of at most `pixels` each way (a square around the centre)."""
        near = [i for i, s in enumerate(self.shifts) if abs(s) <= pixels]
        return self.by_shift[np.ix_(near, near)]

    def kept_within(self, pixels: int) -> float:
        """The share of shifts of at most `pixels` each way at which the answer is still `target`."""
        near = [i for i, s in enumerate(self.shifts) if abs(s) <= pixels]
        return float(self.kept_shift[np.ix_(near, near)].mean())

    def summary(self) -> str:
        """E.g. "still says 7 at 49 of 81 shifts (mean probability 0.61) and 11 of 11 angles"."""
        return (f"still says {self.class_name} at {int(self.kept_shift.sum())} of {self.kept_shift.size} "
                f"shifts (mean probability {self.by_shift.mean():.2f}) and {int(self.kept_angle.sum())} of "
                f"{self.kept_angle.size} angles (mean {self.by_angle.mean():.2f})")

    def __repr__(self) -> str:
        return f"ShiftTest({self.label!r}, class {self.class_name}: {self.summary()})"


def shift_test(model: nn.Module, image: np.ndarray | torch.Tensor, normalization: str = "lesson",
               label: str = "", target: int | None = None, dataset: Dataset = MNIST,
               shifts=SHIFTS, angles=ANGLES) -> ShiftTest:
    """`model` (in eval mode, as Draw's networks are) on `image` (H, W) uint8, the prepared drawing, at
    every shift and angle. `target`: the class to follow; by default the one the network predicts on
    the drawing as it is."""
    (test,) = shift_tests(model, np.asarray(image)[None], normalization, label,
                          None if target is None else [target], dataset, shifts, angles)
    return test


@torch.no_grad()
def shift_tests(model: nn.Module, images: np.ndarray | torch.Tensor, normalization: str = "lesson",
                label: str = "", targets=None, dataset: Dataset = MNIST, shifts=SHIFTS,
                angles=ANGLES) -> list[ShiftTest]:
    """`shift_test` for each of `images` (B, H, W) uint8 at once: `targets`, one class each (None: each
    image's predicted class)."""
    shifts, angles = tuple(int(s) for s in shifts), tuple(float(a) for a in angles)
    if 0 not in shifts:
        raise ValueError("The shifts must include 0: the drawing as it is.")
    batch = moved_batch(images, shifts, angles)  # (moves, B, H, W)
    weight = next(model.parameters())
    x = normalize(batch.flatten(0, 1), normalization).to(weight.device, weight.dtype)
    ps = network.probabilities(model, x).to("cpu", torch.float64).numpy().reshape(*batch.shape[:2], -1)
    n, c, side = len(shifts) ** 2, shifts.index(0), (len(shifts), len(shifts))
    plain = ps[c * len(shifts) + c]  # (B, classes): each image as it is
    targets = plain.argmax(axis=1) if targets is None else np.asarray(targets, dtype=np.int64)
    if len(targets) != len(plain) or ((targets < 0) | (targets >= ps.shape[2])).any():
        raise ValueError(f"Each image needs one class, from 0 to {ps.shape[2] - 1}; got {list(targets)}.")
    answers = ps.argmax(axis=2)  # (moves, B)
    classes = tuple(map(str, dataset.classes))
    return [ShiftTest(label, int(t), classes, shifts, angles, ps[:n, b, t].reshape(side), ps[n:, b, t],
                      answers[:n, b].reshape(side), answers[n:, b]) for b, t in enumerate(targets)]


def fingerprint(*parts) -> str:
    """A short hash of weights (a model or its state dict), arrays and values: what a page's cache of
    a shift test is keyed by, so two visitors' "Run 1" never share an entry (~1 ms for 250K weights)."""
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        if isinstance(part, nn.Module):
            part = part.state_dict()
        if isinstance(part, dict):
            for k, v in part.items():
                h.update(k.encode())
                h.update(v.detach().to("cpu").contiguous().numpy().tobytes())
        elif isinstance(part, (np.ndarray, torch.Tensor)):
            h.update(np.ascontiguousarray(np.asarray(part)).tobytes())
        else:
            h.update(repr(part).encode())
    return h.hexdigest()
