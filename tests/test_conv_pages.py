"""A CNN, or a network without hidden layers, opened from its model file: every page that shows a
trained network shows it, without a traceback. Real MNIST throughout."""

import json

import pytest
from streamlit.testing.v1 import AppTest

from mnistlab import model_files, runs
from mnistlab.network import Architecture, Init, Network
from mnistlab.train_config import TrainConfig

APP = "../app.py"
pytestmark = pytest.mark.usefixtures("navigation_mode")  # see tests/conftest.py
NETWORKS = {"cnn": Architecture.parse("32", "relu", "0.2", True, conv="8:5,16:5"),
            "softmax regression": Architecture.parse("", "relu")}


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture(scope="module")
def files(train_split, test_split, trained_cnn) -> dict[str, tuple[runs.Run, bytes]]:
    """The CNN is tests/conftest.py's; softmax regression trains here, one epoch on 3,000 images."""
    config = TrainConfig(epochs=1, train_images=3_000, validation=1_000)
    trained = {"cnn": trained_cnn,
               "softmax regression": runs.run(Network(NETWORKS["softmax regression"], Init(), 0), config,
                                              train_split, test_split)}
    return {name: (run, model_files.to_bytes(model_files.SavedModel.from_run(run, name.replace(" ", "-"))))
            for name, run in trained.items()}


@pytest.mark.parametrize("name", NETWORKS)
def test_a_file_of_a_cnn_or_softmax_regression_opens_on_train_with_every_tab(name, files):
    trained, content = files[name]
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("pages/train.py").run()
    ok(at.file_uploader(key="tr_upload").upload(f"{name}.safetensors", content, "application/octet-stream")
       .run())
    assert not at.error, [e.value for e in at.error]
    run = at.session_state["runs"][-1]
    assert run.arch == trained.arch and run.accuracy == trained.accuracy
    assert trained.arch.label() in at.selectbox(key="tr_show").value


def test_explore_sweeps_both_families_and_maps_them_against_parameters_and_multiply_adds(tmp_path,
                                                                                          monkeypatch):
    """A link with two convolution stacks (none: an MLP) and no hidden layer: both families trained,
    a second map against multiply-adds, the table says each network's convolutions, and the best opens
    on Build with them."""
    monkeypatch.setenv("MNISTLAB_MODELS", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    for k, v in dict(conv="none;4:5", depths="0", widths="16", act="relu", epochs="1", images="3000").items():
        at.query_params[k] = v
    ok(at.switch_page("pages/explore.py").run())
    assert at.multiselect(key="ex_convs").value == ["none", "4:5,pool"]
    assert at.markdown[0].value.startswith("**2 trials**")
    ok(at.button(key="ex_start").click().run())
    assert at.session_state["ex_sweep"].wait(180)
    ok(at.run())
    titles = [json.loads(c.proto.spec)["layout"].get("title", {}).get("text", "")
              for c in at.get("plotly_chart")]
    assert "Validation accuracy against multiply-adds an image" in titles  # the second map: both families
    table = at.dataframe[0].value
    assert set(table["network"]) == {"784-10", "conv 4:5 → pool → 576-10 relu"}
    assert set(table["convolutions"]) == {"none", "4:5,pool"}
    assert at.selectbox(key="ex_open").value.startswith(table["network"][0])  # the best, chosen on validation
