"""The one training loop (`train`): batches from a loader, forward, loss, backward, optimizer step,
with validation checks and early stopping.

The loop is the lesson's. It reads batches from `data.FastLoader` (the split held once in memory)
and reports progress (`history.Progress`) to a callback, which can also stop it. It trains one
`nn.Sequential` or a stack of networks (`stacked.Stack`) alike: whatever it trains supplies its
scores, its losses and its parameters (`trainee.Trainee`), and validation is scored by the one
evaluation (`evaluation.evaluate_all`). How it trains is a `train_config.TrainConfig`; what it
gives is a `history.History`; `runs.run` keeps what one training gives as a `Run`.

`evaluate`, `progress_curve`, `validation_progress_curve` and `Trainee` are imported here `as`
themselves: callers read them (and the rest) from `train`, as before they moved to their modules.
"""

from __future__ import annotations

import math
import time

import torch
from torch import nn

from mnistlab import network
from mnistlab.data import FastLoader, Split
from mnistlab.errors import ConfigError
from mnistlab.evaluation import Evaluation, evaluate_all
from mnistlab.evaluation import evaluate as evaluate
from mnistlab.history import REPORT_EVERY, Check, History, Progress
from mnistlab.history import progress_curve as progress_curve
from mnistlab.history import validation_progress_curve as validation_progress_curve
from mnistlab.train_config import TrainConfig
from mnistlab.trainee import Single
from mnistlab.trainee import Trainee as Trainee


class FusedAdam:
    """`torch.optim.Adam(fused=True)`'s or `AdamW(fused=True)`'s step, the very kernel with the very
    settings (weight decay included: L2 for Adam, decoupled for AdamW), without the ~0.15 ms of
    Python bookkeeping its `step()` adds (at batch 64 a fifth of a small network's step)."""

    def __init__(self, optimizer: torch.optim.Adam):
        group = optimizer.param_groups[0]
        self.params = list(group["params"])
        self.lr, (self.beta1, self.beta2), self.eps = group["lr"], group["betas"], group["eps"]
        self.weight_decay = group["weight_decay"]
        # torch's Adam picks its kernel so too (torch/optim/adam.py, _fused_adam)
        self.kernel = torch._fused_adamw_ if group.get("decoupled_weight_decay") else torch._fused_adam_
        self.exp_avgs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.exp_avg_sqs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.steps = [torch.zeros((), dtype=torch.float32, device=p.device) for p in self.params]

    @classmethod
    def wrapping(cls, optimizer: torch.optim.Optimizer):
        """This for a plain fused Adam or AdamW (what TrainConfig makes); any other optimizer as it is."""
        group = optimizer.param_groups[0]
        plain = (isinstance(optimizer, torch.optim.Adam) and group.get("fused")  # AdamW is an Adam
                 and len(optimizer.param_groups) == 1
                 and not group["amsgrad"] and not group["maximize"] and not group["capturable"]
                 and not group["differentiable"] and not isinstance(group["lr"], torch.Tensor)
                 and not isinstance(group["weight_decay"], torch.Tensor))
        return cls(optimizer) if plain else optimizer

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        torch._foreach_add_(self.steps, 1)
        self.kernel(self.params, [p.grad for p in self.params], self.exp_avgs, self.exp_avg_sqs, [],
                    self.steps, lr=self.lr, beta1=self.beta1, beta2=self.beta2,
                    weight_decay=self.weight_decay, eps=self.eps, amsgrad=False, maximize=False)


def check_split(config: TrainConfig, split: Split) -> None:
    """A network learns and is scored on the data set its settings name, never another."""
    if split.dataset.name != config.dataset:
        raise ConfigError(f"These settings train on {config.data.title}, but the images given are "
                          f"{split.dataset.title}'s.")


def check_steps(steps_per_epoch: int, evaluations: int) -> list[int]:
    """The steps within an epoch (1-based) after which validation is checked; the last is its end."""
    return sorted({round(i * steps_per_epoch / evaluations) for i in range(1, evaluations + 1)} - {0})


