"""A Build page link: encoded state comes back unchanged; bad values fall back with a notice."""

import pytest
import torch

from mnistlab.network import Architecture, Init, Network, build
from mnistlab.share import DEFAULT, MAX_VALUE_LENGTH, STD_SCALE, decode, encode


def test_a_link_restores_the_same_network_with_the_same_weights():
    state = Network(Architecture((200, 50, 30), ("sigmoid", "tanh", "relu")), Init(True, 0.05), 1234)
    params = encode(state)
    assert params == {"hidden": "200,50,30", "act": "sigmoid,tanh,relu", "std": "0.05", "bias": "zero",
                      "seed": "1234"}
    restored, notices = decode(params)
    assert notices == [] and restored == state
    a, b = build(state.arch, state.init, state.seed), build(restored.arch, restored.init, restored.seed)
    for (name, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.equal(p, q), name


def test_every_std_on_the_scale_survives_the_link():
    for std in STD_SCALE:
        assert decode(encode(Network(init=Init(weight_std=std))))[0].init.weight_std == std


def test_no_parameters_is_the_default_network_without_a_notice():
    assert decode({}) == (DEFAULT, [])
    assert decode({"embed": "true"}) == (DEFAULT, [])


def test_repeated_parameters_count_by_their_last_value():
    state, notices = decode({"hidden": ["64", "32"], "seed": ["1", "2"]})
    assert state.arch.hidden == (32,) and state.seed == 2 and notices == []


@pytest.mark.parametrize("hidden", ["0", "-5", "1000000000", "abc", "", "128,,64", "1," * 30 + "1",
                                    "2048,2048,2048,2048", "3.5"])
def test_bad_hidden_sizes_fall_back_to_the_default_architecture_with_a_notice(hidden):
    state, notices = decode({"hidden": hidden, "act": "relu", "seed": "3"})
    assert state.arch == DEFAULT.arch and state.seed == 3
    assert len(notices) == 1 and "hidden=" in notices[0] and "default" in notices[0]


def test_bad_activations_keep_the_sizes_and_use_relu():
    state, notices = decode({"hidden": "100,50", "act": "softplus"})
    assert state.arch == Architecture((100, 50), ("relu", "relu"))
    assert len(notices) == 1 and "softplus" in notices[0]
    state, notices = decode({"hidden": "100,50", "act": "tanh,tanh,tanh"})
    assert state.arch.hidden == (100, 50) and len(notices) == 1


@pytest.mark.parametrize("std", ["0", "-1", "nan", "inf", "1e308", "abc"])
def test_bad_std_falls_back_to_the_default_init_with_a_notice(std):
    state, notices = decode({"std": std})
    assert state.init.weight_std is None
    assert len(notices) == 1 and "std=" in notices[0]


def test_an_std_off_the_scale_snaps_to_the_nearest_value_with_a_notice():
    state, notices = decode({"std": "0.03"})
    assert state.init.weight_std == 0.02
    assert len(notices) == 1 and "0.02" in notices[0]


@pytest.mark.parametrize("seed", ["-1", "1.5", "x", str(2**31), "1e3"])
def test_bad_seed_falls_back_to_zero_with_a_notice(seed):
    state, notices = decode({"seed": seed, "hidden": "32"})
    assert state.seed == 0 and state.arch.hidden == (32,)
    assert len(notices) == 1 and "seed=" in notices[0]


def test_bad_bias_value_is_noticed():
    state, notices = decode({"bias": "maybe"})
    assert state.init.zero_bias is False and len(notices) == 1


def test_a_huge_value_is_refused_without_echoing_it():
    huge = "1" * 100_000
    state, notices = decode({"hidden": huge})
    assert state == DEFAULT and len(notices) == 1
    assert huge[:MAX_VALUE_LENGTH + 1] not in notices[0] and len(notices[0]) < 200
