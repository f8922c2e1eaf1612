"""Saved models: one .safetensors file that loads back to the same network, and every bad file refused."""

import json
import pickle
import struct

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from safetensors.torch import save as st_save

from mnistlab import model_files, network, runs
from mnistlab.errors import ConfigError, ModelFileError
from mnistlab.train_config import TrainConfig

ARCH = network.Architecture((128, 64), ("relu", "relu"))


@pytest.fixture(scope="module")
def saved(trained_relu):
    state = {k: v.clone() for k, v in trained_relu.state_dict().items()}
    return model_files.SavedModel(network.Network(ARCH, network.Init(), 0), state,
                                  TrainConfig(epochs=10),
                            {"test_accuracy": 0.975}, "relu")


@pytest.fixture(scope="module")
def good_bytes(saved):
    return model_files.to_bytes(saved)


def test_save_then_load_gives_the_same_outputs(saved, tmp_path, trained_relu, test_split):
    path = model_files.save(saved, "lesson-net.v1", folder=tmp_path)
    assert path == tmp_path / "lesson-net.v1.safetensors"
    loaded = model_files.load("lesson-net.v1", folder=tmp_path)
    assert (loaded.arch, loaded.init, loaded.seed, loaded.config) == (ARCH, network.Init(), 0, saved.config)
    assert loaded.metrics == {"test_accuracy": 0.975} and loaded.name == "lesson-net.v1"
    images = test_split.normalized(slice(0, 500))
    with torch.no_grad():
        assert torch.equal(loaded.model()(images.flatten(1)), trained_relu(images.flatten(1)))
    assert model_files.list_models(tmp_path) == ["lesson-net.v1"]


def test_a_downloaded_file_uploads_back_unchanged(saved, good_bytes):
    loaded = model_files.from_bytes(good_bytes)
    assert all(torch.equal(loaded.state[k], saved.state[k]) for k in saved.state)
    assert model_files.to_bytes(loaded) == good_bytes


def test_the_file_is_plain_safetensors_with_a_json_description(good_bytes):
    (n,) = struct.unpack("<Q", good_bytes[:8])
    header = json.loads(good_bytes[8:8 + n])
    meta = json.loads(header["__metadata__"]["mnistlab"])
    assert meta["arch"] == {"hidden": [128, 64], "activations": ["relu", "relu"]}
    assert meta["training"]["optimizer"] == "adam" and meta["metrics"]["test_accuracy"] == 0.975
    assert (header["fc1.weight"]["dtype"], header["fc1.weight"]["shape"]) == ("F32", [128, 784])
    assert sorted(header) == ["__metadata__", "fc1.bias", "fc1.weight", "fc2.bias", "fc2.weight",
                              "output.bias", "output.weight"]


def test_a_run_becomes_a_model_and_back(tmp_path, train_split, test_split):
    splits = train_split, test_split
    run = runs.run(network.Network(network.Architecture((16,), ("tanh",)), network.Init(), 5),
                   TrainConfig(epochs=1, batch_size=1000, normalization="mnist"), *splits)
    saved = model_files.SavedModel.from_run(run, "tiny")
    back = model_files.as_run(model_files.from_bytes(model_files.to_bytes(saved)), splits[1])
    assert back.config == run.config and back.normalization == "mnist"  # it reads images as it learned to
    assert back.accuracy == run.accuracy and back.name == "tiny"
    assert back.label().startswith("tiny (784-16-10 tanh, loaded): ")


def test_a_loaded_model_carries_the_training_and_validation_results_its_file_recorded(tmp_path, saved,
                                                                                    train_split, test_split):
    splits = train_split, test_split
    config = TrainConfig(epochs=4, batch_size=100, train_images=1000, validation=1000, early_stop=1)
    run = runs.run(network.Network(network.Architecture((64,), ("relu",)), network.Init(), 0), config,
                    *splits)
    path = model_files.save(model_files.SavedModel.from_run(run), "early", folder=tmp_path)
    loaded = model_files.as_run(model_files.load_file(path), splits[1])
    # what the Train page shows of it: training and validation accuracy, best and kept epoch
    assert loaded.metrics()["train_accuracy"] == run.train_evaluation.accuracy
    assert loaded.metrics()["validation_accuracy"] == run.validation.accuracy
    assert loaded.best_epoch == run.best_epoch and loaded.history.kept_epoch == run.history.kept_epoch
    assert run.history.kept_epoch is not None
    # downloaded again, its file says all the first one did
    assert model_files.SavedModel.from_run(loaded).metrics == run.metrics()
    # a file that records none of them: nothing is made up
    older = model_files.as_run(saved, splits[1])
    assert older.best_epoch is None and older.history.kept_epoch is None
    assert "train_accuracy" not in older.metrics() and "validation_accuracy" not in older.metrics()


