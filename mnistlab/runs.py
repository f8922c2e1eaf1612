"""The session's record of a training: `run` builds a network, trains it with the one loop, scores it
on the three splits and keeps it all as a `Run`; `keep_run` keeps a session's latest few.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import nn

from mnistlab import network, splits
from mnistlab.data import Split
from mnistlab.dataset import Dataset
from mnistlab.dynamics import Dynamics, Recorder
from mnistlab.network import Network
from mnistlab.train import Evaluation, History, check_split, evaluate, evaluate_all, train
from mnistlab.train_config import TrainConfig

MAX_RUNS_KEPT = 8  # runs a session keeps; each holds its weights before and after training


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


@dataclass
class Run(network.HasWeights):
    """One training in a session: which network, how it was trained, its curves, its results on the
    three splits and its weights. `evaluation` is the test set's, for the final report only: choose
    between runs on `validation`."""

    network: Network
    config: TrainConfig
    history: History
    evaluation: Evaluation  # on the test split (held out, not used to choose)
    state: dict[str, torch.Tensor]  # weights after training, on the CPU
    initial_state: dict[str, torch.Tensor] | None = None  # weights before training (for comparison)
    seconds: float = 0.0
    device: str = "cpu"
    name: str = ""  # set for a model loaded from a file: its name
    dynamics: Dynamics | None = None  # each layer's learning dynamics, when recorded (mnistlab.dynamics)
    train_evaluation: Evaluation | None = None  # on the images it learned from (with their noisy labels)
    validation: Evaluation | None = None  # on the validation split: what to choose by

    @property
    def best_epoch(self) -> int | None:
        """The epoch with the lowest validation loss (None for a model loaded from a file)."""
        return self.history.best_epoch()

    def stopping_note(self) -> str | None:
        """What early stopping did to this run: when it stopped and whose weights it kept (None when
        it was off, or for a model loaded from a file)."""
        h, patience = self.history, self.config.early_stop
        if not patience or not h.steps:
            return None
        if h.patience_ran_out:
            return (f"Early stopping: stopped after epoch {len(h.epoch_ends)} ({patience} epoch"
                    f"{'s' * (patience != 1)} without a lower validation loss), kept epoch {h.kept_epoch}'s "
                    f"weights.")
        if h.kept_epoch is not None:
            return (f"Early stopping: ran all {len(h.epoch_ends)} epochs, kept epoch {h.kept_epoch}'s "
                    f"weights (its lowest validation loss).")
        return "Early stopping: stopped by hand or the time limit first, so it keeps the weights it had then."

    def metrics(self) -> dict:
        """The numbers a saved model keeps: test, and where known training and validation accuracy, the
        best validation epoch and the epoch whose weights were kept."""
        out = self.evaluation.metrics()
        if self.train_evaluation is not None:
            out["train_accuracy"] = self.train_evaluation.accuracy
        if self.validation is not None:
            out.update(validation_accuracy=self.validation.accuracy, validation_loss=self.validation.loss)
        if self.best_epoch is not None:
            out["best_epoch"] = self.best_epoch
        if self.history.kept_epoch is not None:
            out["kept_epoch"] = self.history.kept_epoch
        return out

    @property
    def dataset(self) -> Dataset:
        return self.config.data

    def initial_model(self) -> nn.Sequential:
        return network.build_network(self.network)

    @property
    def normalization(self) -> str:
        """How the network reads images: the name in data.NORMALIZATIONS it was trained with."""
        return self.config.normalization

    @property
    def accuracy(self) -> float:
        return self.evaluation.accuracy

    def label(self) -> str:
        """E.g. "784-128-64-10 relu, adam lr 0.001, batch 64, 5 epochs: test accuracy 97.6%"."""
        if self.name:
            return f"{self.name} ({self.arch.label()}, loaded): test accuracy {self.accuracy:.1%}"
        stopped = f" (stopped at {self.history.steps / self.history.steps_per_epoch:.1f} epochs)" \
            if self.history.stopped_early else ""
        return f"{self.arch.label()}, {self.config.label()}{stopped}: test accuracy {self.accuracy:.1%}"


def run(net: Network, config: TrainConfig, train_split: Split, test_split: Split, device="cpu",
        callback=None, stop=None, recorder: Recorder | None = None, record_dynamics: bool = False,
        on_model=None, pause=None) -> Run:
    """Build the network, train it on the training images `config` picks from `train_split` (the data
    set's training images: `splits.training_splits`), checking validation as it goes, then score it on
    the training, validation and test splits, and keep it all as a `Run`.

    With `record_dynamics` (or a `recorder` of one's own), the Run keeps each layer's learning
    dynamics, probed on the validation split's first images. `on_model(model)` is called with the
    network about to be trained, so a page can draw it as it learns; `pause` (`jobs.Pause`) holds it
    between batches (see `train.train`), and the time it held it is not counted in `Run.seconds`.
    """
    check_split(config, train_split)
    check_split(config, test_split)
    learn, validation = splits.training_splits(train_split, config)
    device = network.resolve_device(device)
    model = network.build_network(net, device)
    initial = _cpu_state(model)
    if on_model is not None:
        on_model(model)
    if recorder is None and record_dynamics:
        recorder = Recorder(validation)
    start = time.perf_counter()
    history = train(model, config, learn, device, callback, stop, recorder, validation=validation,
                    pause=pause)
    # training time: a paused loop's rests at the gate are not (the Train page's time, the runs table)
    seconds = max(0.0, time.perf_counter() - start - (pause.rested if pause is not None else 0.0))
    scored = {role: evaluate_all(model, s, config.normalization)[0] for role, s in
              (("train", learn), ("validation", validation))}
    return Run(network=net, config=config, history=history,
               evaluation=evaluate(model, test_split, normalization=config.normalization),
               state=_cpu_state(model), initial_state=initial, seconds=seconds, device=str(device),
               dynamics=recorder.result if recorder is not None else None,
               train_evaluation=scored["train"], validation=scored["validation"])


def keep_run(runs: list[Run], new: Run, limit: int = MAX_RUNS_KEPT) -> list[Run]:
    """`runs` with `new` added, dropping the oldest beyond `limit` (each run holds its weights)."""
    return (list(runs) + [new])[-limit:]

