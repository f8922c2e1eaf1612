"""The Train page through Streamlit's AppTest, on real MNIST: train, stop, compare, download, upload."""

import pickle
import re

import numpy as np
import pandas as pd
import pytest
import torch
from streamlit.testing.v1 import AppTest
from test_app_pages import figure_with

from mnistlab import jobs, model_files, network, runs, train
from mnistlab.train_config import TrainConfig

APP = "../app.py"
pytestmark = pytest.mark.usefixtures("navigation_mode")  # see tests/conftest.py
TIMEOUT = 60


def open_train() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page("pages/train.py").run()
    ok(at)
    return at


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def use_network(at: AppTest, hidden: str, activation: str) -> AppTest:
    at.text_input(key="tr_hidden").set_value(hidden)
    at.text_input(key="tr_activation").set_value(activation)
    return ok(at.button(key="tr_use").click().run())


def train_once(at: AppTest, epochs=1, batch=256) -> runs.Run:
    """Press Train, wait for the background job, and let the page pick up the finished run."""
    at.slider(key="tr_epochs").set_value(epochs)
    at.select_slider(key="tr_batch").set_value(batch)
    ok(at.button(key="tr_train").click().run())
    assert at.session_state["train_job"].wait(120)
    ok(at.run())
    assert "train_job" not in at.session_state
    return at.session_state["runs"][-1]


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


# -- before training -------------------------------------------------------------------------------

def test_the_page_offers_the_lessons_network_by_default():
    at = open_train()
    assert "784-128-64-10 relu" in at.markdown[0].value and "109,386 parameters" in at.markdown[0].value
    assert "lesson's network" in at.info[0].value
    assert not at.error and not at.get("plotly_chart")  # nothing trained yet


def test_a_network_changed_here_is_the_one_trained_and_a_bad_one_is_an_error():
    at = open_train()
    use_network(at, "0", "relu")
    assert "Hidden layer 1 size must be from 1 to 2,048" in at.error[0].value
    use_network(at, "30,20", "tanh")
    assert not at.error and "784-30-20-10 tanh" in at.markdown[0].value and not at.info
    assert at.session_state["build"].network.arch == network.Architecture((30, 20), ("tanh", "tanh"))


# -- a short run -------------------------------------------------------------------------------------

def test_a_short_run_shows_accuracy_confusion_mistakes_and_weights():
    at = open_train()
    use_network(at, "32", "relu")
    run = train_once(at)
    assert run.arch.label() == "784-32-10 relu" and run.config.epochs == 1 and run.config.batch_size == 256
    assert run.accuracy > 0.85
    assert metric(at, "Test accuracy (held out, not used to choose)") == f"{run.accuracy:.2%}"
    assert metric(at, "Test mistakes of 10,000") == f"{run.evaluation.n_misclassified:,}"

    confusion = figure_with(at, "True digit (rows)")
    right, wrong = (np.nan_to_num(np.asarray(t["z"], dtype=float)) for t in confusion["data"])
    assert right.sum() + wrong.sum() == 10_000 and right.sum() == round(run.accuracy * 10_000)

    grid = figure_with(at, "mistakes: true → predicted")
    labels = list(next(t for t in grid["data"] if t.get("mode") == "text")["text"])
    assert len(labels) == 40 and all(t.split("→")[0] != t.split("→")[1] for t in labels)
    gallery = [c for c in at.get("plotly_chart") if "Test image" in c.proto.spec]
    assert len(gallery) == 4  # one page of mistakes, each with its probability bars
    shown = [int(re.search(r"Test image (\d+)", c.proto.spec).group(1)) for c in gallery]
    assert all(i < 5_000 for i in shown)  # never one of the hidden test images a class challenge scores on
    hidden = int((run.evaluation.misclassified >= 5_000).sum())
    assert f"the other {hidden:,} are on hidden test images" in "\n".join(c.value for c in at.caption)

    weights = figure_with(at, "before (grey) and after (blue) training")
    assert {t["name"] for t in weights["data"]} == {"before", "after"}
    assert len(weights["data"]) == 2 * 4  # fc1/output weight and bias, before and after
    images = np.asarray(figure_with(at, "fc1 weights after training")["data"][0]["z"], dtype=float)
    assert np.isfinite(images).sum() == 32 * 784  # one 28×28 image per hidden unit
    assert "optim.Adam(model.parameters(), lr=0.001, fused=True)" in at.code[0].value
    buttons = [b.proto.label for b in at.get("download_button")]
    assert "Download model" in buttons and "Download as Jupyter notebook" in buttons  # the code's notebook


def test_stop_ends_the_run_early_and_keeps_what_it_learned(test_split):
    at = open_train()
    use_network(at, "16", "relu")
    at.slider(key="tr_epochs").set_value(20)
    at.select_slider(key="tr_batch").set_value(8)  # 150,000 steps: far more than the test waits for
    ok(at.button(key="tr_train").click().run())
    job = at.session_state["train_job"]
    assert at.button(key="tr_stop")  # shown while it trains
    assert not job.wait(1.0)  # still training
    ok(at.button(key="tr_stop").click().run())
    assert job.wait(60)
    ok(at.run())
    run = at.session_state["runs"][-1]
    assert run.history.stopped_early and 0 < run.history.steps < 150_000
    assert "stopped at" in at.selectbox(key="tr_show").value
    # what it learned before the stop is kept, and is what the page reports
    assert not torch.equal(run.state["fc1.weight"], run.initial_state["fc1.weight"])
    assert train.evaluate(run.model(), test_split).accuracy == run.accuracy