def test_a_file_saved_before_normalization_was_a_choice_reads_the_lessons_inputs():
    training = {"optimizer": "adam", "lr": 0.001, "momentum": 0.9, "batch_size": 64, "epochs": 5, "seed": 0}
    loaded = model_files.from_bytes(_with_meta(_tensors(), _meta(training=training)))
    assert loaded.config == TrainConfig() and loaded.normalization == "lesson"
    no_settings = model_files.from_bytes(_with_meta(_tensors(), _meta()))
    assert no_settings.normalization == "lesson"  # no settings at all


def test_the_models_folder_comes_from_mnistlab_models(monkeypatch, tmp_path):
    monkeypatch.setenv("MNISTLAB_MODELS", str(tmp_path / "models"))
    assert model_files.models_dir() == tmp_path / "models"
    monkeypatch.delenv("MNISTLAB_MODELS")
    assert model_files.models_dir() == model_files.DEFAULT_FOLDER.expanduser()


@pytest.mark.parametrize("name", ["../evil", "a/b", "/etc/passwd", "", " ", ".hidden", "x" * 65, "a..b",
                                  "a\nb", "ümlaut"])
def test_model_names_cannot_leave_the_models_folder(name, tmp_path):
    with pytest.raises(ModelFileError, match="A model name is"):
        model_files.path_for(name, tmp_path)


def test_a_trailing_suffix_is_part_of_no_name(tmp_path):
    assert model_files.path_for("run_3.safetensors", tmp_path) == tmp_path / "run_3.safetensors"


@pytest.mark.parametrize("arch, prefix, name", [
    (ARCH, "run1", "run1-784-128-64-10-relu"),
    (network.Architecture((512, 512), "relu", dropout=0.5, batch_norm=True), "run3",
     "run3-784-512-512-10-relu-dropout-0.5-batch-norm"),  # the Train page's default was refused: ", "
    (network.Architecture((32, 16), ("relu", "tanh"), dropout=(0.5, 0.2)), "run12",
     "run12-784-32-16-10-relu-tanh-dropout-0.5-0.2"),
    (network.Architecture((8,) * 8, "sigmoid", batch_norm=True), "",
     "784-8-8-8-8-8-8-8-8-10-sigmoid-batch-norm"),
    (network.Architecture((500,) * 8, ("relu", "tanh") * 4, dropout=0.25, batch_norm=True), "run7",
     "run7-784-500-500-500-500-500-500-500-500-10-relu-tanh-relu-tanh"),  # cut at a "-" to fit 64
])
def test_a_default_file_name_says_the_network_and_is_accepted(arch, prefix, name, saved, tmp_path):
    assert model_files.default_name(arch, prefix) == name and len(name) <= model_files.MAX_NAME
    assert model_files.save(saved, name, folder=tmp_path) == tmp_path / f"{name}.safetensors"


@settings(max_examples=300, deadline=None)
@given(hidden=st.lists(st.integers(1, network.MAX_WIDTH), min_size=1, max_size=network.MAX_HIDDEN_LAYERS),
       acts=st.lists(st.sampled_from(["relu", "sigmoid", "tanh"]), min_size=1, max_size=1)
       | st.lists(st.sampled_from(["relu", "sigmoid", "tanh"]), min_size=8, max_size=8),
       dropout=st.sampled_from([0, 0.05, 0.1, 0.2, 0.5, 0.9]) | st.floats(0, network.MAX_DROPOUT),
       batch_norm=st.booleans(), run=st.integers(1, 10**6))
def test_every_networks_default_file_name_passes_the_name_check(hidden, acts, dropout, batch_norm, run):
    try:
        arch = network.Architecture(tuple(hidden), tuple(acts[:len(hidden)]) if len(acts) > 1 else acts[0],
                                    dropout=dropout, batch_norm=batch_norm)
    except ConfigError:  # too many parameters
        assume(False)
    name = model_files.default_name(arch, f"run{run}")
    assert model_files.check_name(name) == name and name.startswith(f"run{run}-784-")


def test_loading_a_missing_name_lists_the_saved_ones(saved, tmp_path):
    model_files.save(saved, "mine", folder=tmp_path)
    with pytest.raises(ModelFileError, match="No model named 'other'.*Saved models: mine"):
        model_files.load("other", folder=tmp_path)


# -- bad files, each refused with its own message -----------------------------------------------------

