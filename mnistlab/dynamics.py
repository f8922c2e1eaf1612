"""Each layer's learning dynamics, recorded while a network trains, and snapshots for a replay.

The training loop calls a `Recorder` (see `train.train(..., recorder=)`); what it gathers is a
`Dynamics`: plain lists, dicts and CPU tensors, so it pickles (a Run crossing Ray or kept in a
session) and writes as JSON (`python -m mnistlab train --history`). Pages only draw it.

Per Linear layer, every few steps (densely at first, where most of the change happens):
- the update-to-data ratio, log10(std(ΔW) / std(W)) for the step's actual change ΔW: about -3 is
  healthy; far below, the layer barely learns; far above, training is unstable;
- the gradient's size against the weight's, log10(std(∂loss/∂W) / std(W)).
Per hidden activation, on a fixed probe batch of validation images: the share saturated (sigmoid, tanh)
or dead (ReLU), as `activations` defines them for Build's Activations tab. And the probe batch's loss,
whose value at step 0 should be near -ln(1/classes): equal guesses (MNIST's ten: 2.303).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from mnistlab import activations, network
from mnistlab.activations import ACTIVATIONS, of_module
from mnistlab.dataset import MNIST, Dataset


def expected_init_loss(n_classes: int) -> float:
    """The cross-entropy of equal guesses between `n_classes` classes: -ln(1/n)."""
    return -math.log(1 / n_classes)


EXPECTED_INIT_LOSS = expected_init_loss(MNIST.n_classes)  # ten equal guesses: 2.303
HEALTHY_UPDATE = -3.0  # log10 of the update-to-data ratio the references aim for (about 1e-3)
PROBE_IMAGES = 256  # the probe split's first images (runs.run's: validation's)
TEMPLATE_UNITS = 16  # fc1 units kept per snapshot for the replay
HISTOGRAM_BINS = 40
# Rows: densely at first (where most of the change happens), then every RECORD_EVERY steps, or
# sparser still for very long runs, so a run keeps at most MAX_ROWS rows.
DENSE_STEPS = (0, 1, 2, 3, 5, 8, 12, 20, 30, 50, 75, 100, 150, 200)
RECORD_EVERY = 100  # with the dense start, ~23 rows in a first epoch of 938 steps: ~5% of its time
MAX_ROWS = 1000
# Snapshots: the start, these fractions of the first epoch, and every epoch's end.
FIRST_EPOCH_SNAPSHOTS = (0.02, 0.05, 0.1, 0.25, 0.5)
CHANCE_MARGIN = 1.5  # a run ending at or below this times chance (MNIST's: 10%, so 15%) learned nothing
NUMBER_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
RATIOS = ("update_ratio_log10", "grad_ratio_log10")  # per Linear layer, in a row


def record_steps(total_steps: int) -> list[int]:
    """The steps (updates done before it) at which a row is recorded, over a run of `total_steps`."""
    every = max(RECORD_EVERY, math.ceil(total_steps / (MAX_ROWS - len(DENSE_STEPS))))
    steps = {s for s in DENSE_STEPS if s < total_steps}
    steps |= set(range(every, total_steps, every))
    return sorted(steps)


def snapshot_steps(steps_per_epoch: int, epochs: int) -> list[int]:
    """The steps after which the replay keeps a snapshot: 0 (the start), early in the first epoch,
    and each epoch's end."""
    early = {round(f * steps_per_epoch) for f in FIRST_EPOCH_SNAPSHOTS} & set(range(1, steps_per_epoch))
    ends = {e * steps_per_epoch for e in range(1, epochs + 1)}
    return sorted({0} | early | ends)


def replay_digits(labels: torch.Tensor, n_classes: int = MNIST.n_classes) -> list[int]:
    """Indices of the first image of each class (each digit 0-9 for MNIST; of those present) in the
    probe split: the fixed row the replay predicts."""
    return [int(hits[0]) for d in range(n_classes) if len(hits := (labels == d).nonzero())]


def _count(n: int) -> str:
    """A count as a sentence writes it: "ten", "12"."""
    return NUMBER_WORDS[n] if 0 <= n < len(NUMBER_WORDS) else str(n)


def chance_accuracy(n_classes: int) -> float:
    """What guessing gives: one class in `n_classes`."""
    return 1 / n_classes