def test_a_run_at_the_servers_time_limit_stops_with_a_notice(monkeypatch):
    monkeypatch.setattr(jobs, "MAX_RUN_SECONDS", 0.5)
    at = open_train()
    use_network(at, "16", "relu")
    run = train_once(at, epochs=20, batch=8)
    assert run.history.stopped_early
    assert "limit of 0.00833333 minutes per run" in at.warning[0].value  # 0.5 s, as this test set it
    assert "kept below" in at.warning[0].value


def test_two_runs_on_the_same_batches_are_compared_on_one_chart():
    at = open_train()
    use_network(at, "32", "sigmoid")
    sigmoid = train_once(at)
    use_network(at, "32", "relu")
    relu = train_once(at)
    assert sigmoid.config == relu.config  # same batch order seed: the same batches in the same order
    chosen = at.multiselect(key="tr_compare").value
    assert len(chosen) == 2 and "sigmoid" in chosen[0] and "relu" in chosen[1]
    curves = figure_with(at, "Training curves")
    lines = [t for t in curves["data"] if t.get("showlegend") is not False and t["legendgroup"] != "key"]
    assert [t["name"] for t in lines] == chosen
    # 196 steps of 256 of the 50,000 training images: a point every 20 steps, and one at the epoch's end
    training = [t for t in curves["data"] if t["legendgroup"] in chosen and t["mode"] == "lines"]
    assert len(training) == 4 and all(len(t["x"]) == 10 and t["x"][-1] == 1.0 for t in training)
    at.multiselect(key="tr_compare").unselect(chosen[0]).run()
    assert {t["legendgroup"] for t in figure_with(at, "Training curves")["data"]} == {"key", chosen[1]}


def test_the_lessons_inputs_against_0_1_inputs_same_network_same_batches():
    at = open_train()
    use_network(at, "64", "relu")
    lesson = train_once(at)
    at.selectbox(key="tr_normalization").set_value("none")
    zero_one = train_once(at)
    assert (lesson.normalization, zero_one.normalization) == ("lesson", "none")
    assert zero_one.config == TrainConfig(epochs=1, batch_size=256, normalization="none")
    chosen = at.multiselect(key="tr_compare").value
    assert chosen[-1].endswith(f"inputs [0, 1]: test accuracy {zero_one.accuracy:.1%}")
    assert [t["name"] for t in figure_with(at, "Training curves")["data"]
            if t.get("showlegend") is not False and t["legendgroup"] != "key"][-2:] == chosen[-2:]
    assert "transforms.Normalize((0, ), (1, ))".replace(" ", "") in at.code[0].value.replace(" ", "")


# -- model files -------------------------------------------------------------------------------------

def test_an_uploaded_model_becomes_a_run_and_a_pickle_is_refused(trained_relu):
    state = {k: v.clone() for k, v in trained_relu.state_dict().items()}
    content = model_files.to_bytes(model_files.SavedModel(network.Network(network.Architecture(),
                                                                          network.Init(), 0), state,
                                              TrainConfig(epochs=10), name="lesson"))
    at = open_train()
    ok(at.file_uploader(key="tr_upload").upload("lesson.safetensors", content, "application/octet-stream")
       .run())
    assert not at.error
    run = at.session_state["runs"][-1]
    assert run.name == "lesson" and run.accuracy >= 0.96
    assert at.selectbox(key="tr_show").value.startswith("Run 1: lesson (784-128-64-10 relu, loaded): ")
    assert metric(at, "Training time") == "—"

    prank = pickle.dumps({"weights": [1, 2, 3]})
    ok(at.file_uploader(key="tr_upload").upload("model.safetensors", prank, "application/octet-stream").run())
    assert "PyTorch pickle" in at.error[0].value and "never opens them" in at.error[0].value
    assert len(at.session_state["runs"]) == 1


def test_an_uploaded_model_shows_what_its_file_recorded_of_training_and_validation(train_split, test_split):
    config = TrainConfig(epochs=4, batch_size=100, train_images=1000, validation=1000, early_stop=1)
    trained = runs.run(network.Network(network.Architecture((64,), ("relu",)), network.Init(), 0), config,
                        train_split, test_split)
    at = open_train()
    content = model_files.to_bytes(model_files.SavedModel.from_run(trained, "early"))
    ok(at.file_uploader(key="tr_upload").upload("early.safetensors", content, "application/octet-stream")
       .run())
    row = at.dataframe[0].value.iloc[0]
    assert row["training"] == "loaded from a file"
    assert (row["train accuracy"], row["validation accuracy"], row["best epoch"], row["kept epoch"]) == \
        (trained.train_evaluation.accuracy, trained.validation.accuracy, trained.best_epoch,
         trained.history.kept_epoch)
    assert pd.isna(row["seconds"])  # a file does not record how long it trained: blank, not 0.0
    assert metric(at, "Training accuracy") == f"{trained.train_evaluation.accuracy:.2%}"
    assert metric(at, "Validation accuracy") == f"{trained.validation.accuracy:.2%}"
    assert metric(at, "Best epoch") == str(trained.best_epoch)
    assert any("as the model file recorded them" in c.value for c in at.caption)
