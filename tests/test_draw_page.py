"""The Draw page through Streamlit's AppTest: what a visitor sees before drawing, and the upload path.

Drawing itself happens in the browser (tests/e2e/test_draw.py); here the canvas sends nothing, so
it is blank, and uploads bring real MNIST digits in.
"""

import base64
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest
from test_shift_test import mlp_and_cnn_runs

import lab_ui
from mnistlab import model_files, network, preprocess, runs, train
from mnistlab.train_config import TrainConfig

APP = "../app.py"
TIMEOUT = 60


@pytest.fixture(autouse=True)
def no_saved_models(tmp_path, monkeypatch, fresh_caches):
    monkeypatch.setenv("MNISTLAB_MODELS", str(tmp_path / "models"))  # no saved models unless a test saves one


@pytest.fixture(scope="module")
def lesson_run(trained_relu, test_split):
    """The trained 784-128-64-10 network as a session's training run."""
    return runs.Run(network=network.Network(), config=TrainConfig(),
                    history=train.History(steps_per_epoch=938),
                    evaluation=train.evaluate(trained_relu, test_split),
                    state={k: v.clone() for k, v in trained_relu.state_dict().items()})


@pytest.fixture(scope="module")
def mlp_and_cnn(request, train_split, test_split, trained_cnn):
    """The shift test's MLP and CNN, trained briefly (kept in .pytest_cache)."""
    return mlp_and_cnn_runs(request.config.cache, train_split, test_split, trained_cnn)


def open_draw(runs=()) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["runs"] = list(runs)
    at.run()
    at.switch_page("pages/draw.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def upload(at: AppTest, name: str, content: bytes) -> AppTest:
    at.segmented_control(key="draw_source").set_value("Upload").run()
    at.file_uploader(key="draw_upload").upload(name, content, "image/png").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "PNG")
    return buf.getvalue()


def dark_on_light(test_split, index: int) -> bytes:
    """An MNIST test digit as a person might photograph it: black ink on white, 200×200."""
    big = Image.fromarray(255 - test_split.images[index].numpy()).resize((200, 200))
    return png(np.asarray(big))


def charts(at: AppTest) -> list[dict]:
    """The networks' probability figures (the network diagram, the shift test and the feature maps below
    them apart)."""
    return [f for f in all_charts(at) if f["layout"].get("meta") != {"figure": "network diagram"}
            and any(t["type"] == "bar" for t in f["data"])]


def shift_figures(at: AppTest) -> list[dict]:
    return [f for f in all_charts(at) if f["layout"].get("meta") == {"figure": "shift test"}]


