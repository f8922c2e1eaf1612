"""A network is a list of layers: convolutions and pools before the linear ones, checked, counted,
built, trained, saved and stacked (or not) like an MLP. Real MNIST throughout."""

import json
import math
from collections import OrderedDict

import pytest
import safetensors.torch
import torch
from torch import nn

from mnistlab import model_files, network, runs, stacked, sweep
from mnistlab.errors import ConfigError, ModelFileError
from mnistlab.layers import Conv, Pool
from mnistlab.network import Architecture, Init, Network
from mnistlab.train_config import TrainConfig

CONVNETJS = Architecture.parse("", "relu", conv="8:5,16:5")  # ConvNetJS's MNIST demo, pools after each
WIDE = Architecture.parse("", "relu", conv="32:3:1,64:3:1")


def test_the_convnetjs_layout_has_5994_parameters_and_its_shapes_in_the_lessons_style():
    assert CONVNETJS.n_parameters == 5_994 and WIDE.n_parameters == 50_186
    assert CONVNETJS.shapes() == [(1, 28, 28), (8, 24, 24), (8, 12, 12), (16, 8, 8), (16, 4, 4), (256,),
                                  (10,)]
    assert [(r["layer"], r["parameters"], r["macs"]) for r in CONVNETJS.table()] == [
        ("conv", 8 * 25 + 8, 8 * 24 * 24 * 25), ("pool", 0, 0),
        ("conv", 16 * 8 * 25 + 16, 16 * 8 * 8 * 8 * 25), ("pool", 0, 0), ("flatten", 0, 0),
        ("output", 2_570, 2_560)]
    assert CONVNETJS.macs == sum(r["macs"] for r in CONVNETJS.table()) == 322_560
    assert CONVNETJS.label() == "conv 8:5 → pool → conv 16:5 → pool → 256-10 relu"
    assert Architecture().label() == "784-128-64-10 relu"  # an MLP's label as before


@pytest.mark.parametrize("arch", [
    CONVNETJS, WIDE, Architecture.parse("64", "tanh", "0.2", True, conv="6:3:1,pool3,12:3"),
    Architecture((16,), "relu", features=(Conv(4, 3, 1, "sigmoid", 0.2), Pool(2), Conv(8, 5, 2))),
    Architecture((), ()), Architecture((300, 100), "relu", batch_norm=True)])
def test_counts_are_what_torch_counts_and_the_shapes_are_what_it_computes(arch, test_split):
    """Parameters as torch counts them; multiply-adds from each layer's real output shape."""
    model = network.build(arch).eval()
    assert arch.n_parameters == sum(p.numel() for p in model.parameters())
    x = network.as_input(model, test_split.normalized(slice(0, 5)))
    macs, shapes = 0, []
    for module in list(model)[:-1]:
        y = module(x)
        if isinstance(module, nn.Conv2d):
            macs += y[0].numel() * module.weight[0].numel()
        elif isinstance(module, nn.Linear):
            macs += y[0].numel() * module.in_features
        if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.Flatten, nn.Linear)):
            shapes.append(tuple(y.shape[1:]))
        x = y
    assert arch.macs == macs
    assert shapes == arch.shapes()[1:]
    assert model_files.expected_shapes(arch) == {k: tuple(v.shape) for k, v in model.state_dict().items()}


def test_softmax_regression_is_a_network_without_hidden_layers():
    arch = Architecture.parse("", "relu")
    assert arch.hidden == () and arch.label() == "784-10" and arch.n_parameters == 7_850
    assert list(dict(network.build(arch).named_children())) == ["output", "softmax"]


@pytest.mark.parametrize("init, seed", [(Init(), 0), (Init(zero_bias=True, weight_std=0.05), 7)])
def test_weights_are_those_of_torch_manual_seed_and_the_layers_built_in_order(init, seed):
    """The same init choices for convolutions as for linear layers, drawn as plain PyTorch draws them."""
    arch = Architecture.parse("32", "relu", conv="8:5,16:5")
    torch.manual_seed(seed)
    plain = nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(1, 8, 5)), ("relu_conv1", nn.ReLU()), ("pool1", nn.MaxPool2d(2)),
        ("conv2", nn.Conv2d(8, 16, 5)), ("relu_conv2", nn.ReLU()), ("pool2", nn.MaxPool2d(2)),
        ("flatten", nn.Flatten()), ("fc1", nn.Linear(256, 32)), ("relu1", nn.ReLU()),
        ("output", nn.Linear(32, 10)), ("softmax", nn.Softmax(dim=1))]))
    for layer in (plain.conv1, plain.conv2, plain.fc1, plain.output):
        if init.zero_bias:
            layer.bias.data.fill_(0)
        if init.weight_std is not None:
            layer.weight.data.normal_(std=init.weight_std)
    built = network.build(arch, init, seed)
    assert repr(built) == repr(plain)
    assert all(torch.equal(a, b) for a, b in zip(built.state_dict().values(), plain.state_dict().values()))


