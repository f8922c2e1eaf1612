"""A CNN, or a network without hidden layers, opened from its model file: every page that shows a
trained network shows it, without a traceback. Real MNIST throughout."""

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
def files(train_split, test_split) -> dict[str, tuple[runs.Run, bytes]]:
    config = TrainConfig(epochs=1, train_images=3_000, validation=1_000)
    out = {}
    for name, arch in NETWORKS.items():
        run = runs.run(Network(arch, Init(), 0), config, train_split, test_split)
        out[name] = run, model_files.to_bytes(model_files.SavedModel.from_run(run, name.replace(" ", "-")))
    return out


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
