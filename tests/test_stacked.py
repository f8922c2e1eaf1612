"""Several networks of one shape trained at once: each the very trial `runs.run` trains, within 0.3 pt."""

import pytest
import torch

from mnistlab import network, runs, stacked, sweep, train
from mnistlab.train_config import TrainConfig


@pytest.fixture(scope="module")
def splits(train_split, test_split):
    return train_split, test_split


# Each case: its architectures × inits × seeds, one stack, one epoch on the first 12,000 training
# images (3,000 for SGD): far enough along that each member has learned, so the bar measures how
# far the stack drifts from the runs alone, not how early in learning a network is compared.
A_FEW = dict(epochs=1, train_images=12_000)
CASES = {
    "seeds and inits, L2": ([network.Architecture((32, 32), "sigmoid")],
                            [network.Init(), network.Init(weight_std=0.1)], (0, 1, 2),
                            TrainConfig(batch_seed=4, weight_decay=1e-4, **A_FEW)),
    "activations": ([network.Architecture((32, 32), a) for a in ("tanh", "relu", ("relu", "sigmoid"),
                                                                "sigmoid")],
                    [network.Init()], (0, 1), TrainConfig(batch_seed=1, **A_FEW)),
    "sgd, L2": ([network.Architecture((16,), "relu")], [network.Init()], (0, 1),
                TrainConfig(optimizer="sgd", lr=0.05, weight_decay=1e-3, epochs=1, train_images=3_000)),
    "dropout": ([network.Architecture.parse("32,32", a, "0.3") for a in ("relu", "tanh")],
                [network.Init()], (0, 1), TrainConfig(batch_seed=4, **A_FEW)),
    "dropout, batch norm": ([network.Architecture.parse("32,32", a, "0.5,0.2", True)
                             for a in ("relu", "tanh")], [network.Init()], (0, 1),
                            TrainConfig(batch_seed=4, **A_FEW)),
}


def case_trials(case: str) -> list[sweep.Trial]:
    archs, inits, seeds, config = CASES[case]
    return [sweep.Trial(network.Network(arch, init, seed), config)
            for arch in archs for seed in seeds for init in inits]


@pytest.mark.parametrize("case", CASES)
def test_each_stacked_network_is_the_network_trained_alone(case, splits):
    """The oracle for stacking: each member against `runs.run` training it alone on the same batches
    (and validation split), within 0.3 points (0.5 with dropout, whose masks are each member's own
    run's); with dropout but no batch norm nothing but rounding differs, so the losses agree closely."""
    trials = case_trials(case)
    together = stacked.train_group(trials, *splits)  # in the given order
    assert [r.stacked for r in together] == [len(trials)] * len(trials)
    dropout = any(t.arch.has_dropout for t in trials)
    bar = 0.005 if dropout else 0.003
    for t, r in zip(trials, together):
        a = runs.run(t.network, t.config, *splits)
        assert abs(r.test_accuracy - a.accuracy) <= bar, t.arch.label()
        assert abs(r.validation_accuracy - a.validation.accuracy) <= bar  # each member's own
        assert abs(r.train_accuracy - a.train_evaluation.accuracy) <= bar
        assert r.best_epoch == a.best_epoch == 1
        if not any(t.arch.batch_norm for t in trials):
            assert r.test_loss == pytest.approx(a.evaluation.loss, rel=1e-3 if dropout else 1e-2)
    # the members did not train into one another: the inits, seeds and activations still tell apart
    assert len({round(r.test_loss, 6) for r in together}) == len(trials)
    assert len({round(r.validation_loss, 6) for r in together}) == len(trials)


def test_networks_of_one_shape_with_different_activations_stack_side_by_side():
    trials = case_trials("activations")  # sigmoid, tanh and ReLU networks, and one mixing two per layer
    (group,) = stacked.stacks(trials)
    assert len(group) == 8  # one activation's members side by side: one operation each
    assert [t.arch.activations for t in group] == sorted(t.arch.activations for t in trials)


