"""What the training loop reports while it trains (`Progress`, each validation `Check`) and what it
keeps once done (`History`): the curves every page and the CLI draw, live and afterwards."""

from __future__ import annotations

from dataclasses import dataclass, field

REPORT_EVERY = 20  # steps between progress reports: often enough for a live curve, cheap enough


@dataclass(frozen=True)
class Check:
    """Validation scored once while training: after `step` steps, on `images` validation images (all
    of them at each epoch's end; within an epoch the first 1/(2 × evaluations), to stay cheap).
    A stack's: its members' mean."""

    step: int
    loss: float
    accuracy: float
    images: int


@dataclass(frozen=True)
class Progress:
    """What a progress report shows: where training is, and how it is doing lately."""

    step: int  # steps done so far, over all epochs
    total_steps: int
    epoch: int  # 1-based epoch in progress (or just finished)
    epochs: int
    loss: float  # mean training loss over the steps since the previous report
    accuracy: float  # fraction of this epoch's training images classified right so far
    recent_accuracy: float  # the same over the steps since the previous report (a curve's point)
    steps_per_epoch: int
    epoch_end: bool = False
    dynamics: tuple = ()  # the dynamics rows recorded since the previous report (see mnistlab.dynamics)
    validation: tuple[Check, ...] = ()  # validation checks since the previous report

    @property
    def validation_accuracy(self) -> float | None:
        """The latest validation accuracy in this report, if validation was checked since the last."""
        return self.validation[-1].accuracy if self.validation else None

    @property
    def validation_loss(self) -> float | None:
        return self.validation[-1].loss if self.validation else None

    @property
    def fraction(self) -> float:
        return self.step / self.total_steps

    @property
    def epochs_done(self) -> float:
        """Where this report sits on a curve's x axis, in epochs."""
        return self.step / self.steps_per_epoch


def progress_curve(reports: list[Progress]) -> tuple[list[float], list[float], list[float]]:
    """(epochs, loss, accuracy) from the reports so far: the live curve while a run trains."""
    return ([p.epochs_done for p in reports], [p.loss for p in reports], [p.recent_accuracy for p in reports])


def validation_progress_curve(reports: list[Progress]) -> tuple[list[float], list[float], list[float]]:
    """(epochs, loss, accuracy) of the validation checks reported so far: the live dashed curve beside
    `progress_curve`, as `History.validation_curve` draws it once done."""
    checks = [(c.step / p.steps_per_epoch, c) for p in reports for c in p.validation]
    return [x for x, _ in checks], [c.loss for _, c in checks], [c.accuracy for _, c in checks]


@dataclass
class History:
    """Training curves: one loss and one batch accuracy per step (a stack's: its members' mean), where
    each epoch ended, and each member's mean loss over each epoch."""

    steps_per_epoch: int
    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    epoch_ends: list[int] = field(default_factory=list)  # step count at the end of each whole epoch
    epoch_loss: list[list[float]] = field(default_factory=list)  # per epoch, per member
    stopped_early: bool = False  # stopped before its last epoch by its user or a time limit
    # validation, checked `evaluations` times per epoch (members' mean) ...
    validation_steps: list[int] = field(default_factory=list)
    validation_loss: list[float] = field(default_factory=list)
    validation_accuracy: list[float] = field(default_factory=list)
    validation_images: list[int] = field(default_factory=list)  # how many images each check read
    # ... and on every validation image at each epoch's end: per epoch, per member
    epoch_validation_loss: list[list[float]] = field(default_factory=list)
    epoch_validation_accuracy: list[list[float]] = field(default_factory=list)
    patience_ran_out: bool = False  # early stopping ended it: `early_stop` epochs without a better loss
    kept_epoch: int | None = None  # with early stopping on: the epoch whose weights the network kept

    def add_check(self, check: Check) -> None:
        self.validation_steps.append(check.step)
        self.validation_loss.append(check.loss)
        self.validation_accuracy.append(check.accuracy)
        self.validation_images.append(check.images)

    def best_epoch(self, member: int = 0) -> int | None:
        """The (first) epoch with the lowest validation loss, 1-based; None without validation."""
        losses = [epoch[member] for epoch in self.epoch_validation_loss]
        return losses.index(min(losses)) + 1 if losses else None

    def validation_curve(self) -> tuple[list[float], list[float], list[float]]:
        """(epochs, loss, accuracy) of the validation checks: the dashed curve beside `curve`."""
        return ([s / self.steps_per_epoch for s in self.validation_steps], list(self.validation_loss),
                list(self.validation_accuracy))

    @property
    def steps(self) -> int:
        return len(self.loss)

    def curve(self, every: int = REPORT_EVERY) -> tuple[list[float], list[float], list[float]]:
        """(epochs, loss, accuracy) averaged between progress reports: the live curve, once done.

        Single steps are noisy (one batch each); these means are what the progress reports showed.
        """
        ends = sorted(set(range(every, self.steps + 1, every)) | set(self.epoch_ends) | {self.steps} - {0})
        x, loss, acc, lo = [], [], [], 0
        for hi in ends:
            x.append(hi / self.steps_per_epoch)
            loss.append(sum(self.loss[lo:hi]) / (hi - lo))
            acc.append(sum(self.accuracy[lo:hi]) / (hi - lo))
            lo = hi
        return x, loss, acc
