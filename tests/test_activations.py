"""Hidden activations over a real MNIST batch: saturated sigmoids, dead ReLUs."""

import pytest
import torch

from mnistlab.activations import dead_units, hidden_activations, layer_activations, saturated
from mnistlab.network import Architecture, Init, build
from mnistlab.tensors import TensorNetwork


@pytest.fixture(scope="module")
def batch(test_split):
    return test_split.normalized(slice(0, 256))


def test_every_hidden_layer_is_kept_with_the_lesson_names(batch):
    model = build(Architecture((128, 64, 32), ("relu", "sigmoid", "tanh")), seed=1)
    layers = hidden_activations(model, batch)
    assert [a.name for a in layers] == ["relu1", "sigmoid2", "tanh3"]
    assert [tuple(a.values.shape) for a in layers] == [(256, 128), (256, 64), (256, 32)]
    assert torch.allclose(layers[0].values, model[:2](batch.view(256, -1)))
    assert torch.allclose(layers[2].values, model[:6](batch.view(256, -1)))


def test_unscaled_random_weights_saturate_the_lessons_sigmoid(batch):
    hidden = TensorNetwork.random(256, seed=7).forward(batch)["hidden"]
    assert layer_activations(hidden, "sigmoid", "hidden").share > 0.8
    # PyTorch's default init keeps the same layer mostly in its responsive range.
    default = hidden_activations(build(Architecture((256,), ("sigmoid",)), seed=7), batch)[0]
    assert default.share < 0.05
    assert default.label() == f"sigmoid1: {default.share:.0%} saturated"


def test_large_normal_weights_saturate_tanh(batch):
    small = hidden_activations(build(Architecture((64,), ("tanh",)), Init(weight_std=0.01)), batch)[0]
    large = hidden_activations(build(Architecture((64,), ("tanh",)), Init(weight_std=1.0)), batch)[0]
    assert small.share < 0.01 < 0.5 < large.share


def test_relu_units_pushed_negative_for_every_image_are_dead(batch):
    model = build(Architecture((100,), ("relu",)), seed=0)
    with torch.no_grad():
        model.fc1.bias[:25] = -1000.0
    layer = hidden_activations(model, batch)[0]
    assert dead_units(layer.values)[:25].all()
    assert layer.share >= 0.25 and layer.problem == "dead units"


def test_saturation_thresholds():
    assert saturated(torch.tensor([0.5, 0.02, 0.99]), "sigmoid").tolist() == [False, False, True]
    assert saturated(torch.tensor([0.0, 0.9, 0.99]), "tanh").tolist() == [False, False, True]
    with pytest.raises(ValueError):
        saturated(torch.zeros(1), "relu")
