"""Fashion-MNIST outside the pages, on its real files: loading (and what happens when they are
missing or damaged), the command line, a sweep, the code and the notebook that reproduce a run, and
a network of one data set used with the other."""

import shutil
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from mnistlab import data, dataset, model_files, network, runs, share
from mnistlab.__main__ import main
from mnistlab.dataset import FASHION, MNIST
from mnistlab.errors import ConfigError, DataError
from mnistlab.train_config import TrainConfig

SMALL = network.Architecture((32,), ("relu",))


@pytest.fixture
def no_debian(tmp_path, monkeypatch):
    """As on a machine without `apt-get install dataset-fashion-mnist`."""
    monkeypatch.setattr(dataset, "DEBIAN_ROOT", str(tmp_path / "no-such-folder"))


def copy_raw(source_root: Path, target_root: Path, ds) -> Path:
    target = target_root / ds.torchvision_name / "raw"
    shutil.copytree(source_root / ds.torchvision_name / "raw", target)
    return target


# -- the description and loading -------------------------------------------------------------------

def test_fashion_is_described_once_and_read_from_its_real_files(fashion_train, fashion_test):
    assert dataset.get("fashion") is FASHION and dataset.get(" Fashion ") is FASHION
    assert FASHION.classes[9] == "Ankle boot" and FASHION.n_classes == 10 and FASHION.inputs == 784
    assert (len(fashion_train), len(fashion_test)) == (60000, 10000)
    assert fashion_train.class_counts() == [6000] * 10 and fashion_test.class_counts() == [1000] * 10
    assert fashion_test.dataset is FASHION and FASHION.classes[int(fashion_test.labels[0])] == "Ankle boot"
    assert data.NORMALIZATIONS["fashion"] == (0.2860, 0.3530)
    assert FASHION.debian_folder == Path("/usr/share/datasets/fashion-mnist")
    with pytest.raises(ConfigError, match="Data set must be one of mnist, fashion; got 'cifar'"):
        dataset.get("cifar")


def test_missing_fashion_files_say_where_and_how_and_mnist_still_loads(tmp_path, no_debian, monkeypatch):
    from torchvision import datasets

    copy_raw(data.data_root(), tmp_path, MNIST)
    monkeypatch.setattr(datasets.FashionMNIST, "mirrors", [])  # offline: nowhere to download from
    with pytest.raises(DataError) as e:
        data.load_split(False, tmp_path, dataset=FASHION)
    message = str(e.value)
    assert "Fashion-MNIST is not on this computer yet" in message
    assert f"kept in {tmp_path}" in message and "FashionMNIST/raw/" in message  # where they go
    assert "MNISTLAB_DATA" in message and "apt-get install dataset-fashion-mnist" in message  # or how else
    assert len(data.load_split(False, tmp_path, dataset=MNIST)) == 10000  # the other data set works


def test_a_truncated_fashion_file_is_named_with_both_fixes(tmp_path, no_debian):
    raw = copy_raw(data.data_root(), tmp_path, FASHION)
    with open(raw / "t10k-images-idx3-ubyte", "r+b") as f:
        f.truncate(1000)
    with pytest.raises(DataError) as e:
        data.load_split(False, tmp_path, dataset=FASHION)
    message = str(e.value)
    assert f"in {raw} are damaged" in message and "t10k-images-idx3-ubyte" in message
    assert "apt-get install dataset-fashion-mnist" in message


@pytest.mark.skipif(not FASHION.debian_folder.is_dir(), reason="apt-get install dataset-fashion-mnist")
def test_missing_fashion_files_are_unpacked_from_debians_package(tmp_path, fashion_test):
    split = data.load_split(False, tmp_path, download=False, dataset=FASHION)
    assert len(split) == 10000 and split.class_counts() == [1000] * 10
    shared = fashion_test  # as data.load_split reads it from the shared folder
    assert torch.equal(split.images, shared.images) and torch.equal(split.labels, shared.labels)
    assert data.files_present(tmp_path, FASHION)


def test_the_app_says_how_to_get_fashion_and_mnist_still_works(tmp_path, no_debian, monkeypatch):
    from torchvision import datasets

    from tests.test_app_pages import APP, TIMEOUT

    copy_raw(data.data_root(), tmp_path, MNIST)
    monkeypatch.setenv("MNISTLAB_DATA", str(tmp_path))
    monkeypatch.setattr(datasets.FashionMNIST, "mirrors", [])
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["data"] = "fashion"
    at.run()
    assert not at.exception
    (error,) = [e.value for e in at.error]  # one message: what happened and the ways out
    assert "Fashion-MNIST is not on this computer yet" in error and f"kept in {tmp_path}" in error
    assert "FashionMNIST/raw/" in error and "apt-get install dataset-fashion-mnist" in error
    assert "MNIST may be there: choose it in the sidebar" in error and not at.info
    assert not at.title  # the page itself did not run
    at.sidebar.radio(key="lab_dataset").set_value("mnist").run()
    assert not at.exception and not at.error and at.title[0].value == "MNIST Lab"  # the start page


