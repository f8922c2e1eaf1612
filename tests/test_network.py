"""Architectures, the lesson's named Sequential, init strategies and devices."""

import pytest
import torch
from torch import nn

from mnistlab import network
from mnistlab.errors import ConfigError
from mnistlab.network import Architecture, Init

LESSON_REPR = """Sequential(
  (fc1): Linear(in_features=784, out_features=128, bias=True)
  (relu1): ReLU()
  (fc2): Linear(in_features=128, out_features=64, bias=True)
  (relu2): ReLU()
  (output): Linear(in_features=64, out_features=10, bias=True)
  (softmax): Softmax(dim=1)
)"""


@pytest.fixture(scope="module")
def images(test_split):
    return test_split.normalized(slice(0, 64))


def test_784_128_64_10_relu_prints_exactly_as_in_the_lesson():
    model = network.build(Architecture((128, 64), ("relu", "relu")))
    assert repr(model) == LESSON_REPR


def test_layers_are_reachable_by_name_and_by_index():
    model = network.build(Architecture.parse("256", "sigmoid"))
    assert model.fc1 is model[0]
    assert isinstance(model.sigmoid1, nn.Sigmoid) and model.sigmoid1 is model[1]
    assert model.output is model[2] and model.output.out_features == 10
    assert isinstance(model.softmax, nn.Softmax) and model.softmax is model[-1]


def test_mixed_activations_name_each_layer_after_its_activation():
    arch = Architecture.parse("64,32,16", "tanh,relu,sigmoid")
    assert arch.layer_names() == ["fc1", "tanh1", "fc2", "relu2", "fc3", "sigmoid3", "output", "softmax"]
    assert [name for name, _ in network.build(arch).named_children()] == arch.layer_names()
    assert arch.label() == "784-64-32-16-10 tanh/relu/sigmoid"


def test_probabilities_of_a_real_batch_have_shape_64x10_and_rows_sum_to_one(images):
    model = network.build(Architecture.parse("128,64", "relu"))
    ps = network.probabilities(model, images)
    assert ps.shape == (64, 10)
    assert torch.allclose(ps.sum(dim=1), torch.ones(64), atol=1e-6)
    assert torch.allclose(torch.softmax(network.logits(model, images), dim=1), ps, atol=1e-6)


def test_parameter_count_matches_the_layers():
    arch = Architecture.parse("128,64")
    assert arch.n_parameters == 784 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10 == 109386
    model = network.build(arch)
    assert sum(p.numel() for p in model.parameters()) == arch.n_parameters
    assert [row["weight"] for row in network.parameter_table(model)] == [(128, 784), (64, 128), (10, 64)]


def test_same_seed_same_weights_other_seed_other_weights():
    arch = Architecture.parse("32")
    a, b, c = (network.build(arch, seed=s) for s in (3, 3, 4))
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.fc1.weight, c.fc1.weight)


def test_default_init_is_pytorchs_own_for_the_same_seed():
    torch.manual_seed(11)
    reference = nn.Sequential(nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))
    model = network.build(Architecture.parse("64"), seed=11)
    assert torch.equal(model.fc1.weight, reference[0].weight)
    assert torch.equal(model.output.bias, reference[2].bias)


def test_zero_bias_makes_every_bias_zero():
    model = network.build(Architecture.parse("128,64"), Init(zero_bias=True))
    for layer in (model.fc1, model.fc2, model.output):
        assert torch.count_nonzero(layer.bias) == 0
        assert layer.weight.abs().sum() > 0


@pytest.mark.parametrize("std", [0.01, 0.1, 1.0])
def test_normal_init_weights_have_the_requested_std_within_5_percent(std):
    model = network.build(Architecture.parse("256,128"), Init(weight_std=std), seed=0)
    for layer in (model.fc1, model.fc2):
        assert abs(layer.weight.std().item() - std) / std < 0.05
        assert abs(layer.weight.mean().item()) < std * 0.05


def test_zero_bias_and_normal_weights_combine():
    model = network.build(Architecture.parse("256"), Init(zero_bias=True, weight_std=0.01))
    assert torch.count_nonzero(model.fc1.bias) == 0
    assert abs(model.fc1.weight.std().item() - 0.01) < 0.0005


def test_unknown_activation_names_what_is_allowed():
    with pytest.raises(ConfigError, match="sigmoid, tanh, relu; got 'gelu'"):
        Architecture.parse("128", "gelu")
    with pytest.raises(ConfigError, match="one activation per hidden layer, or one for all: 2 layers but 3"):
        Architecture((128, 64), ("relu", "tanh", "relu"))


def test_one_activation_serves_every_hidden_layer():
    assert Architecture((32,)).label() == "784-32-10 relu"
    assert Architecture((30, 20), "tanh") == Architecture((30, 20), ("tanh", "tanh"))
    assert Architecture() == Architecture((128, 64), ("relu", "relu"))


def test_an_architecture_round_trips_through_a_dict():
    arch = Architecture.parse("300,100", "tanh,relu")
    assert Architecture.from_dict(arch.to_dict()) == arch
    with pytest.raises(ConfigError):
        Architecture.from_dict({"hidden": "lots"})


@pytest.mark.parametrize("seed", [-1, 2**31, "x", 1.5])
def test_bad_seeds_are_refused(seed):
    with pytest.raises(ConfigError, match="Seed"):
        network.build(Architecture(), seed=seed)


def test_devices_auto_picks_one_that_exists_and_absent_ones_are_named():
    present = network.available_devices()
    assert present[-1] == "cpu"
    assert network.resolve_device("auto").type == present[0]
    assert network.resolve_device("cpu") == torch.device("cpu")
    absent = [d for d in ("cuda", "mps") if d not in present]
    for name in absent:
        with pytest.raises(ConfigError, match="not available on this machine"):
            network.resolve_device(name)
    with pytest.raises(ConfigError, match="Device must be"):
        network.resolve_device("tpu")


def test_building_leaves_the_global_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    network.build(Architecture.parse("256,128"), Init(zero_bias=True, weight_std=0.1), seed=5)
    assert torch.equal(torch.rand(3), expected)
