"""The dead-unit share gets a sentence saying what is typical and when to worry, and the numbers in
it hold for the lesson's network on real MNIST."""

import pytest
import torch
from test_train_page import open_train, train_once, use_network

from mnistlab import dynamics, network, train
from mnistlab.train_config import TrainConfig

STEPS = 30


@pytest.fixture(scope="module")
def splits(train_split, test_split):
    return train_split, test_split


def relu1_dead(splits, seed=0, lr=1e-3, normalization="lesson") -> tuple[float, float]:
    """relu1's dead share at step 0 and after STEPS Adam steps of batch 64, as the Train page records it."""
    torch.set_num_threads(1)
    train_split, test_split = splits
    first = train_split.first(64 * STEPS)
    model = network.build(network.Architecture(), network.Init(), seed)
    recorder = dynamics.Recorder(test_split)
    train.train(model, TrainConfig(lr=lr, epochs=1, batch_seed=seed, normalization=normalization),
                first,
                recorder=recorder)
    _, shares = recorder.result.series("relu1", "dead")
    return shares[0], shares[-1]


def test_the_note_says_what_is_typical_and_when_to_worry():
    note = dynamics.dead_units_note(["dead", "dead"])
    assert "outputs 0 for every one of the 256 probe images" in note
    assert "about 5% are dead" in note and "30-45% dead" in note and "0-12%" in note
    assert "climbing towards 100%" in note and "learning rate far too large" in note
    assert dynamics.dead_units_note(["saturated"]) == ""  # no ReLU, nothing to explain


@pytest.mark.parametrize("seed", [0, 1])
def test_the_lessons_network_starts_near_5_percent_dead_and_its_first_steps_take_it_to_30_45(splits, seed):
    start, after = relu1_dead(splits, seed)
    assert start <= 0.08
    assert 0.30 <= after <= 0.45


def test_mnists_own_normalization_keeps_it_low_and_a_large_learning_rate_kills_most(splits):
    assert relu1_dead(splits, normalization="mnist")[1] <= 0.12
    assert relu1_dead(splits, lr=0.03)[1] >= 0.85


def test_the_train_page_shows_the_note_beside_a_relu_runs_dynamics():
    at = open_train()
    use_network(at, "32", "relu")
    train_once(at)
    assert dynamics.dead_units_note(["dead"]) in [c.value for c in at.caption]
    use_network(at, "32", "sigmoid")
    train_once(at)  # the newest run is shown: no ReLU, no note
    assert not any(c.value.startswith("Dead here means") for c in at.caption)