@dataclass
class Snapshot:
    """The network at one step: fc1's first units, every layer's weight histogram, and predictions."""

    step: int
    templates: torch.Tensor  # float32: the first weighted layer's first TEMPLATE_UNITS units: fc1's
    # rows (units, inputs), a CNN's conv1 filters (units, channels, kernel, kernel)
    histograms: dict[str, tuple[float, float, torch.Tensor]]  # layer: (low edge, high edge, counts)
    probabilities: torch.Tensor  # (classes, classes): the replay images' class probabilities

    def nbytes(self) -> int:
        counts = sum(c.numel() * c.element_size() for _, _, c in self.histograms.values())
        return self.templates.numel() * 4 + self.probabilities.numel() * 4 + counts


@dataclass(eq=False)  # compared and hashed by identity: a page may keep a figure per run's Dynamics
class Dynamics:
    """What a Recorder gathered over one run: a table of per-layer numbers, and snapshots.

    A row of `table` per recorded step (`steps`); its columns are `columns`: (layer, what) pairs,
    e.g. ("fc1", "update_ratio_log10"), ("relu1", "dead"), ("probe", "loss"). Compact on purpose:
    a session keeps several runs (see `memory_bound`).
    """

    layers: list[str]  # layers with weights: (conv1, ...,) fc1, ..., output
    activations: dict[str, str]  # hidden activation name (e.g. relu1): "dead" or "saturated"
    steps_per_epoch: int
    columns: list[tuple[str, str]]
    steps: list[int] = field(default_factory=list)
    table: torch.Tensor = field(default_factory=lambda: torch.zeros(0))
    snapshots: list[Snapshot] = field(default_factory=list)
    replay_digits: list[int] = field(default_factory=list)  # indices in the probe split, one per class
    replay_images: torch.Tensor | None = None  # those images, uint8 (n, height, width): what the replay shows
    dataset: Dataset = MNIST  # what the probe split's images are: their shape, their classes

    def column(self, layer: str, key: str) -> list[float]:
        if not self.steps:
            return []
        return self.table[:, self.columns.index((layer, key))].tolist()

    def series(self, layer: str, key: str) -> tuple[list[float], list[float]]:
        """(epochs, values) of one number, e.g. ("fc1", "update_ratio_log10") or ("relu1", "dead")."""
        return [s / self.steps_per_epoch for s in self.steps], self.column(layer, key)

    def all_series(self) -> dict[tuple[str, str], tuple[list[float], list[float]]]:
        """{(layer, what): (epochs, values)} for every column: what `training_plots.layer_dynamics` draws."""
        return {c: self.series(*c) for c in self.columns}

    @property
    def expected_init_loss(self) -> float:
        """The loss of equal guesses between its data set's classes: what `init_loss` should be near."""
        return expected_init_loss(self.dataset.n_classes)

    @property
    def init_loss(self) -> float:
        """The probe batch's loss before any update (step 0)."""
        return self.table[0, self.columns.index(("probe", "loss"))].item() if self.steps else math.nan

    def first(self, layer: str, key: str) -> float:
        return self.column(layer, key)[0] if self.steps else math.nan

    def last(self, layer: str, key: str) -> float:
        return self.column(layer, key)[-1] if self.steps else math.nan

    def rows(self) -> list[dict]:
        """One dict per recorded step: {"step", "epoch", "loss", "fc1": {"update_ratio_log10": ...,
        "grad_ratio_log10": ...}, "relu1": {"dead": ...}, ...}, as the CLI's JSON writes them."""
        return as_rows(self.steps, self.steps_per_epoch, self.columns, self.table.tolist())

    def nbytes(self) -> int:
        """What this holds in memory: its table and snapshots' tensors (the lists and names are small)."""
        return self.table.numel() * 4 + 8 * len(self.steps) + sum(s.nbytes() for s in self.snapshots)

    def to_json(self) -> dict:
        """The rows and the step-0 check as JSON-ready values (non-finite numbers become null)."""
        return {"expected_init_loss": self.expected_init_loss, "init_loss": json_safe(self.init_loss),
                "healthy_update_ratio_log10": HEALTHY_UPDATE, "probe_images": PROBE_IMAGES,
                "layers": self.layers, "activations": self.activations,
                "rows": json_safe(self.rows())}


def as_rows(steps, steps_per_epoch: int, columns, values) -> list[dict]:
    """Table rows as dicts (see Dynamics.rows)."""
    out = []
    for step, vals in zip(steps, values):
        row = {"step": step, "epoch": step / steps_per_epoch}
        for (layer, key), v in zip(columns, vals):
            if layer == "probe":
                row[key] = v
            else:
                row.setdefault(layer, {})[key] = v
        out.append(row)
    return out


