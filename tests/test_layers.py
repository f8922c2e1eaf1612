"""Dropout and batch norm: in the network, its printout and parameter count, its saved file and link,
trained reproducibly (masks from a private generator, as the shown code draws them) and predicting
deterministically in eval mode, and a stack's members built as the networks are (tests/test_stacked.py
trains stacks against runs alone). Real MNIST."""

import dataclasses
import json
import struct

import pytest
import torch

from mnistlab import (
    dynamics,
    model_files,
    network,
    network_diagram,
    runs,
    share,
    stacked,
    sweep,
    train,
)
from mnistlab.errors import ConfigError, ModelFileError
from mnistlab.network import Architecture, Init, Network
from mnistlab.train_config import TrainConfig

LAYERED = Architecture.parse("64,32", "relu,tanh", "0.5,0.2", batch_norm=True)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """As the app's server trains: one thread (and on a shared CI machine, far faster)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def splits(train_split, test_split):
    return train_split, test_split


@pytest.fixture(scope="module")
def trained_run(splits):
    """A 784-64-32-10 network with dropout and batch norm, trained one epoch on 10,000 images."""
    config = TrainConfig(epochs=1, batch_size=100, batch_seed=2, train_images=10_000)
    return runs.run(Network(LAYERED, Init(), 3), config, *splits)


# -- the values ------------------------------------------------------------------------------------

def test_a_default_network_is_the_lessons_module_for_module():
    arch = Architecture((128, 64))
    assert arch.to_dict() == {"hidden": [128, 64], "activations": ["relu", "relu"]}
    assert arch.label() == "784-128-64-10 relu" and arch.n_parameters == 109_386
    assert [n for n, _ in network.build(arch).named_children()] == [
        "fc1", "relu1", "fc2", "relu2", "output", "softmax"]
    assert set(model_files.expected_shapes(arch)) == {f"{n}.{t}" for n in ("fc1", "fc2", "output")
                                                     for t in ("weight", "bias")}
    assert "dropout" not in share.encode(Network(arch)) and "bn" not in share.encode(Network(arch))


def test_dropout_and_batch_norm_are_named_layers_counted_printed_and_labelled():
    arch = Architecture.parse("512,512", "relu", "0.5", batch_norm=True)
    assert arch.label() == "784-512-512-10 relu, dropout 0.5, batch norm"
    assert LAYERED.label() == "784-64-32-10 relu/tanh, dropout 0.5/0.2, batch norm"
    model = network.build(arch)
    assert [n for n, _ in model.named_children()] == [
        "fc1", "bn1", "relu1", "dropout1", "fc2", "bn2", "relu2", "dropout2", "output", "softmax"]
    assert "(dropout1): Dropout(p=0.5, inplace=False)" in repr(model)
    assert "(bn1): BatchNorm1d(512, eps=1e-05, momentum=0.1" in repr(model)
    assert arch.n_parameters == sum(p.numel() for p in model.parameters()) == \
        Architecture((512, 512)).n_parameters + 2 * (512 + 512)
    table = network.parameter_table(model)
    assert [r["layer"] for r in table] == ["fc1", "bn1", "fc2", "bn2", "output"]
    assert sum(r["parameters"] for r in table) == arch.n_parameters
    # one dropout per layer, 0 meaning none there
    partial = Architecture.parse("64,32", "relu", "0,0.3")
    assert [n for n, _ in network.build(partial).named_children()][:5] == ["fc1", "relu1", "fc2", "relu2",
                                                                            "dropout2"]
    assert Architecture.from_dict(json.loads(json.dumps(LAYERED.to_dict()))) == LAYERED


@pytest.mark.parametrize("changes, says", [
    (dict(dropout=1.5), "Dropout for hidden layer 1 must be a number from 0 (none) to 0.9; got '1.5'"),
    (dict(dropout=-0.1), "from 0 (none) to 0.9"),
    (dict(dropout="half"), "got 'half'"),
    (dict(dropout=float("nan")), "from 0 (none) to 0.9"),
    (dict(dropout=(0.1, 0.2, 0.3)), "one dropout probability per hidden layer, or one for all: 2 layers"),
    (dict(batch_norm="yes"), "Batch norm must be on or off"),
])
def test_bad_dropout_or_batch_norm_values_say_what_is_allowed(changes, says):
    with pytest.raises(ConfigError) as e:
        Architecture((128, 64), **changes)
    assert says in str(e.value)


def test_the_same_seed_draws_the_same_weights_with_or_without_dropout_and_batch_norm():
    plain, layered = (network.build(a, Init(weight_std=0.05), 7) for a in (Architecture((64, 32)), LAYERED))
    for name in ("fc1", "fc2", "output"):
        assert torch.equal(getattr(plain, name).weight, getattr(layered, name).weight)
    assert torch.equal(layered.bn1.weight, torch.ones(64)) and torch.equal(layered.bn1.bias, torch.zeros(64))


# -- training: reproducible and private (tests/test_train.py trains the code shown for it) ----------

def test_training_with_dropout_is_reproducible_and_leaves_torchs_global_rng_alone(splits):
    config = TrainConfig(epochs=1, batch_size=100, batch_seed=1)
    images = splits[0].first(3_000)
    global_rng = torch.get_rng_state()
    first, second, other = (network.build(LAYERED, Init(), 0) for _ in range(3))
    train.train(first, config, images)
    train.train(second, config, images)
    train.train(other, config.replace(batch_seed=2), images)
    assert torch.equal(torch.get_rng_state(), global_rng)  # other visitors' threads share that one
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))
    assert not torch.equal(first.fc1.weight, other.fc1.weight)
    assert first.bn1.num_batches_tracked.item() == 30 and not first.training  # left in eval mode


def test_batch_norm_refuses_a_last_batch_of_one_image(splits):
    config = TrainConfig(epochs=1, batch_size=100)
    with pytest.raises(ConfigError, match="at least 2 images in every batch"):
        train.train(network.build(LAYERED), config, splits[0].first(1_001))


def test_recording_the_dynamics_changes_nothing_trained(splits):
    config = TrainConfig(epochs=1, batch_size=100, batch_seed=1)
    images = splits[0].first(3_000)
    recorded, plain = network.build(LAYERED, Init(), 0), network.build(LAYERED, Init(), 0)
    recorder = dynamics.Recorder(splits[1])
    train.train(recorded, config, images, recorder=recorder)
    train.train(plain, config, images)
    assert recorder.result.steps
    assert all(torch.equal(a, b) for a, b in zip(recorded.state_dict().values(), plain.state_dict().values()))


# -- predicting: eval mode -------------------------------------------------------------------------

def test_the_same_image_predicted_twice_gets_the_same_probabilities(trained_run, splits):
    image = splits[1].normalized([0])
    model = trained_run.model()
    first, second = (network.probabilities(model, image) for _ in range(2))
    assert torch.equal(first, second) and int(first.argmax()) == int(splits[1].labels[0])
    model.train()  # what eval mode prevents: dropout's random masks, each batch's own statistics
    assert not torch.equal(network.probabilities(model, splits[1].normalized([0, 0]))[:1], first)
    assert trained_run.accuracy > 0.85


def test_a_runs_predictor_is_built_once_and_predicts_as_its_model(trained_run, splits):
    """Draw predicts each stroke with `predictor()`: the run's network built once, in eval mode, giving
    the probabilities a freshly built `model()` gives."""
    images = splits[1].normalized(list(range(32)))
    predictor = trained_run.predictor()
    assert trained_run.predictor() is predictor and not predictor.training
    fresh = trained_run.model()
    assert torch.equal(network.probabilities(predictor, images), network.probabilities(fresh, images))
    assert dataclasses.replace(trained_run).predictor() is not predictor  # another run: its own


def test_the_network_diagram_reads_a_training_network_as_in_eval_mode(trained_run, splits):
    model = trained_run.model().train()  # as if a training thread had it
    image = splits[1].normalized([3])[0]
    drawn = network_diagram.diagram_data(model, image)
    assert model.training  # not switched
    expected = network.probabilities(trained_run.model(), image[None])[0].detach().numpy()
    assert drawn.columns[-1].values == pytest.approx(expected[drawn.columns[-1].shown], abs=1e-6)
    assert drawn.columns[0].header == "fc1 → bn1 → relu1"  # dropout drops nothing here: not named


# -- saved models and links ------------------------------------------------------------------------

def test_a_saved_model_keeps_batch_norms_statistics_and_predicts_the_same(trained_run, splits):
    saved = model_files.from_bytes(model_files.to_bytes(model_files.SavedModel.from_run(trained_run, "bn")))
    assert saved.arch == LAYERED and saved.state["bn1.num_batches_tracked"].item() == 100
    images = splits[1].normalized(slice(0, 500))
    assert torch.equal(network.probabilities(saved.model(), images),
                       network.probabilities(trained_run.model(), images))
    assert not torch.equal(saved.state["bn1.running_var"], torch.ones(64))  # learned, not the initial ones


def _with_header(content: bytes, change) -> bytes:
    n = struct.unpack("<Q", content[:8])[0]
    header = json.loads(content[8:8 + n])
    change(header)
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + content[8 + n:]


def test_a_model_file_with_damaged_batch_norm_statistics_is_refused(trained_run):
    good = model_files.to_bytes(model_files.SavedModel.from_run(trained_run, "bn"))
    no_stats = _with_header(good, lambda h: h.pop("bn2.running_mean"))
    with pytest.raises(ModelFileError, match="lacks bn2.running_mean"):
        model_files.from_bytes(no_stats)
    as_float = _with_header(good, lambda h: h["bn1.num_batches_tracked"].update(dtype="F64"))
    with pytest.raises(ModelFileError, match=r"bn1.num_batches_tracked must hold 64-bit whole numbers"):
        model_files.from_bytes(as_float)
    state = dict(trained_run.state, **{"bn1.running_var": -trained_run.state["bn1.running_var"]})
    negative = model_files.to_bytes(model_files.SavedModel(trained_run.network, state, trained_run.config))
    with pytest.raises(ModelFileError, match="negative numbers in bn1.running_var"):
        model_files.from_bytes(negative)


def test_a_link_carries_dropout_and_batch_norm_and_bad_values_fall_back_with_a_notice():
    net = Network(LAYERED, Init(), 4)
    params = share.encode(net)
    assert params["dropout"] == "0.5,0.2" and params["bn"] == "1"
    assert share.decode(params) == (net, [])
    assert share.decode({"hidden": "64", "dropout": "0.2", "bn": "1"})[0].arch.label() == \
        "784-64-10 relu, dropout 0.2, batch norm"
    decoded, notices = share.decode({"hidden": "64,32", "dropout": "1.5", "bn": "maybe"})
    assert decoded.arch == Architecture((64, 32))
    assert any("dropout='1.5' was not used" in n and "0.9" in n for n in notices)
    assert any("bn='maybe' was not used" in n for n in notices)


# -- stacked trials --------------------------------------------------------------------------------

def test_dropout_and_batch_norm_settings_train_in_separate_stacks():
    config = TrainConfig()
    archs = [Architecture((32,)), Architecture((32,), dropout=0.2), Architecture((32,), dropout=0.5),
             Architecture((32,), batch_norm=True)]
    trials = [sweep.Trial(Network(a, Init(), s), config) for a in archs for s in (0, 1)]
    groups = stacked.stacks(trials)
    assert len(groups) == 4 and all(len({t.arch for t in g}) == 1 for g in groups)


def test_a_stacks_members_are_networks_as_built_in_training_and_eval_mode(splits):
    nets = [Network(LAYERED, Init(), s) for s in (0, 1)]
    models = [network.build_network(n) for n in nets]
    stack = stacked.Stack(models, [LAYERED] * 2, "cpu")
    images = splits[1].normalized(slice(0, 64)).flatten(1)
    for model in models:
        model.eval()
    stack.train(False)
    scores = stack.logits(images)
    for m, model in enumerate(models):
        assert torch.allclose(scores[m], network.logits(model, images), atol=1e-5)
    assert torch.equal(stack.logits(images), scores)  # eval mode: deterministic
    stack.train(True)
    stack.seed_dropout(6)
    network.seed_dropout(models[1], 6)
    models[1].train()
    dropped = stack.logits(images)
    assert torch.allclose(dropped[1], network.logits(models[1], images), atol=1e-5)  # the same masks
    assert stack.member_state(1).keys() == models[1].state_dict().keys()
    assert torch.allclose(stack.member_state(1)["bn1.running_mean"], models[1].bn1.running_mean)


def test_dataclass_replace_keeps_dropout_checked():
    with pytest.raises(ConfigError, match="Dropout for hidden layer 2"):
        dataclasses.replace(LAYERED, dropout=(0.1, 0.95))