def all_charts(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def test_the_network_that_predicts_is_drawn_reading_the_drawing(test_split, lesson_run):
    at = upload(open_draw([lesson_run]), "digit0.png", dark_on_light(test_split, 0))
    (diagram,) = [f for f in all_charts(at) if f["layout"].get("meta") == {"figure": "network diagram"}]
    texts_on_it = " ".join(str(t.get("text")) for t in diagram["data"])
    assert "fc1" in texts_on_it and "10 classes" in texts_on_it
    assert "The network, as it reads this drawing" in [h.value for h in at.subheader]


def bars(figure: dict) -> list[float]:
    """The 10 class probabilities of a view_classify figure."""
    (bar,) = [t for t in figure["data"] if t["type"] == "bar"]
    x = bar["x"]
    if isinstance(x, dict):  # Plotly sends numeric arrays as base64 typed arrays
        x = np.frombuffer(base64.b64decode(x["bdata"]), dtype=x["dtype"])
    return [float(v) for v in x]


def texts(at: AppTest) -> str:
    shown = [*at.markdown, *at.info, *at.warning]
    return "\n".join(e.value for e in shown)


def test_before_drawing_it_asks_for_a_digit_and_offers_a_quick_network():
    at = open_draw()
    assert "Draw a digit" in texts(at)
    assert not charts(at) and not at.error
    assert [b.label for b in at.button if b.key == "draw_train"] == ["Train a default network"]


def test_an_uploaded_digit_is_read_by_the_chosen_network(test_split, lesson_run):
    at = open_draw([lesson_run])
    assert at.multiselect(key="draw_models").value == [f"Run 1: {lesson_run.label()}"]
    right = 0
    for index in range(5):
        upload(at, f"digit{index}.png", dark_on_light(test_split, index))
        (figure,) = charts(at)
        ps = bars(figure)
        assert len(ps) == 10 and sum(ps) == pytest.approx(1, abs=1e-4)
        right += int(np.argmax(ps)) == int(test_split.labels[index])
        assert "What the network sees" in [h.value for h in at.subheader]
        at.file_uploader(key="draw_upload").clear().run()
    assert right >= 4

    at.multiselect(key="draw_models").set_value([]).run()  # no network chosen: nothing predicts
    upload(at, "digit0.png", dark_on_light(test_split, 0))
    assert not charts(at) and "Choose a network" in texts(at)


def test_every_stage_and_the_naive_resize_are_shown(test_split, lesson_run):
    at = upload(open_draw([lesson_run]), "seven.png", dark_on_light(test_split, 0))
    assert len(at.get("image")) == 6  # the upload itself and the five stages
    # All travel inside the page: Streamlit's media files vanish when the next run starts, and a
    # browser still fetching them would show broken images.
    assert all(i.proto.imgs[0].url.startswith("data:image/png;base64,") for i in at.get("image"))
    at.toggle(key="draw_naive").set_value(True).run()
    assert len(charts(at)) == 2  # the same network on the preprocessed and the naively resized digit
    assert "Naive resize" in texts(at)


@pytest.mark.parametrize("name, content, says", [
    ("notes.png", b"these are my notes, not a picture", "not a PNG or JPEG"),
    ("empty.png", b"", "empty"),
    ("dot.png", png(np.zeros((1, 1), np.uint8)), "1×1 pixels"),
])
def test_a_bad_upload_gets_a_message_and_the_page_stays_usable(test_split, lesson_run, name, content, says):
    at = upload(open_draw([lesson_run]), name, content)
    assert len(at.error) == 1 and says in at.error[0].value and name in at.error[0].value
    assert not charts(at)
    at.file_uploader(key="draw_upload").clear().upload("seven.png", dark_on_light(test_split, 0)).run()
    assert not at.error and len(charts(at)) == 1


def test_a_blank_upload_says_no_digit_was_found(lesson_run):
    at = upload(open_draw([lesson_run]), "white.png", png(np.full((100, 100), 255, np.uint8)))
    assert "No digit found" in texts(at) and not charts(at)


def test_saved_models_are_offered_and_compared_side_by_side(tmp_path, test_split, lesson_run):
    saved = model_files.SavedModel(lesson_run.network, lesson_run.state,
                             lesson_run.config, lesson_run.evaluation.metrics())
    model_files.save(saved, "lesson")
    at = open_draw([lesson_run])
    assert "Saved: lesson" in at.multiselect(key="draw_models").options
    at.multiselect(key="draw_models").select("Saved: lesson").run()
    upload(at, "seven.png", dark_on_light(test_split, 0))
    first, second = charts(at)
    assert bars(first) == pytest.approx(bars(second))  # the same weights, read from the file


def test_each_network_reads_the_digit_as_it_was_trained_to(train_split, test_split, lesson_run):
    splits = train_split, test_split
    zero_one = runs.run(network.Network(network.Architecture((32,)), network.Init(), 0),
                        TrainConfig(epochs=1, batch_size=128, normalization="none"), *splits)
    at = open_draw([lesson_run, zero_one])
    at.multiselect(key="draw_models").set_value([f"Run {i}: {r.label()}" for i, r in
                                                 enumerate([lesson_run, zero_one], 1)]).run()
    content = dark_on_light(test_split, 0)
    upload(at, "seven.png", content)
    digit = preprocess.preprocess(preprocess.read_image(content))
    with torch.no_grad():
        expected = [network.probabilities(run.model(), digit.input(run.normalization))[0].tolist()
                    for run in (lesson_run, zero_one)]
    assert [bars(c) for c in charts(at)] == [pytest.approx(ps, abs=1e-6) for ps in expected]


def test_an_untrained_network_is_labelled_as_such(test_split):
    at = open_draw()
    at.checkbox(key="draw_untrained").check().run()
    upload(at, "seven.png", dark_on_light(test_split, 0))
    assert len(charts(at)) == 1
    assert any("UNTRAINED" in m.value and "means nothing" in m.value for m in at.markdown)


def test_the_same_digit_read_twice_by_a_dropout_network_gets_the_same_probabilities(train_split, test_split):
    """Predicting is in eval mode: dropout drops nothing and batch norm uses its running statistics,
    so a network with both gives one answer per digit (and a single image needs no batch)."""
    arch = network.Architecture.parse("64,32", "relu", "0.5", batch_norm=True)
    run = runs.run(network.Network(arch), TrainConfig(epochs=1, batch_size=100, train_images=10_000),
                   train_split, test_split)
    at = open_draw([run])
    at.session_state["build"] = lab_ui.Build(network.Network(arch, seed=1))  # Build's network, untrained
    at.checkbox(key="draw_untrained").check().run()
    seen = []
    for _ in range(2):
        upload(at, "digit.png", dark_on_light(test_split, 0))
        seen.append([bars(f) for f in charts(at)])
        at.file_uploader(key="draw_upload").clear().run()
    assert len(seen[0]) == 2 and seen[0] == seen[1]
    assert int(np.argmax(seen[0][0])) == int(test_split.labels[0])


def test_an_mlp_and_a_cnn_take_the_shift_test_side_by_side(test_split, mlp_and_cnn):
    at = open_draw(mlp_and_cnn)
    labels = [f"Run {i}: {r.label()}" for i, r in enumerate(mlp_and_cnn, 1)]
    at.multiselect(key="draw_models").set_value(labels).run()
    upload(at, "seven.png", dark_on_light(test_split, 0))
    headings = [h.value for h in at.subheader]
    assert "Shift test: your drawing moved and turned" in headings
    assert "Feature maps of your drawing" in headings
    (figure,) = shift_figures(at)
    heatmaps = [t for t in figure["data"] if t["type"] == "heatmap"]
    assert len(heatmaps) == 2 and all(h["coloraxis"] == "coloraxis" for h in heatmaps)
    titles = " ".join(a["text"] for a in figure["layout"]["annotations"])
    assert "784-128-64-10" in titles and "conv 8:5" in titles and "P(7)" in titles
    assert any("still says 7 at" in m.value for m in at.markdown)
    assert len(all_charts(at)) == 2 + 1 + 1 + 1  # each network's bars, the diagram, the shift test, the maps

    at.selectbox(key="draw_shift_class").set_value("1").run()  # follow another class: both follow it
    assert not at.exception
    (figure,) = shift_figures(at)
    assert "P(1)" in " ".join(a["text"] for a in figure["layout"]["annotations"])


def test_without_a_cnn_the_shift_test_shows_and_feature_maps_wait_for_one(test_split, lesson_run):
    at = upload(open_draw([lesson_run]), "seven.png", dark_on_light(test_split, 0))
    assert len(shift_figures(at)) == 1
    assert "Feature maps of your drawing" not in [h.value for h in at.subheader]
    assert any("convolutional network" in c.value for c in at.caption)
