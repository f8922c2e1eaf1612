"""The code the app shows reproduces exactly the network it runs."""

import pytest
import torch

from mnistlab import codegen, data, network
from mnistlab.network import Architecture, Init

CASES = [
    (Architecture.parse("128,64", "relu"), Init(), 0),
    (Architecture.parse("256", "sigmoid"), Init(zero_bias=True), 7),
    (Architecture.parse("100,50,25", "tanh,relu,sigmoid"), Init(weight_std=0.05), 3),
    (Architecture.parse("32,32", "relu,tanh"), Init(zero_bias=True, weight_std=0.01), 42),
]


@pytest.fixture(scope="module")
def images():
    return data.load_split(train=False).normalized(slice(0, 64))


def run(source: str):
    namespace = {}
    exec(compile(source, "<generated>", "exec"), namespace)  # noqa: S102 - our own generated code
    return namespace["model"]


@pytest.mark.parametrize("style", list(codegen.STYLES))
@pytest.mark.parametrize("arch, init, seed", CASES)
def test_generated_code_loads_the_state_dict_and_gives_identical_outputs(arch, init, seed, style, images,
                                                                         capsys):
    built = network.build(arch, init, seed)
    generated = run(codegen.generate(network.Network(arch, init, seed), style))
    generated.load_state_dict(codegen.state_dict_for(built.state_dict(), arch, style))
    inputs = images.view(images.shape[0], -1)
    assert torch.equal(generated(inputs), built(inputs))


@pytest.mark.parametrize("style", list(codegen.STYLES))
@pytest.mark.parametrize("arch, init, seed", CASES)
def test_generated_code_draws_the_same_weights_from_the_seed(arch, init, seed, style, capsys):
    built = network.build(arch, init, seed)
    generated = run(codegen.generate(network.Network(arch, init, seed), style))
    for name, tensor in codegen.state_dict_for(built.state_dict(), arch, style).items():
        assert torch.equal(generated.state_dict()[name], tensor), name


def test_sequential_code_prints_like_the_built_model(capsys):
    arch = Architecture.parse("128,64", "relu")
    run(codegen.generate(network.Network(arch, Init(), 0), "sequential"))
    assert capsys.readouterr().out.strip() == repr(network.build(arch))


@pytest.mark.parametrize("style", list(codegen.STYLES))
@pytest.mark.parametrize("arch, init, seed", CASES)
def test_print_model_shown_for_each_style_is_what_its_code_prints(arch, init, seed, style, capsys):
    run(codegen.generate(network.Network(arch, init, seed), style))
    assert capsys.readouterr().out.strip() == codegen.printed(arch, style)


def test_the_indexed_style_prints_layers_0_to_5_like_the_lesson(capsys):
    arch = Architecture.parse("128,64", "relu")
    model = run(codegen.generate(network.Network(arch, Init(), 0), "indexed"))
    assert capsys.readouterr().out.strip().splitlines() == [
        "Sequential(",
        "  (0): Linear(in_features=784, out_features=128, bias=True)", "  (1): ReLU()",
        "  (2): Linear(in_features=128, out_features=64, bias=True)", "  (3): ReLU()",
        "  (4): Linear(in_features=64, out_features=10, bias=True)", "  (5): Softmax(dim=1)", ")"]
    assert repr(model[0]) == "Linear(in_features=784, out_features=128, bias=True)"
    assert torch.equal(model[0].weight, network.build(arch).fc1.weight)  # the same weights for the seed


def test_the_four_styles_read_like_the_lesson():
    arch = Architecture.parse("128,64", "relu")
    module, functional, indexed, sequential = (codegen.generate(network.Network(arch, Init(True, 0.01), 0), s)
                                               for s in codegen.STYLES)
    assert "nn.Sequential(\n    nn.Linear(784, 128),\n    nn.ReLU()," in indexed
    assert "model[4].weight.data.normal_(std=0.01)" in indexed
    assert "class Network(nn.Module):" in module and "self.relu1 = nn.ReLU()" in module
    assert "F.relu(self.fc1(x))" in functional and "F.softmax(self.output(x), dim=1)" in functional
    assert "nn.Sequential(OrderedDict([" in sequential and "('output', nn.Linear(64, 10))," in sequential
    assert "model.fc1.bias.data.fill_(0)" in module
    assert "model.output.weight.data.normal_(std=0.01)" in sequential