@pytest.mark.parametrize("conv, hidden, message", [
    ("8:5,pool,16:5,pool,16:5", "", "Layer 5: a 5×5 kernel does not fit the 4×4 maps after layer 4"),
    ("8:3,pool,8:3,pool,8:3,pool,pool", "", "Layer 7: a 2×2 pool does not fit the 1×1 maps after layer 6"),
    ("8:11,pool,8:11", "", "Layer 3: a 11×11 kernel does not fit the 9×9 maps after layer 2"),
    ("8:13", "", "kernel must be from 1 to 11"),
    ("8:5:5", "", "padding must be from 0 to 4"),
    ("300:3", "", "channels must be from 1 to 256"),
    ("8:x", "", "channels:kernel or channels:kernel:padding"),
    ("pool9", "", "pool's size must be from 2 to 4"),
    ("8:3," * 7, "", "At most 6 convolutions"),
    ("256:3:1,256:3:1", "", "multiply-adds an image; at most 20,000,000"),
    ("64:3:1", "2048,2048", "parameters; at most 5,000,000"),
])
def test_a_network_that_does_not_fit_is_refused_naming_the_layer_and_what_is_allowed(conv, hidden, message):
    with pytest.raises(ConfigError, match=message):
        Architecture.parse(hidden, "relu", conv=conv.rstrip(","), pool=False)


def test_old_mlp_values_read_and_write_as_before():
    """An MLP's dict has no new keys; a dict that states the flattened input still reads."""
    arch = Architecture((128, 64), "relu", dropout=0.5)
    assert arch.to_dict() == {"hidden": [128, 64], "activations": ["relu", "relu"], "dropout": [0.5, 0.5]}
    assert Architecture.from_dict({**arch.to_dict(), "inputs": 784, "outputs": 10}) == arch
    assert Architecture.from_dict(CONVNETJS.to_dict()) == CONVNETJS


def test_a_cnn_trains_with_validation_batch_norm_dropout_and_its_dynamics(trained_cnn):
    """tests/conftest.py's CNN: ConvNetJS's layout with a hidden layer, batch norm and dropout, one
    epoch on 10,000 images with validation and early stopping."""
    run = trained_cnn
    assert run.validation.accuracy > 0.93 and run.evaluation.accuracy > 0.93  # in one epoch of 10,000
    assert run.history.kept_epoch == 1 and len(run.history.epoch_ends) == 1
    assert run.dynamics.layers == ["conv1", "conv2", "fc1", "output"]
    assert run.dynamics.snapshots[0].templates.shape == (8, 1, 5, 5)  # conv1's filters
    ratios = run.dynamics.column("conv1", "update_ratio_log10")
    assert ratios and all(math.isfinite(v) for v in ratios)
    assert len(run.dynamics.column("relu_conv1", "dead")) == len(ratios)  # dead maps, watched like units


def test_a_cnn_model_file_opens_and_scores_as_the_trained_network(trained_cnn, test_split):
    saved = model_files.from_bytes(model_files.to_bytes(model_files.SavedModel.from_run(trained_cnn, "cnn")))
    assert saved.arch == trained_cnn.arch and saved.arch.features == trained_cnn.arch.features
    model = saved.model()
    images = test_split.normalized(slice(0, 500))
    trained = trained_cnn.model()
    assert torch.equal(network.probabilities(model, images), network.probabilities(trained, images))


def test_a_file_whose_layers_do_not_fit_is_refused_with_the_reason(trained_cnn):
    content = model_files.to_bytes(model_files.SavedModel.from_run(trained_cnn))
    header = json.loads(content[8:8 + int.from_bytes(content[:8], "little")])
    meta = json.loads(header["__metadata__"]["mnistlab"])
    meta["arch"]["layers"][0]["kernel"] = meta["arch"]["layers"][2]["kernel"] = 11  # 28 → 18 → 9 → ?
    tensors = safetensors.torch.load(content)
    broken = safetensors.torch.save(tensors, metadata={"mnistlab": json.dumps(meta)})
    with pytest.raises(ModelFileError, match="Layer 3: a 11×11 kernel does not fit the 9×9 maps after lay"):
        model_files.from_bytes(broken)


def test_cnn_trials_train_one_by_one_and_mlps_of_one_shape_together():
    config = TrainConfig(epochs=1)
    trials = [sweep.Trial(Network(arch, Init(), seed), config) for seed in (0, 1)
              for arch in (CONVNETJS, Architecture((64,), "relu"), Architecture((), ()))]
    groups = stacked.stacks(trials)
    assert sorted(len(g) for g in groups) == [1, 1, 1, 1, 2]
    assert all(len(g) == 1 for g in groups if g[0].arch.features or not g[0].arch.hidden)


def test_a_network_of_pools_alone_trains_and_replays(train_split, test_split):
    """No filters to learn: its first weights read the pooled 14×14 maps, and the replay draws them so."""
    from mnistlab import training_plots

    arch = Architecture((), (), features=(Pool(2),))
    run = runs.run(Network(arch, Init(), 0), TrainConfig(epochs=1, train_images=2_000, validation=1_000),
                   train_split, test_split, record_dynamics=True)
    assert arch.shapes()[-2] == (196,) and run.validation.accuracy > 0.4  # 32 steps of softmax regression
    fig = training_plots.replay(run.dynamics, test_split.images[run.dynamics.replay_digits])
    assert fig.layout.annotations[0].text.startswith("output: the first")