def live_series(reports) -> dict[tuple[str, str], tuple[list[float], list[float]]]:
    """{(layer, what): (epochs, values)} from a job's progress reports so far (their `dynamics` rows)."""
    series: dict = {}
    for p in reports:
        for row in p.dynamics:
            for layer, values in row.items():
                if layer == "loss":
                    layer, values = "probe", {"loss": values}
                if isinstance(values, dict):
                    for key, v in values.items():
                        x, y = series.setdefault((layer, key), ([], []))
                        x.append(row["epoch"])
                        y.append(v)
    return series


def init_loss_note(loss: float, n_classes: int = MNIST.n_classes) -> str:
    """The "verify loss at init" check in words, e.g. for 2.31 on MNIST: near the 2.303 of ten equal
    guesses."""
    expected = expected_init_loss(n_classes)
    text = (f"Loss at step 0 on the probe images: **{loss:.3f}**; {_count(n_classes)} equal guesses give "
            f"−ln(1/{n_classes}) = {expected:.3f}")
    if not math.isfinite(loss):
        return text + ". It is not even a finite number: the network's outputs overflow from the start."
    if abs(loss - expected) <= 0.1 * expected:
        return text + ": the network starts unsure, as it should."
    if loss > expected:
        return text + (": it starts confidently wrong, a sign that the initial weights are too large "
                       "(the scores spread far apart before it has learned anything).")
    return text + "."


def dead_units_note(kinds) -> str:
    """What a dead-unit share means, for a run whose hidden activations are `kinds` ("dead" for ReLU,
    "saturated"); "" without a ReLU layer. The numbers were measured for the lesson's network, seeds
    0-5, and are held by tests/test_dead_units_note.py."""
    if "dead" not in set(kinds):
        return ""
    return (f"Dead here means a ReLU unit that outputs 0 for every one of the {PROBE_IMAGES} probe images, "
            "so they give it no gradient. Some are normal: on any one image about half of relu1's units "
            "output 0, but rarely the same half, so at step 0 only about 5% are dead; with the lesson's "
            "inputs in [−1, 1] (the background is −1) Adam's first ten or so steps take relu1 to 30-45% "
            "dead, where it stays while the other units learn (about 97% test accuracy after 5 epochs); "
            "with MNIST's own normalization, 0-12%. Worry when a layer's share keeps climbing towards "
            "100%: a learning rate far too large does that (0.03 takes relu1 past 90% within 100 steps).")


def memory_bound(n_layers: int, epochs: int, dataset: Dataset = MNIST) -> int:
    """The most bytes a run's Dynamics on `dataset` holds in tensors, whatever its batch size:
    MAX_ROWS rows and one snapshot at the start, FIRST_EPOCH_SNAPSHOTS and each epoch's end."""
    columns = 2 * n_layers + (n_layers - 1) + 1
    snapshots = 1 + len(FIRST_EPOCH_SNAPSHOTS) + epochs
    per_snapshot = (TEMPLATE_UNITS * dataset.inputs * 4 + dataset.n_classes ** 2 * 4
                    + n_layers * 8 * HISTOGRAM_BINS)
    return MAX_ROWS * (4 * columns + 8) + snapshots * per_snapshot


