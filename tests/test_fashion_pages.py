"""Every page on real Fashion-MNIST, chosen in the sidebar or by a link's ?data=fashion (AppTest)."""

import numpy as np
import pytest
import torch
from PIL import Image

from mnistlab import data, model_files, network, runs, sweep_db
from mnistlab.dataset import FASHION, MNIST
from mnistlab.lesson_step import data_folder_text
from mnistlab.train_config import TrainConfig
from tests.test_app_pages import APP, TIMEOUT, code_text, figure_with, figures, open_page  # noqa: F401

pytestmark = pytest.mark.usefixtures("navigation_mode", "fresh_caches")  # see tests/conftest.py
FASHION_LINK = {"data": "fashion"}


def param(at, key: str):
    """A query parameter as the address bar holds it now (AppTest keeps a string or a list)."""
    value = at.query_params.get(key)
    return value[-1] if isinstance(value, list) else value


def bar_names(fig: dict) -> list[str]:
    return [str(y) for y in next(t for t in fig["data"] if t.get("type") == "bar")["y"]]


def grid_text(fig: dict) -> list[str]:
    return [str(t) for t in next(t for t in fig["data"] if t.get("type") == "scatter")["text"]]


# -- choosing it ----------------------------------------------------------------------------------

def test_the_link_chooses_fashion_and_every_page_keeps_it_in_its_address():
    at = open_page("pages/dataset.py", FASHION_LINK)
    assert at.sidebar.radio(key="lab_dataset").value == "fashion"
    assert param(at, "data") == "fashion"
    at.switch_page("pages/build.py").run()
    assert param(at, "data") == "fashion" and param(at, "hidden") == "128,64"
    at.sidebar.radio(key="lab_dataset").set_value("mnist").run()
    assert "data" not in at.query_params  # MNIST, the default: links as they always were
    assert at.session_state["build"].network == network.Network()


def test_choosing_fashion_in_the_sidebar_changes_the_dataset_page():
    at = open_page("pages/dataset.py")
    assert "MNIST through" in at.caption[0].value
    digits = grid_text(figure_with(at, "The batch's digits"))
    assert set(digits) <= set("0123456789")
    at.sidebar.radio(key="lab_dataset").set_value("fashion").run()
    assert not at.exception and at.caption[0].value.startswith("Fashion-MNIST through")
    names = grid_text(figure_with(at, "The batch's clothes"))
    assert set(names) <= set(FASHION.classes) and "Ankle boot" in names
    # the batch is Fashion-MNIST's first shuffled batch: its labels, named
    images, labels = at.session_state["ds_batch"]
    assert names[:len(labels)] == [FASHION.classes[int(y)] for y in labels]
    counts = figure_with(at, "60,000 images")
    assert list(counts["data"][0]["x"]) == list(FASHION.classes)
    assert [int(v) for v in counts["data"][0]["y"]] == [6000] * 10
    assert param(at, "data") == "fashion"


def test_an_unknown_data_set_in_a_link_says_so_and_stays_on_mnist():
    at = open_page(query_params={"data": "cifar"})  # the first page a visitor sees: Dataset
    assert at.sidebar.radio(key="lab_dataset").value == "mnist"
    assert "data='cifar' was not used" in at.sidebar.warning[0].value
    assert "mnist, fashion" in at.sidebar.warning[0].value


def test_dataset_page_pixel_view_offers_fashions_own_mean_and_std():
    at = open_page("pages/dataset.py", FASHION_LINK)
    images, labels = at.session_state["ds_batch"]
    at.segmented_control(key="ds_view").set_value("Fashion-MNIST's mean and std").run()
    fig = figure_with(at, "Normalize((0.286,), (0.353,))")
    stored = ((images[0, 0] * 0.5 + 0.5) * 255).round()
    assert np.allclose(np.asarray(fig["data"][0]["z"], dtype=float), (stored.numpy() / 255 - 0.286) / 0.353,
                       atol=1e-5)


# -- From tensors, Build ---------------------------------------------------------------------------

def test_tensors_runs_a_batch_of_clothes_and_names_the_bars(fashion_train):
    at = open_page("pages/tensors.py", FASHION_LINK)
    fig = figure_with(at, "through the untrained network")
    assert bar_names(fig) == list(FASHION.classes)
    first = next(iter(data.FastLoader(fashion_train, 64, seed=7)))[0][0]
    assert np.allclose(np.asarray(fig["data"][0]["z"], dtype=float), first[0].numpy())
    assert any("Ankle boot" in c.value for c in at.main.caption)


def test_build_forward_pass_and_network_use_fashion_test_images_and_class_names(fashion_test):
    at = open_page("pages/build.py", FASHION_LINK)
    assert "Fashion-MNIST" in at.caption[0].value
    at.session_state["b_tab"] = "Forward pass"
    at.run()
    fig = figure_with(at, "Untrained 784-128-64-10")
    assert bar_names(fig) == list(FASHION.classes)
    assert f"label {FASHION.classes[int(fashion_test.labels[0])]}" in fig["layout"]["annotations"][0]["text"]
    first = fashion_test.normalized([0])[0, 0].numpy()
    assert np.allclose(np.asarray(fig["data"][0]["z"], dtype=float), first)


