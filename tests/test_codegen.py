"""The code the app shows reproduces exactly the network it runs."""

import pytest
import torch

from mnistlab import codegen, network
from mnistlab.layers import Conv, Pool
from mnistlab.network import Architecture, Init

CASES = [
    (Architecture.parse("128,64", "relu"), Init(), 0),
    (Architecture.parse("256", "sigmoid"), Init(zero_bias=True), 7),
    (Architecture.parse("100,50,25", "tanh,relu,sigmoid"), Init(weight_std=0.05), 3),
    (Architecture.parse("32,32", "relu,tanh"), Init(zero_bias=True, weight_std=0.01), 42),
    (Architecture.parse("128,64", "relu", "0.5"), Init(), 1),
    (Architecture.parse("64,32,16", "relu,tanh,sigmoid", "0.2,0,0.5", True), Init(zero_bias=True), 9),
    (Architecture.parse("48", "tanh", batch_norm=True), Init(weight_std=0.05), 2),
    # CNNs: ConvNetJS's layout straight to the output; padding, a pool of 3, a hidden layer, dropout
    # and batch norm after convolutions too; a convolution's own activation and dropout
    (Architecture.parse("", "relu", conv="8:5,16:5"), Init(), 0),
    (Architecture.parse("32", "tanh", "0.3", True, conv="6:3:1,pool3,12:3"),
     Init(zero_bias=True, weight_std=0.05), 5),
    (Architecture((16,), "relu", features=(Conv(4, 3, 1, "sigmoid", 0.2), Pool(2), Conv(8, 5, 2, "relu"))),
     Init(weight_std=0.1), 8),
]
LAYERED = [case for case in CASES if case[0].has_dropout or case[0].batch_norm]


@pytest.fixture(scope="module")
def images(test_split):
    return test_split.normalized(slice(0, 64))


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
    inputs = network.as_input(built, images)  # flattened for an MLP, (64, 1, 28, 28) for a CNN
    generated.eval(), built.eval()  # predicting: dropout off, batch norm on its running statistics
    assert torch.equal(generated(inputs), built(inputs))


@pytest.mark.parametrize("style", list(codegen.STYLES))
@pytest.mark.parametrize("arch, init, seed", LAYERED)
def test_in_training_mode_the_code_drops_the_units_the_app_drops(arch, init, seed, style, images, capsys):
    """Training mode: the generated code after torch.manual_seed(s) and the app's network with its
    dropout seeded s (from a private generator) give the very same outputs, batch after batch, and
    batch norm's running statistics move alike."""
    built = network.build(arch, init, seed).train()
    generated = run(codegen.generate(network.Network(arch, init, seed), style))
    generated.train()
    inputs = network.as_input(built, images)  # flattened for an MLP, (64, 1, 28, 28) for a CNN
    network.seed_dropout(built, 11)
    global_rng = torch.get_rng_state()
    app = [built(inputs) for _ in range(3)]
    assert torch.equal(torch.get_rng_state(), global_rng)  # the app draws nothing from torch's global RNG
    torch.manual_seed(11)
    shown = [generated(inputs) for _ in range(3)]
    assert all(torch.equal(a, b) for a, b in zip(app, shown))
    assert not torch.equal(app[0], app[1]) or not arch.has_dropout  # new masks each batch
    for name, tensor in codegen.state_dict_for(built.state_dict(), arch, style).items():
        assert torch.equal(generated.state_dict()[name], tensor), name


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


def test_dropout_and_batch_norm_read_as_pytorch_writes_them():
    arch = Architecture.parse("128,64", "relu", "0.5,0.2", True)
    module, functional, indexed, sequential = (codegen.generate(network.Network(arch, Init(), 0), s)
                                               for s in codegen.STYLES)
    assert "self.bn1 = nn.BatchNorm1d(128)" in module and "self.dropout2 = nn.Dropout(p=0.2)" in module
    assert "x = F.relu(self.bn1(self.fc1(x)))\n        x = F.dropout(x, p=0.5, training=self.training)" \
        in functional
    assert "    nn.Linear(784, 128),\n    nn.BatchNorm1d(128),\n    nn.ReLU(),\n    nn.Dropout(p=0.5)," \
        in indexed
    assert "('bn1', nn.BatchNorm1d(128)),\n    ('relu1', nn.ReLU()),\n    ('dropout1', nn.Dropout(p=0.5))," \
        in sequential
    assert codegen.layer_refs(arch, "indexed") == {"fc1": "model[0]", "fc2": "model[4]", "output": "model[8]"}
    assert codegen.printed(arch, "sequential") == repr(network.build(arch))


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