def json_safe(value):
    """`value` with every non-finite float (in dicts and lists too) as None, which JSON writes as null."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class Recorder:
    """Gathers a run's dynamics as `train.train` goes; `result` is the `Dynamics`.

    The loop calls `start` once, then for each step `due(step)`: when true, `before_step` between
    backward and the optimizer's step and `after_step` after it; `snapshot_due`/`snapshot` after a
    step, `flush` at each progress report (the new rows, for a live page), `finish` at the end.
    Numbers stay on the device until `flush`, so recording costs a few small ops, not a sync.
    """

    def __init__(self, probe_split, probe_images: int = PROBE_IMAGES):
        """`probe_split`: the images it probes (runs.run gives it the validation split)."""
        self.probe_split, self.probe_images = probe_split, probe_images
        self.result: Dynamics | None = None

    def start(self, model: nn.Sequential, normalization: str, steps_per_epoch: int, epochs: int) -> None:
        device = next(model.parameters()).device
        split = self.probe_split
        self.probe = network.as_input(model, split.normalized(slice(0, self.probe_images), device,
                                                              normalization))
        self.probe_labels = split.labels[:self.probe_images].to(device)
        digits = replay_digits(split.labels, split.dataset.n_classes)
        self.digits = network.as_input(model, split.normalized(digits, device, normalization))
        # the layers with weights: Linear, and a CNN's Conv2d (its filters)
        self.linears = {n: m for n, m in model.named_children() if isinstance(m, (nn.Linear, nn.Conv2d))}
        self.hidden = {n: of_module(m) for n, m in model.named_children() if of_module(m) is not None}
        self.model = model
        self.body = model[:-1]
        self.steps_per_epoch = steps_per_epoch
        self._due = set(record_steps(steps_per_epoch * epochs))
        self._snapshots = set(snapshot_steps(steps_per_epoch, epochs))
        columns = [(n, key) for n in self.linears for key in RATIOS]
        problems = {n: ACTIVATIONS[a].problem for n, a in self.hidden.items()}
        columns += [("probe", "loss")] + list(problems.items())
        self.result = Dynamics(list(self.linears), problems,
                               steps_per_epoch, columns, replay_digits=digits,
                               replay_images=split.images[digits].clone(), dataset=split.dataset)
        self._pending: list[tuple[int, torch.Tensor]] = []
        self._old: list[torch.Tensor] = []
        self.snapshot(0)

    def due(self, step: int) -> bool:
        """Whether the update about to be made after `step` updates is recorded."""
        return step in self._due

    @torch.no_grad()
    def before_step(self) -> None:
        """After backward, before the optimizer moves the weights: keep them and their gradients'
        size, and read the probe batch through them (a row's shares and loss are at its step)."""
        self._old = [m.weight.detach().clone() for m in self.linears.values()]
        self._grads = [m.weight.grad.std() for m in self.linears.values()]
        self._probed = self._probe()

    @torch.no_grad()
    def after_step(self, step: int) -> None:
        """After the optimizer's step: the step's update and gradient against the weights it started from."""
        values = []
        for old, grad, m in zip(self._old, self._grads, self.linears.values()):
            w_std = old.std()
            values += [(m.weight - old).std() / w_std, grad / w_std]
        self._pending.append((step, torch.cat([torch.stack(values).log10(), self._probed])))
        self._old = []

    def _probe(self) -> torch.Tensor:
        """The probe batch through the network as in eval mode: it draws no dropout mask and leaves
        batch norm's running statistics as they were, so recording changes nothing trained."""
        x, shares = self.probe, []
        for name, module in self.model.named_children():
            if name == "softmax":
                break
            x = network.as_evaluated(module, x)
            if name in self.hidden:
                act = self.hidden[name]
                dead = ACTIVATIONS[act].problem == "dead"
                mask = activations.dead_units(x) if dead else activations.saturated(x, act)
                shares.append(mask.float().mean())
        loss = F.cross_entropy(x, self.probe_labels)
        return torch.stack([loss, *shares])

    def snapshot_due(self, step: int) -> bool:
        return step in self._snapshots

    @torch.no_grad()
    def snapshot(self, step: int) -> None:
        hist = {}
        for name, m in self.linears.items():
            w = m.weight.detach().flatten()
            lo, hi = (v.item() for v in torch.aminmax(w))
            if not (math.isfinite(lo) and math.isfinite(hi)):  # diverged: count the finite ones
                w = w[torch.isfinite(w)]
                lo, hi = (v.item() for v in torch.aminmax(w)) if len(w) else (math.nan, math.nan)
            if not len(w):
                hist[name] = (math.nan, math.nan, torch.zeros(0, dtype=torch.int32))
                continue
            if lo == hi:
                lo, hi = lo - 1e-6, hi + 1e-6
            hist[name] = (lo, hi, torch.histc(w, HISTOGRAM_BINS, lo, hi).to("cpu", torch.int32))
        fc1 = self.linears[self.result.layers[0]].weight
        with network.evaluating(self.model):  # the loop's own thread: no one else runs it meanwhile
            probs = self.body(self.digits).softmax(1)
        self.result.snapshots.append(Snapshot(
            step, fc1[:TEMPLATE_UNITS].detach().to("cpu", torch.float32, copy=True), hist,
            probs.detach().to("cpu", torch.float32)))

    @torch.no_grad()
    def flush(self) -> list[dict]:
        """The rows recorded since the last flush, as dicts (moved off the device in one go)."""
        if not self._pending:
            return []
        steps = [s for s, _ in self._pending]
        new = torch.stack([v for _, v in self._pending]).to("cpu", torch.float32)
        self._pending = []
        d = self.result
        d.steps += steps
        d.table = torch.cat([d.table.reshape(-1, new.shape[1]), new])
        return as_rows(steps, d.steps_per_epoch, d.columns, new.tolist())

    def finish(self, step: int) -> Dynamics:
        """At the end (or an early stop): the last rows, and a last snapshot of the weights as trained."""
        self.flush()
        if not self.result.snapshots or self.result.snapshots[-1].step != step:
            self.snapshot(step)
        self.model = self.body = None  # the Dynamics must not hold the network
        return self.result


# -- what the numbers say ----------------------------------------------------------------------------

def _finite_values(values) -> list[float]:
    return [v for v in values if math.isfinite(v)]


def _over_half(shares: dict[str, float]) -> str:
    """E.g. "relu1 99%, relu2 77%": the layers with more than half their units saturated or dead."""
    return ", ".join(f"{n} {s:.0%}" for n, s in shares.items() if math.isfinite(s) and s > 0.5)


def _causes(dyn: Dynamics, lr: float | None) -> list[str]:
    """What the recorded dynamics point at, most telling first."""
    causes = []
    inputs = dyn.dataset.inputs
    updates = _finite_values(v for n in dyn.layers for v in dyn.column(n, "update_ratio_log10"))
    lr_text = f" ({lr:g})" if lr is not None else ""
    if updates and max(updates) > HEALTHY_UPDATE + 1.5:
        causes.append(f"The update ratios reached {10 ** max(updates):.2g} (10^{max(updates):.1f}), far "
                      f"above the healthy 0.001 (10^-3): each step changed the weights by a large part of "
                      f"their size. The learning rate{lr_text} is too high; try one 10 to 100 times smaller.")
    saturated = _over_half({n: dyn.first(n, k) for n, k in dyn.activations.items() if k == "saturated"})
    if saturated:
        causes.append(f"The activations were saturated from the start ({saturated} of the probe images' "
                      f"activations), so their gradients were near zero: the init's std is too large. Try "
                      f"PyTorch's default init, or a std near 1/√{inputs} ≈ {inputs ** -0.5:.3f} for fc1 "
                      f"(e.g. 0.02 or 0.05).")
    dead = _over_half({n: dyn.last(n, k) for n, k in dyn.activations.items() if k == "dead"})
    if dead:
        causes.append(f"Most ReLU units ended dead ({dead} output 0 for every probe image): a large "
                      f"update pushed them below zero for good. Lower the learning rate.")
    if updates and max(updates) < HEALTHY_UPDATE - 2 and not causes:
        causes.append(f"The update ratios stayed below {10 ** max(updates):.1g} (10^{max(updates):.1f}), far "
                      f"under 0.001 (10^-3): the weights barely moved. The learning rate{lr_text} is too "
                      f"small, or the gradients vanish on the way back (look at the saturated shares).")
    expected = dyn.expected_init_loss
    if math.isfinite(dyn.init_loss) and dyn.init_loss > 2 * expected:
        causes.append(f"The loss at step 0 was {dyn.init_loss:.1f}, against {expected:.3f} for "
                      f"{_count(dyn.dataset.n_classes)} equal guesses: the network started confidently "
                      f"wrong, a sign of initial weights that are too large.")
    return causes


def diagnosis(dyn: Dynamics | None, losses: list[float], accuracy: float,
              lr: float | None = None, dataset: Dataset | None = None) -> str | None:
    """A plain-words verdict for a run that failed (test accuracy at chance, or a loss that stopped
    being finite) with the likely cause the dynamics show; None for a run that learned. Chance is
    `dataset`'s (by default the dynamics', else MNIST's)."""
    dataset = dataset or (dyn.dataset if dyn is not None else MNIST)
    chance = chance_accuracy(dataset.n_classes)
    bad_step = next((i for i, v in enumerate(losses) if not math.isfinite(v)), None)
    if bad_step is None and accuracy > CHANCE_MARGIN / dataset.n_classes:
        return None
    if bad_step is not None:
        head = (f"Training diverged: the loss stopped being a finite number at step {bad_step + 1:,}, and "
                f"the network ends at {accuracy:.0%} test accuracy (chance is {chance:.0%}).")
    else:
        head = (f"This run ends at chance accuracy ({accuracy:.0%} on the test set; "
                f"{_count(dataset.n_classes)} guesses give {chance:.0%}): the network learned nothing "
                f"useful.")
    causes = _causes(dyn, lr) if dyn is not None and dyn.steps else []
    if dyn is None:
        causes.append("Its learning dynamics were not recorded, so they cannot say why.")
    elif not causes:
        causes.append("The dynamics show no single cause; compare its update ratios and activation "
                      "shares with a run that learned.")
    return " ".join([head, *causes])