class _RunsCode:
    """A pickle that would create a file when unpickled: the upload a classroom prankster sends."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _with_meta(tensors, meta):
    return st_save(tensors, metadata={"mnistlab": json.dumps(meta)} if meta is not None else None)


def _meta(**changes):
    meta = {"format": "mnistlab-model", "version": 1, "name": "x", "arch": ARCH.to_dict(),
            "init": network.Init().to_dict(), "seed": 0, "training": None, "metrics": {}}
    return {**meta, **changes}


def _tensors(arch=ARCH, dtype=torch.float32):
    return {k: torch.zeros(shape, dtype=dtype) for k, shape in model_files.expected_shapes(arch).items()}


def _bad_files(good, tmp_path):
    other = network.Architecture((100,), ("relu",))
    nan = _tensors()
    nan["fc2.bias"][3] = float("nan")
    return {
        "empty": (b"", "is empty"),
        "random bytes": (bytes(range(256)) * 40, "header claims"),
        "short": (b"\x01\x02\x03", "too short"),
        "torch.save pickle": (pickle.dumps(_RunsCode(str(tmp_path / "pwned"))), "pickle"),
        "torch.save zip": (b"PK\x03\x04" + bytes(100), "pickle"),
        "gigabyte header": (struct.pack("<Q", 3 * 2**30) + b"{}", "header claims 3,221,225,472 bytes"),
        "truncated header": (good[:200], "truncated"),
        "truncated weights": (good[:-1000], "truncated"),
        "header not json": (struct.pack("<Q", 4) + b"nope", "header is not readable"),
        "no metadata": (st_save(_tensors()), "no MNIST Lab description"),
        "other metadata": (st_save(_tensors(), metadata={"format": "pt"}), "no MNIST Lab description"),
        "damaged metadata": (st_save(_tensors(), metadata={"mnistlab": "{oops"}),
                             "damaged MNIST Lab description"),
        "future version": (_with_meta(_tensors(), _meta(version=9)), "version 9"),
        "unknown activation": (_with_meta(_tensors(), _meta(arch={"hidden": [128, 64],
                                                                 "activations": ["relu", "swish"]})),
                               "architecture MNIST Lab cannot build.*swish"),
        "huge architecture": (_with_meta(_tensors(), _meta(arch={"hidden": [10**9], "activations": "relu"})),
                              "architecture MNIST Lab cannot build.*2,048"),
        "no architecture": (_with_meta(_tensors(), _meta(arch=None)), "architecture MNIST Lab cannot build"),
        "bad settings": (_with_meta(_tensors(), _meta(training={"lr": -1})), "settings.*Learning rate"),
        "unknown normalization": (_with_meta(_tensors(), _meta(training={"normalization": "zscore"})),
                                  "settings.*Input normalization must be one of lesson, mnist, fashion, "
                                  "none"),
        "wrong shapes": (_with_meta(_tensors(other), _meta()), "does not match its architecture"),
        "transposed weight": (_with_meta({**_tensors(), "fc1.weight": torch.zeros(784, 128)}, _meta()),
                              r"fc1.weight has shape \(784, 128\), expected \(128, 784\)"),
        "extra tensor": (_with_meta({**_tensors(), "fc9.weight": torch.zeros(1)}, _meta()), "unexpected fc9"),
        "float64": (_with_meta(_tensors(dtype=torch.float64), _meta()), "32-bit floats"),
        "nan weights": (_with_meta(nan, _meta()), "not numbers.*fc2.bias"),
        "too big": (b"\x00" * (model_files.MAX_FILE_BYTES + 1),
                    "is 20,196,681 bytes; model files are at most"),  # with batch norm statistics
    }


BAD_KINDS = ["empty", "random bytes", "short", "torch.save pickle", "torch.save zip", "gigabyte header",
             "truncated header", "truncated weights", "header not json", "no metadata", "other metadata",
             "damaged metadata", "future version", "unknown activation", "huge architecture",
             "no architecture", "bad settings", "unknown normalization", "wrong shapes", "transposed weight",
             "extra tensor", "float64", "nan weights", "too big"]


def test_the_table_of_bad_files_is_complete(good_bytes, tmp_path):
    assert sorted(_bad_files(good_bytes, tmp_path)) == sorted(BAD_KINDS)


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_each_bad_model_file_is_refused_with_its_message(kind, good_bytes, tmp_path):
    content, says = _bad_files(good_bytes, tmp_path)[kind]
    with pytest.raises(ModelFileError, match=says) as e:
        model_files.from_bytes(content, source="upload.safetensors")
    assert str(e.value).startswith("upload.safetensors")
    assert not (tmp_path / "pwned").exists()  # nothing in the file ever ran


def test_a_model_file_whose_header_length_starts_like_a_pickle_still_loads(saved):
    # The first 8 bytes are the header's length: one name in 256 makes it start with 0x80, a pickle's mark.
    for extra in range(256):
        content = model_files.to_bytes(model_files.SavedModel(**{**vars(saved), "name": "m" * (1 + extra)}))
        if content[0] == 0x80:
            break
    assert content[0] == 0x80
    assert model_files.from_bytes(content).name == "m" * (1 + extra)


def test_a_real_torch_save_file_is_refused_without_unpickling(trained_relu, tmp_path):
    path = tmp_path / "model.pth"
    torch.save(trained_relu.state_dict(), path)
    with pytest.raises(ModelFileError, match="PyTorch pickle"):
        model_files.load_file(path)


def test_a_huge_file_on_disk_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "huge.safetensors"
    with open(path, "wb") as f:
        f.truncate(8 * 2**30)  # 8 GiB, sparse: reading it would take the server's memory
    with pytest.raises(ModelFileError, match="huge.safetensors is 8,589,934,592 bytes; model files are"):
        model_files.load_file(path)