# -- a network of one data set, used with the other ---------------------------------------------------

def test_settings_for_one_data_set_refuse_the_others_images(fashion_train):
    with pytest.raises(ConfigError, match="These settings train on MNIST, but the images given are "
                                          "Fashion-MNIST's"):
        runs.run(network.Network(SMALL), TrainConfig(epochs=1), fashion_train.first(500),
                 fashion_train.first(100))


def test_a_fashion_model_file_keeps_its_data_set_and_is_refused_on_digits(fashion_train, fashion_test,
                                                                         test_split):
    config = TrainConfig(epochs=1, dataset="fashion", train_images=5000)
    run = runs.run(network.Network(SMALL), config, fashion_train, fashion_test)
    saved = model_files.from_bytes(model_files.to_bytes(model_files.SavedModel.from_run(run, "clothes")))
    assert saved.dataset is FASHION and saved.config.to_dict()["dataset"] == "fashion"
    with pytest.raises(ConfigError, match="Fashion-MNIST"):
        model_files.as_run(saved, test_split)
    again = model_files.as_run(saved, fashion_test)
    assert again.accuracy == pytest.approx(run.accuracy) and again.dataset is FASHION


def test_old_model_files_and_links_are_mnist():
    legacy = model_files.load_file(Path(__file__).parent / "fixtures" / "legacy-mnist.safetensors")
    assert legacy.dataset is MNIST and "dataset" not in legacy.settings.to_dict()
    assert share.linked_dataset({"hidden": "128,64"}) is MNIST
    assert share.linked_dataset({"data": "fashion"}) is FASHION
    assert "data" not in share.encode(network.Network())
    assert share.encode(network.Network(), FASHION)["data"] == "fashion"
    assert share.decode(share.encode(network.Network(SMALL), FASHION)) == (network.Network(SMALL), [])


# -- the command line ----------------------------------------------------------------------------

def test_cli_trains_on_fashion_and_eval_reads_the_data_set_from_the_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MNISTLAB_MODELS", str(tmp_path))
    assert main(["train", "--dataset", "fashion", "--hidden", "32", "--dry-run", "--threads", "1"]) == 0
    out, err = capsys.readouterr()
    assert "Fashion-MNIST" in err and "test accuracy:" in out
    assert main(["train", "--dataset", "fashion", "--hidden", "32", "--epochs", "1", "--train-images",
                 "5000", "--threads", "1", "--out", "clothes"]) == 0
    trained = capsys.readouterr().out
    assert main(["eval", "clothes", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    accuracy = [line for line in trained.splitlines() if line.startswith("test accuracy:")][0]
    assert accuracy.split(" (")[0] in out  # scored on Fashion-MNIST's test images, as when trained
    assert "Fashion-MNIST" in out and "  Ankle boot: " in out and "  T-shirt/top: " in out
    assert main(["train", "--dataset", "cifar", "--dry-run"]) == 1
    assert "Data set must be one of mnist, fashion" in capsys.readouterr().err


def test_cli_sweeps_fashion_and_keys_it_apart_from_mnist(tmp_path, monkeypatch, capfd):
    import json

    monkeypatch.setenv("MNISTLAB_MODELS", str(tmp_path))
    args = ["sweep", "--depth", "1", "--hidden", "16,32", "--activation", "relu", "--epochs", "1",
            "--train-images", "3000", "--threads", "1"]
    assert main([*args, "--dataset", "fashion", "--json", str(tmp_path / "fashion.json")]) == 0
    _, err = capfd.readouterr()
    assert "training images 3,000 on Fashion-MNIST: 2 trials" in err.splitlines()[0]
    assert main([*args, "--json", str(tmp_path / "mnist.json")]) == 0
    _, err = capfd.readouterr()
    assert "Fashion-MNIST" not in err and "were trained before" not in err  # another sweep: MNIST's own
    assert len(json.loads((tmp_path / "mnist.json").read_text())) == 2
    clothes = [r["test_accuracy"] for r in json.loads((tmp_path / "fashion.json").read_text())]
    digits = [r["test_accuracy"] for r in json.loads((tmp_path / "mnist.json").read_text())]
    assert clothes != digits  # other images, other accuracies
    from mnistlab.sweep_db import SweepDatabase

    saved = {SweepDatabase().settings(s["id"]).base.dataset for s in SweepDatabase().sweeps()}
    assert saved == {"mnist", "fashion"}  # two sweeps, each knowing its data set
