"""A Build page link: encoded state comes back unchanged; bad values fall back with a notice."""

import dataclasses

import pytest
import torch

from mnistlab.layers import Conv
from mnistlab.network import Architecture, Init, Network, build, build_network
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


# -- a CNN's link ----------------------------------------------------------------------------------

def test_a_cnn_link_carries_its_layers_as_typed_and_restores_the_same_weights():
    arch = Architecture.parse("", "relu", conv="8:5,pool,16:5,pool")
    state = Network(arch, Init(), 3)
    params = encode(state)
    assert params == {"hidden": "", "act": "", "std": "default", "bias": "default", "seed": "3",
                      "conv": "8:5,pool,16:5,pool"}  # defaults left out: a short link
    restored, notices = decode(params)
    assert notices == [] and restored == state
    a, b = build_network(state), build_network(restored)
    for (name, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.equal(p, q), name


def test_a_cnn_link_names_activations_and_dropout_only_where_they_differ_from_the_defaults():
    arch = Architecture.parse("32", "tanh", conv="8:5:2,pool3,16:3")
    same = Network(arch)
    assert "conv_act" not in encode(same) and "conv_dropout" not in encode(same)  # tanh: the hidden layer's
    convs = [dataclasses.replace(f, activation="relu", dropout=0.25) if isinstance(f, Conv) else f
             for f in arch.features]
    convs[-1] = dataclasses.replace(convs[-1], activation="sigmoid", dropout=0.0)
    other = Network(dataclasses.replace(arch, features=tuple(convs), batch_norm=True), Init(True, 0.1))
    params = encode(other)
    assert params["conv"] == "8:5:2,pool3,16:3" and params["conv_act"] == "relu,sigmoid"
    assert params["conv_dropout"] == "0.25,0" and params["bn"] == "1" and "dropout" not in params
    assert decode(params) == (other, [])


@pytest.mark.parametrize("conv, why", [
    ("8:5,pool,16:5,pool,16:5", "Layer 5: a 5×5 kernel does not fit the 4×4 maps after layer 4"),
    ("8:x", "Layer 1: a convolution is channels:kernel"),
    ("8:13", "kernel must be from 1 to 11; got 13"),
    ("pool9", "A pool's size must be from 2 to 4; got 9"),
    ("300:3", "channels must be from 1 to 256; got 300")])
def test_a_bad_conv_value_names_what_was_wrong_and_keeps_the_rest(conv, why):
    state, notices = decode({"hidden": "32", "act": "tanh", "conv": conv, "seed": "5", "std": "0.1"})
    assert state.arch == Architecture((32,), "tanh") and state.seed == 5 and state.init.weight_std == 0.1
    assert len(notices) == 1 and f"conv={conv!r}" in notices[0] and why in notices[0]
    assert notices[0].endswith("Using no convolutions.")


def test_no_hidden_layer_is_allowed_after_convolutions_only():
    assert decode({"hidden": "", "conv": "4:3"})[0].arch.hidden == ()
    state, notices = decode({"hidden": "", "conv": "4:99"})  # no convolutions after all: the default MLP
    assert state.arch == DEFAULT.arch and len(notices) == 2 and "hidden=''" in notices[1]


def test_bad_conv_activations_or_dropout_keep_the_convolutions_with_the_defaults():
    state, notices = decode({"hidden": "16", "act": "tanh", "conv": "4:3,pool,4:3", "conv_act": "relu,nope",
                             "conv_dropout": "0.1,0.2,0.3"})
    assert state.arch.features_text() == "4:3,pool,4:3"
    convs = [f for f in state.arch.features if isinstance(f, Conv)]
    assert [c.activation for c in convs] == ["tanh", "tanh"] and [c.dropout for c in convs] == [0, 0]
    assert len(notices) == 2 and "conv_act=" in notices[0] and "conv_dropout=" in notices[1]


def test_convolutions_that_pass_a_cap_with_the_hidden_layers_are_left_out_with_a_notice():
    state, notices = decode({"hidden": "2048", "conv": "256:3:1"})
    assert state.arch == Architecture((2048,)) and len(notices) == 1 and "parameters" in notices[0]


# -- every bad value named -------------------------------------------------------------------------

def named(notices: list[str]) -> list[str]:
    """The link keys the notices name, in order."""
    return [n.removeprefix("Link value ").split("=", 1)[0] for n in notices]


def test_a_bad_hidden_does_not_hide_a_bad_act_or_anything_else():
    state, notices = decode({"hidden": "abc", "act": "tanh,foo", "seed": "-1"})
    assert state == DEFAULT and named(notices) == ["hidden", "act", "seed"]
    assert "got 'abc'" in notices[0] and "got 'foo'" in notices[1] and "seed='-1'" in notices[2]


def test_an_act_that_goes_with_an_unused_hidden_is_named_unless_it_is_the_defaults_own():
    state, notices = decode({"hidden": "", "act": "tanh"})
    assert state.arch == DEFAULT.arch and named(notices) == ["hidden", "act"]
    assert "goes with hidden=''" in notices[1]
    assert named(decode({"hidden": "", "act": "relu"})[1]) == ["hidden"]  # relu is what the default has


@pytest.mark.parametrize("params, key", [
    ({"conv_act": "tanh"}, "conv_act"),
    ({"hidden": "32", "conv_dropout": "0.2"}, "conv_dropout"),
    ({"conv": "8:99", "conv_act": "tanh"}, "conv_act"),
    ({"hidden": "2048", "conv": "256:3:1", "conv_dropout": "0.1"}, "conv_dropout"),
    ({"hidden": "", "conv": "8:5", "act": "tanh"}, "act"),
    ({"hidden": "", "conv": "8:5", "dropout": "0.2"}, "dropout")])
def test_a_value_for_layers_the_network_does_not_have_is_named(params, key):
    assert key in named(decode(params)[1])
