"""The lesson's hand-made network: randn weights, sigmoid, torch.mm, softmax."""

import pytest
import torch

from mnistlab import data, tensors


@pytest.fixture(scope="module")
def images():
    images, _ = next(iter(data.trainloader()))
    return images


def test_shapes_are_as_the_lesson_prints_them_for_a_batch_of_64(images):
    net = tensors.TensorNetwork.random(n_hidden=256, seed=7)
    t = net.forward(images)
    shapes = {name: tuple(tensor.shape) for name, tensor in t.items()}
    assert shapes == {
        "images": (64, 1, 28, 28), "inputs": (64, 784), "W1": (784, 256), "B1": (1, 256),
        "hidden": (64, 256), "W2": (256, 10), "B2": (1, 10), "output": (64, 10),
        "scores": (64, 10), "probabilities": (64, 10),
    }


def test_weights_are_torch_randn_in_the_lesson_order_after_manual_seed():
    torch.manual_seed(7)
    W1, W2 = torch.randn(784, 256), torch.randn(256, 10)
    B1, B2 = torch.randn((1, 256)), torch.randn((1, 10))
    net = tensors.TensorNetwork.random(256, seed=7)
    assert all(torch.equal(a, b) for a, b in [(W1, net.W1), (W2, net.W2), (B1, net.B1), (B2, net.B2)])


def test_activation_is_the_sigmoid(images):
    x = torch.linspace(-20, 20, 101)
    assert torch.allclose(tensors.activation(x), torch.sigmoid(x))


def test_hidden_layer_is_sigmoid_of_mm_plus_bias(images):
    net = tensors.TensorNetwork.random(64, seed=1)
    t = net.forward(images)
    inputs = images.view(64, -1)
    assert torch.allclose(t["hidden"], torch.sigmoid(torch.mm(inputs, net.W1) + net.B1))
    assert torch.allclose(t["output"], torch.sigmoid(torch.mm(t["hidden"], net.W2) + net.B2))


def test_softmax_rows_sum_to_one_and_equal_torch_softmax(images):
    t = tensors.TensorNetwork.random(256, seed=7).forward(images)
    ps = t["probabilities"]
    assert torch.allclose(ps.sum(dim=1), torch.ones(64), atol=1e-6)
    assert torch.allclose(ps, torch.softmax(t["scores"], dim=1), atol=1e-7)


def test_softmax_stays_finite_for_huge_scores():
    x = torch.tensor([[1000.0, 999.0, -1000.0], [-5e4, 0.0, 5e4]])
    ps = tensors.softmax(x)
    assert torch.isfinite(ps).all()
    assert torch.allclose(ps, torch.softmax(x, dim=1))


def test_unscaled_random_weights_saturate_most_sigmoid_units(images):
    hidden = tensors.TensorNetwork.random(256, seed=7).forward(images)["hidden"]
    saturated = ((hidden < 0.01) | (hidden > 0.99)).float().mean()
    assert saturated > 0.8