class _Validation:
    """Validation as the loop checks it: normalized once on the device, scored by `evaluate_all`,
    whole at each epoch's end (what chooses the best epoch), and within an epoch its first
    1/(2 × evaluations) (1,250 of 10,000 images at 4 checks an epoch): 4 whole passes would cost a
    fifth of a 50,000-image epoch at batch 64 on a CPU core, these under a tenth (bench item 10)."""

    def __init__(self, split: Split, config: TrainConfig, device, k: int):
        self.split, self.normalization = split, config.normalization
        self.inputs = split.normalized(slice(None), device, config.normalization)
        self.part = -(-len(split) // (2 * config.evaluations))
        self.batch_size = 10_000 if k == 1 else 2_000  # a stack's hidden layers are K times as wide

    def check(self, trainee, step: int, whole: bool) -> tuple[Check, list[Evaluation]]:
        n = len(self.split) if whole else self.part
        evaluations = evaluate_all(trainee, self.split.first(n), self.normalization, self.batch_size,
                                   inputs=self.inputs[:n])
        trainee.train()
        mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
        return Check(step, mean([e.loss for e in evaluations]), mean([e.accuracy for e in evaluations]),
                     n), evaluations


def train(trainee, config: TrainConfig, split: Split, device="cpu",
          callback=None, stop=None, recorder=None, validation: Split | None = None, pause=None) -> History:
    """Train `trainee` (an nn.Sequential, or any `Trainee`: a stack) in place on `split`, the images
    it learns from as they are (`splits.training_splits` makes them from a data set's training
    images), and return its curves.

    `callback(progress)` is called every REPORT_EVERY steps and at each epoch's end; training
    stops early when it returns False or when `stop` (a threading.Event) is set. A `recorder`
    (`dynamics.Recorder`, for one nn.Sequential) gathers each layer's learning dynamics as it
    goes, without changing what is trained. With a `validation` split, validation is checked
    `config.evaluations` times per epoch (in eval mode), and with `config.early_stop` training
    ends after that many epochs without a lower validation loss, keeping the best epoch's weights.
    A `pause` (`jobs.Pause`) holds the loop between batches while it is paused; each batch trained
    while paused is reported, so a stepped batch shows at once. Where it waits never changes what
    it trains.
    """
    if isinstance(trainee, nn.Module):
        trainee = Single(trainee)
    check_split(config, split)
    if config.early_stop and (validation is None or not hasattr(trainee, "state")):
        raise ValueError("Early stopping needs a validation split and one network (a stack's members "
                         "would each stop at another epoch).")
    device = network.resolve_device(device)
    loader = FastLoader(split, config.batch_size, shuffle=True, seed=config.batch_seed, device=device,
                        normalization=config.normalization)
    optimizer = FusedAdam.wrapping(config.make_optimizer(trainee.parameters()))
    history = History(steps_per_epoch=len(loader))
    total = len(loader) * config.epochs
    checking = None
    if validation is not None:
        check_split(config, validation)
        checking = _Validation(validation, config, device, trainee.k)
        due = set(check_steps(len(loader), config.evaluations))
        best_loss, best_state = math.inf, None
    # Each step's loss and right answers stay on the device until a report, so a GPU is not
    # synchronised every step (and a CPU runs 2 small ops a step for them, not 5).
    losses, rights, sizes, checks = [], [], [], []
    # summed once at the epoch's end, so where reports fall (a paused run's too) cannot change it
    epoch_losses = []
    _check_batch_norm(trainee, len(split), config.batch_size)
    trainee.train()
    trainee.seed_dropout(config.batch_seed)  # dropout's masks: reproducible, private to this run
    if recorder is not None:
        recorder.start(trainee.model, config.normalization, len(loader), config.epochs)
    step = 0
    for epoch in range(1, config.epochs + 1):
        seen = right = 0  # this epoch's images so far (each member's), and how many were right
        for images, labels in loader:
            scores = trainee.logits(images)
            loss = trainee.losses(scores, labels)
            optimizer.zero_grad()
            (loss.sum() if trainee.k > 1 else loss).backward()  # each member's own mean loss's gradient
            recording = recorder is not None and recorder.due(step)
            if recording:
                recorder.before_step()
            optimizer.step()
            if recording:
                recorder.after_step(step)
            losses.append(loss.detach())
            rights.append((scores.argmax(-1) == labels).sum(-1))
            sizes.append(len(labels))
            step += 1
            if recorder is not None and recorder.snapshot_due(step):
                recorder.snapshot(step)
            end = step % len(loader) == 0
            patience_out = False
            if checking is not None and (step - (epoch - 1) * len(loader)) in due:
                check, evaluations = checking.check(trainee, step, whole=end)
                history.add_check(check)
                checks.append(check)
                if end:
                    history.epoch_validation_loss.append([e.loss for e in evaluations])
                    history.epoch_validation_accuracy.append([e.accuracy for e in evaluations])
                    if config.early_stop:
                        if check.loss < best_loss:
                            best_loss, best_state, history.kept_epoch = check.loss, trainee.state(), epoch
                        patience_out = epoch - history.kept_epoch >= config.early_stop
            stopping = stop is not None and stop.is_set()
            held = pause is not None and pause.paused and step < total  # waits after this batch
            if step % REPORT_EVERY == 0 or end or stopping or held:
                step_losses, step_rights = torch.stack(losses), torch.stack(rights)  # (n,) or (n, K)
                epoch_losses.append(step_losses.reshape(len(losses), -1))
                per_step = step_losses.reshape(len(losses), -1).mean(1).tolist()
                right_steps = (step_rights.reshape(len(rights), -1).sum(1) / trainee.k).tolist()
                history.loss += per_step
                history.accuracy += [r / n for r, n in zip(right_steps, sizes)]
                if end:
                    history.epoch_ends.append(step)
                    history.epoch_loss.append((torch.cat(epoch_losses).sum(0) / len(loader)).tolist())
                    epoch_losses = []
                seen, right = seen + sum(sizes), right + sum(right_steps)
                rows = tuple(recorder.flush()) if recorder is not None else ()
                if callback is not None:
                    progress = Progress(step=step, total_steps=total, epoch=epoch, epochs=config.epochs,
                                        loss=sum(per_step) / len(per_step), accuracy=right / seen,
                                        recent_accuracy=sum(right_steps) / sum(sizes),
                                        steps_per_epoch=len(loader), epoch_end=end, dynamics=rows,
                                        validation=tuple(checks))
                    stopping |= callback(progress) is False
                losses, rights, sizes, checks = [], [], [], []
                if stopping or patience_out:
                    history.stopped_early = stopping and step < total
                    history.patience_ran_out = patience_out and not stopping
                    break
                # Torch releases the GIL inside each op; this also hands it over between reports, so
                # other visitors' pages stay responsive. (Every step would cost ~20% of the speed.)
                time.sleep(0)
            if held and not pause.wait(stop):  # stopped while paused; all it trained is reported
                history.stopped_early = True
                break
        if history.stopped_early or history.patience_ran_out:
            break
    if config.early_stop:
        if history.stopped_early:
            history.kept_epoch = None  # stopped by its user: it keeps what it learned
        elif best_state is not None:
            trainee.load_state(best_state)  # the best epoch's weights, as the shown code keeps them
    return _done(trainee, history, recorder, step)


def _check_batch_norm(trainee, n: int, batch_size: int) -> None:
    if getattr(trainee, "batch_norm", False) and n % batch_size == 1:
        raise ConfigError(f"Batch norm needs at least 2 images in every batch, but {n:,} training images "
                          f"in batches of {batch_size} leave 1 image for the last: choose another batch "
                          f"size or number of training images.")


def _done(trainee, history: History, recorder, step: int) -> History:
    if recorder is not None:
        recorder.finish(step)  # the last rows, and a snapshot of the weights as trained
    trainee.train(False)
    return history