def test_builds_link_carries_the_data_set_and_opens_it():
    link = {"hidden": "64", "act": "tanh", "std": "default", "bias": "default", "seed": "3",
            "data": "fashion"}
    at = open_page("pages/build.py", link)
    assert not at.exception
    assert at.session_state["build"].network.arch.hidden == (64,)
    assert at.sidebar.radio(key="lab_dataset").value == "fashion"
    assert {k: param(at, k) for k in at.query_params} == link


# -- Train -----------------------------------------------------------------------------------------

def test_train_on_fashion_names_classes_in_every_result(monkeypatch):
    at = open_page("pages/train.py", FASHION_LINK)
    at.text_input(key="tr_hidden").set_value("32")
    at.text_input(key="tr_activation").set_value("relu")
    at.button(key="tr_use").click().run()
    at.slider(key="tr_epochs").set_value(1).run()
    at.button(key="tr_train").click().run()
    job = at.session_state["train_job"]
    assert job.wait(120) and job.error is None, job.error
    at.run()
    while "train_job" in at.session_state:
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    run = at.session_state["runs"][-1]
    assert run.dataset is FASHION and run.config.dataset == "fashion"
    assert "Fashion-MNIST" in at.dataframe[0].value["training"][0]
    assert 0.75 < run.accuracy < 0.9  # one epoch of a small network: digits would give ~0.93
    confusion = figure_with(at, "True class (rows)")
    assert list(confusion["data"][0]["x"]) == list(FASHION.classes)
    per_class = at.dataframe[-1].value
    assert list(per_class.columns) == list(FASHION.classes)
    mistakes = figure_with(at, "mistakes: true → predicted")
    pairs = [t.split("<br>→ ") for t in grid_text(mistakes)]  # the true name above the predicted one
    assert pairs and all(len(p) == 2 and set(p) <= set(FASHION.classes) and p[0] != p[1] for p in pairs)
    gallery = figure_with(at, "Test image")
    assert bar_names(gallery) == list(FASHION.classes)
    code = code_text(at)
    assert f'datasets.FashionMNIST("{data_folder_text(FASHION)}"' in code  # where the app reads it


def test_train_page_scores_an_uploaded_model_on_the_data_set_it_learned(tmp_path, fashion_train, fashion_test,
                                                                       test_split):
    """A Fashion-MNIST model uploaded while the sidebar says MNIST is tested on clothes, named as such."""
    config = TrainConfig(epochs=1, dataset="fashion", train_images=2000)
    net = network.Network(network.Architecture((32,), ("relu",)))
    run = runs.run(net, config, fashion_train, fashion_test)
    content = model_files.to_bytes(model_files.SavedModel.from_run(run, "fashion32"))
    at = open_page("pages/train.py")
    assert at.sidebar.radio(key="lab_dataset").value == "mnist"
    at.session_state["runs"] = []
    from mnistlab.model_files import as_run, from_bytes

    loaded = as_run(from_bytes(content), fashion_test)
    assert loaded.accuracy == pytest.approx(run.accuracy)
    at.session_state["runs"] = [loaded]
    at.run()
    assert not at.exception
    assert any("learned Fashion-MNIST" in i.value for i in at.info)
    assert list(figure_with(at, "True class (rows)")["data"][0]["x"]) == list(FASHION.classes)
    with pytest.raises(Exception, match="Fashion-MNIST"):
        as_run(from_bytes(content), test_split)


# -- Explore ---------------------------------------------------------------------------------------