def test_trials_stack_by_layer_sizes_and_settings_not_by_activation_seed_or_init():
    settings = sweep.SweepSettings.of(depths="1,2", widths="16,32", activations="relu,tanh",
                                      inits="default,0.1",
                                   lrs="0.001,0.01", seeds=3)
    groups = stacked.stacks(settings.trials())
    assert len(groups) == 2 * 2 * 2  # depth × width × lr
    assert all(len(g) == 12 for g in groups)  # 2 activations × 2 inits × 3 seeds share the batches
    assert all(len({stacked.stack_key(t) for t in g}) == 1 for g in groups)
    assert sum(len(g) for g in stacked.stacks(settings.trials(), max_size=4)) == settings.n_trials
    # a stack is capped by its first layer's units: wide networks stack fewer at a time
    wide = sweep.SweepSettings.of(depths="1", widths="512", activations="relu,tanh", seeds=3).trials()
    assert [len(g) for g in stacked.stacks(wide)] == [2, 2, 2]


def test_a_stopped_stack_has_no_results(splits):
    arch = network.Architecture((16,), "relu")
    trials = [sweep.Trial(network.Network(arch, network.Init(), s),
                          TrainConfig(epochs=3)) for s in (0, 1)]
    reports = []
    out = stacked.train_group(trials, *splits, callback=lambda p: reports.append(p) or len(reports) < 3)
    assert out is None and len(reports) == 3 and reports[-1].step == 60


def test_the_stacks_adam_step_is_torchs_fused_adam_step_exactly():
    torch.manual_seed(0)
    ours = [torch.randn(6, 30, 20, requires_grad=True), torch.randn(6, 1, 20, requires_grad=True)]
    theirs = [p.detach().clone().requires_grad_() for p in ours]
    fast = train.FusedAdam.wrapping(TrainConfig(lr=0.01).make_optimizer(ours))
    reference = TrainConfig(lr=0.01).make_optimizer(theirs)
    assert isinstance(fast, train.FusedAdam)
    for step in range(5):
        for opt, params in ((fast, ours), (reference, theirs)):
            opt.zero_grad()
            torch.manual_seed(step)  # the same gradients for both
            sum((p * torch.randn_like(p)).sum() for p in params).backward()
            opt.step()
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs))
    sgd = TrainConfig(optimizer="sgd").make_optimizer(ours)
    assert train.FusedAdam.wrapping(sgd) is sgd  # anything but plain Adam is used as it is


@pytest.mark.parametrize("optimizer, decay", [("adam", 0.01), ("adamw", 0.0), ("adamw", 0.05)])
def test_the_fast_step_with_weight_decay_is_torchs_adam_or_adamw_step_exactly(optimizer, decay):
    # L2 (Adam's weight_decay, added to the gradient) and decoupled (AdamW's) decay: the same kernel
    # torch picks, with the same decay, gives the very same weights
    config = TrainConfig(optimizer=optimizer, lr=0.01, weight_decay=decay)
    torch.manual_seed(0)
    ours = [torch.randn(6, 30, 20, requires_grad=True), torch.randn(6, 1, 20, requires_grad=True)]
    theirs = [p.detach().clone().requires_grad_() for p in ours]
    plain = [p.detach().clone().requires_grad_() for p in ours]  # without decay
    fast = train.FusedAdam.wrapping(config.make_optimizer(ours))
    reference = config.make_optimizer(theirs)
    undecayed = TrainConfig(lr=0.01).make_optimizer(plain)
    assert isinstance(fast, train.FusedAdam) and type(reference).__name__ == {"adam": "Adam",
                                                                              "adamw": "AdamW"}[optimizer]
    for step in range(5):
        for opt, params in ((fast, ours), (reference, theirs), (undecayed, plain)):
            opt.zero_grad()
            torch.manual_seed(step)
            sum((p * torch.randn_like(p)).sum() for p in params).backward()
            opt.step()
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs))
    assert all(torch.equal(a, b) for a, b in zip(ours, plain)) == (decay == 0)  # the decay acts