def test_explore_sweeps_fashion_when_the_sidebar_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("MNISTLAB_MODELS", str(tmp_path))
    at = open_page("pages/explore.py", FASHION_LINK)
    assert "Fashion-MNIST" in at.caption[0].value
    at.multiselect(key="ex_depths").set_value([1])
    at.multiselect(key="ex_widths").set_value([16, 32])
    at.multiselect(key="ex_activations").set_value(["relu"]).run()
    at.button(key="ex_start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["ex_sweep"].wait(180)
    at.run()
    assert not at.exception and "ex_sweep" not in at.session_state
    named = [m.value for m in at.markdown if "Fashion-MNIST" in m.value and "trials" in m.value]
    assert len(named) == 1 and named[0].count("Fashion-MNIST") == 1  # the label names it, once
    assert "on Fashion-MNIST: 2 trials" in named[0]
    draw = [c.value for c in at.caption if "then Draw can test it on" in c.value]
    assert draw and "drawings and uploaded pictures of clothes" in draw[0] and "digits" not in draw[0]
    records = sweep_db.SweepDatabase().records(at.session_state["ex_shown"])
    assert len(records) == 2 and all(0.7 < r["test_accuracy"] < 0.9 for r in records)  # clothes, not digits
    settings = sweep_db.SweepDatabase().settings(at.session_state["ex_shown"])
    assert settings.base.dataset == "fashion"
    link = at.get("page_link")[0].proto
    assert "data=fashion" in link.query_string
    # the same sweep on MNIST is another sweep, with its own id
    assert settings.replace(base=settings.base.replace(dataset="mnist")).id != settings.id


def test_train_calls_the_default_network_the_lessons_only_on_mnist():
    at = open_page("pages/train.py", FASHION_LINK)
    assert at.info[0].value.startswith("This is the default network, here learning Fashion-MNIST's clothes.")
    assert "lesson's network" not in at.info[0].value
    at.sidebar.radio(key="lab_dataset").set_value("mnist").run()
    assert at.info[0].value.startswith("This is the lesson's network, the default.")


# -- Draw ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fashion_run(fashion_train, fashion_test):
    """784-128-64-10 relu, one epoch on Fashion-MNIST (about 84% on its test set)."""
    torch.manual_seed(0)
    config = TrainConfig(epochs=1, dataset="fashion")
    return runs.run(network.Network(), config, fashion_train, fashion_test)


@pytest.fixture(scope="module")
def mnist_run(train_split, test_split):
    config = TrainConfig(epochs=1, train_images=10000)
    return runs.run(network.Network(), config, train_split, test_split)


def product_photo(garment: np.ndarray) -> bytes:
    """A Fashion-MNIST image as a shop's photo: dark on white, 280 px, white margins (see test_garment)."""
    big = Image.fromarray(255 - garment).resize((280, 280), Image.Resampling.BICUBIC)
    photo = Image.new("L", (360, 340), 255)
    photo.paste(big, (40, 30))
    buf = __import__("io").BytesIO()
    photo.convert("RGB").save(buf, "PNG")
    return buf.getvalue()


def open_draw(runs, query=None, models=None):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["runs"] = list(runs)
    at.query_params.update(query or {})
    at.run()
    at.switch_page("pages/draw.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def upload(at, name: str, content: bytes):
    at.segmented_control(key="draw_source").set_value("Upload").run()
    at.file_uploader(key="draw_upload").upload(name, content, "image/png").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_draw_prepares_an_uploaded_garment_as_fashion_mnist_was_made(fashion_run, tmp_path, monkeypatch,
                                                                   fashion_test):
    monkeypatch.setenv("MNISTLAB_MODELS", str(tmp_path))
    test = fashion_test
    at = open_draw([fashion_run], FASHION_LINK)
    assert at.title[0].value == "Draw or upload: Fashion-MNIST"
    right = 0
    for index in range(6):
        upload(at, f"garment{index}.png", product_photo(test.images[index].numpy()))
        (fig,) = probability_figures(at)
        assert bar_names(fig) == list(FASHION.classes)
        right += fig["data"][1]["x"].argmax() == int(test.labels[index])
        at.file_uploader(key="draw_upload").clear().run()
    assert right >= 4
    upload(at, "boot.png", product_photo(test.images[0].numpy()))
    captions = " ".join(c.value for c in at.caption)
    assert "trimmed" in captions and "negated" in captions and "sharpened" in captions
    assert any("Fashion-MNIST preprocessing (Xiao et al. 2017)" in m.value for m in at.markdown)
    assert any("trained on Fashion-MNIST" in m.value for m in at.markdown)


def test_draw_labels_each_network_with_its_own_data_set(fashion_run, mnist_run, tmp_path, monkeypatch,
                                                         fashion_test):
    """A digit network and a clothes network on the same upload: each reads it as its data set's
    images were made, and names its own classes."""
    monkeypatch.setenv("MNISTLAB_MODELS", str(tmp_path))
    model_files.save(model_files.SavedModel.from_run(fashion_run), "clothes")
    at = open_draw([mnist_run])
    at.multiselect(key="draw_models").set_value([at.multiselect(key="draw_models").options[0],
                                                 "Saved: clothes"]).run()
    test = fashion_test
    upload(at, "bag.png", product_photo(test.images[int((test.labels == 8).nonzero()[0])].numpy()))
    digits, clothes = probability_figures(at)
    assert bar_names(digits) == list(MNIST.classes) and bar_names(clothes) == list(FASHION.classes)
    shown = [m.value for m in at.markdown]
    assert any("trained on MNIST" in m for m in shown) and any("trained on Fashion-MNIST" in m for m in shown)
    assert any(m.startswith("**MNIST preprocessing") for m in shown)
    assert any(m.startswith("**Fashion-MNIST preprocessing") for m in shown)


def probability_figures(at) -> list[dict]:
    """Draw's class-probability figures (its network diagram, shift test and feature maps apart)."""
    return [f for f in figures(at) if f["layout"].get("meta") != {"figure": "network diagram"}
            and any(t["type"] == "bar" for t in f["data"])]
