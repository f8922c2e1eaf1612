"""Every page through Streamlit's AppTest, on real MNIST: what a visitor sees, and that it reacts."""

import base64
import json

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from mnistlab.network import Architecture

APP = "../app.py"
pytestmark = pytest.mark.usefixtures("navigation_mode", "fresh_caches")  # see tests/conftest.py
TIMEOUT = 60  # the first run of a test loads MNIST from disk


def open_page(page: str | None = None, query_params: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update(query_params or {})
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def code_text(at: AppTest) -> str:
    return "\n".join(c.value for c in at.code)


def _arrays(obj):
    """Plotly's JSON packs arrays as base64 {"dtype", "bdata"}; unpack them to numpy."""
    if isinstance(obj, dict):
        if "bdata" in obj and "dtype" in obj:
            a = np.frombuffer(base64.b64decode(obj["bdata"]), dtype=np.dtype(obj["dtype"]))
            shape = obj.get("shape")  # "28, 28" for a 2-D array
            return a.reshape([int(n) for n in str(shape).split(",")]) if shape else a
        return {k: _arrays(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_arrays(v) for v in obj]
    return obj


def figures(at: AppTest) -> list[dict]:
    """Every Plotly figure on the page, as a dict with numpy arrays."""
    return [_arrays(json.loads(chart.proto.spec)) for chart in at.get("plotly_chart")]


def figure_with(at: AppTest, text: str) -> dict:
    """The figure whose title or a subplot title contains `text`."""
    for fig in figures(at):
        layout = fig.get("layout", {})
        titles = [layout.get("title", {}).get("text") or ""] + [a.get("text", "") for a in
                                                                 layout.get("annotations", [])]
        if any(text in t for t in titles):
            return fig
    raise AssertionError(f"no figure titled {text!r}")


def total_parameters(at: AppTest) -> int:
    return int(at.metric[0].value.replace(",", ""))


# -- the way in ----------------------------------------------------------------------------------

def test_the_root_opens_on_the_start_page_with_the_path_in_order():
    at = open_page()
    assert at.title[0].value == "MNIST Lab" and not at.error and not at.warning
    assert "Lesson → Build → Train → Explore → Draw" in at.markdown[0].value
    links = [(link.proto.page, link.proto.label) for link in at.get("page_link")]
    assert links[:5] == [("lesson", "1. Lesson"), ("build", "2. Build"), ("train", "3. Train"),
                         ("explore", "4. Explore"), ("draw", "5. Draw")]
    assert len(at.markdown) >= 6  # a sentence for each step of the path
    at.switch_page("pages/lesson.py").run()  # the Lesson link, as followed: no step in the address
    assert at.header[0].value.startswith("1. ") and not at.warning
    assert all(i.value.startswith("**Changed since the 2018 lesson.**") for i in at.info)  # no notice


def test_dataset_from_tensors_and_the_lesson_show_the_same_first_image():
    dataset = open_page("pages/dataset.py")
    images, labels = dataset.session_state["ds_batch"]
    stored = figure_with(dataset, "images[0], label")  # the 8-bit values MNIST stores
    assert stored["layout"]["title"]["text"].startswith(f"images[0], label {int(labels[0])}:")

    lesson = open_page("pages/lesson.py", {"step": "3"})  # print(labels[0]); px.imshow(images[0])
    assert lesson.code[1].value == f"tensor({int(labels[0])})"
    drawn = np.asarray(figures(lesson)[0]["data"][0]["z"], dtype=float)
    stored_z = np.asarray(stored["data"][0]["z"], dtype=float)
    assert np.array_equal(((drawn * 0.5 + 0.5) * 255).round(), stored_z)
    assert np.allclose(drawn, images[0, 0].numpy())

    tensors = open_page("pages/tensors.py")
    by_hand = figure_with(tensors, "images[0] through the untrained network")
    assert f"image (label {int(labels[0])})" in [a["text"] for a in by_hand["layout"]["annotations"]]
    assert np.allclose(np.asarray(by_hand["data"][0]["z"], dtype=float), images[0, 0].numpy())


# -- Dataset --------------------------------------------------------------------------------------

def test_dataset_shows_the_lessons_shapes():
    at = open_page("pages/dataset.py")
    text = code_text(at)
    assert "torch.Size([64, 1, 28, 28])" in text
    assert "torch.Size([64])" in text and "torch.Size([64, 784])" in text
    assert not at.error


def test_dataset_next_batch_and_batch_size():
    at = open_page("pages/dataset.py")
    assert at.subheader[0].value.startswith("Batch 1 of 938")
    at.button[0].click().run()
    assert at.subheader[0].value.startswith("Batch 2 of 938")
    at.number_input(key="ds_batch_size").set_value(100).run()
    assert "torch.Size([100, 1, 28, 28])" in code_text(at)
    assert at.subheader[0].value.startswith("Batch 1 of 600")



def test_dataset_browses_the_test_split_without_its_hidden_images():
    at = open_page("pages/dataset.py")
    at.session_state["ds_split"] = "test"
    at.run()
    assert at.subheader[0].value.startswith("Batch 1 of 79")  # 5,000 of the 10,000 test images
    assert len(at.session_state["ds_loader"].split) == 5_000
    assert "Test images 5,000 to 9,999 are kept hidden for class challenges" in "\n".join(
        c.value for c in at.caption)


def test_dataset_shows_one_image_pixel_by_pixel_before_and_after_normalize():
    at = open_page("pages/dataset.py")
    images, labels = at.session_state["ds_batch"]
    stored = ((images[5, 0] * 0.5 + 0.5) * 255).round()
    at.slider(key="ds_index").set_value(5).run()
    raw = figure_with(at, "images[5], label")
    assert raw["layout"]["title"]["text"].startswith(f"images[5], label {int(labels[5])}: stored 8-bit")
    assert np.array_equal(np.asarray(raw["data"][0]["z"], dtype=float), stored.numpy())
    at.segmented_control(key="ds_view").set_value("−1 to 1 (the lesson's Normalize)").run()
    after = figure_with(at, "Normalize((0.5,), (0.5,))")
    assert np.allclose(np.asarray(after["data"][0]["z"], dtype=float), images[5, 0].numpy())
    at.segmented_control(key="ds_view").set_value("0 to 1 (ToTensor alone)").run()
    zero_one = figure_with(at, "images[5] after ToTensor (÷255)")
    assert np.allclose(np.asarray(zero_one["data"][0]["z"], dtype=float), stored.numpy() / 255)
    assert not any("stored 8-bit" in c.proto.spec for c in at.get("plotly_chart"))  # one view at a time
    at.slider(key="ds_index").set_value(60).run()
    at.number_input(key="ds_batch_size").set_value(10).run()  # image 60 is gone: back to the first
    assert not at.exception and at.slider(key="ds_index").value == 0 and at.slider(key="ds_index").max == 9


# -- every page -----------------------------------------------------------------------------------

@pytest.mark.parametrize("page", ["pages/dataset.py", "pages/tensors.py", "pages/build.py"])
def test_every_page_renders_without_error(page):
    at = open_page(page)
    assert at.title and not at.error and not at.exception
    assert "Device:" in at.sidebar.caption[0].value


# -- From tensors ---------------------------------------------------------------------------------

def test_tensors_shapes_follow_the_hidden_size():
    at = open_page("pages/tensors.py")
    shapes = dict(zip(*at.dataframe[0].value.to_dict("list").values()))
    assert shapes["W1"] == "torch.Size([784, 256])" and shapes["B2"] == "torch.Size([1, 10])"
    at.number_input(key="t_hidden").set_value(100).run()
    shapes = dict(zip(*at.dataframe[0].value.to_dict("list").values()))
    assert shapes["W1"] == "torch.Size([784, 100])" and shapes["hidden"] == "torch.Size([64, 100])"


def test_tensors_probabilities_rows_sum_to_one_and_random_weights_saturate():
    at = open_page("pages/tensors.py")
    sums = code_text(at).split(">>> probabilities.sum(dim=1)\n")[1]
    assert sums.count("1.0000") == 64
    fig = figure_with(at, "of activations saturated")
    share = int(fig["layout"]["annotations"][0]["text"].split("hidden: ")[1].split("%")[0])
    assert share > 50
    bars = figure_with(at, "through the untrained network")["data"][1]
    assert abs(sum(bars["x"]) - 1) < 1e-5


# -- Build ----------------------------------------------------------------------------------------

def test_build_hidden_sizes_change_the_printed_model_and_parameter_count():
    at = open_page("pages/build.py")
    assert "Linear(in_features=784, out_features=128, bias=True)" in at.code[0].value
    assert total_parameters(at) == Architecture((128, 64)).n_parameters == 109_386
    at.number_input(key="b_size_0").set_value(256).run()
    assert "Linear(in_features=784, out_features=256, bias=True)" in at.code[0].value
    assert "Linear(in_features=256, out_features=64, bias=True)" in at.code[0].value
    assert total_parameters(at) == Architecture((256, 64)).n_parameters


def test_build_adds_and_removes_hidden_layers():
    at = open_page("pages/build.py")
    at.button(key="b_add").click().run()
    assert "(fc3): Linear(in_features=64, out_features=64, bias=True)" in at.code[0].value
    at.selectbox(key="b_act_2").set_value("tanh").run()
    assert "(tanh3): Tanh()" in at.code[0].value
    at.button(key="b_remove_0").click().run()  # the first layer goes; the others move up
    assert "(fc1): Linear(in_features=784, out_features=64, bias=True)" in at.code[0].value
    assert "(tanh2): Tanh()" in at.code[0].value and "fc3" not in at.code[0].value


def open_tab(at: AppTest, tab: str) -> AppTest:
    """Clicks one of Build's tabs: only the open tab's content runs, so this reruns the page."""
    at.session_state["b_tab"] = tab
    return at.run()


def test_build_draws_only_the_open_tabs_figures():
    at = open_page("pages/build.py")
    assert not figures(at)  # the Code tab is open
    assert len(figures(open_tab(at, "Weights and biases"))) == 2
    assert [f["layout"]["title"]["text"] for f in figures(open_tab(at, "Forward pass"))] == [
        "Untrained 784-128-64-10 relu, init default"]


def test_build_network_tab_draws_the_network_for_the_chosen_image(test_split):
    at = open_tab(open_page("pages/build.py"), "Network")
    assert not at.exception and not at.error
    fig = figure_with(at, "Untrained 784-128-64-10 relu: test image 0, label 7")
    image = next(t for t in fig["data"] if t["type"] == "heatmap")
    assert np.allclose(image["z"], test_split.normalized([0])[0, 0].numpy())  # the input layer
    headers = " ".join(fig["data"][-1]["text"])
    assert "16 of 128" in headers and "16 of 64" in headers and "10 classes" in headers
    dots = [t for t in fig["data"] if t.get("mode") == "markers"]
    assert [len(t["y"]) for t in dots] == [16, 16, 10]
    assert sum(dots[-1]["marker"]["color"]) == pytest.approx(1, abs=1e-5)  # the class probabilities
    assert any("strongest incoming" in c.value for c in at.caption)  # what the colours and widths mean
    at.number_input(key="b_image").set_value(5).run()
    assert figure_with(at, f"test image 5, label {int(test_split.labels[5])}")
    open_tab(at, "Forward pass")  # one image choice for both tabs
    assert at.number_input(key="b_image").value == 5


def test_build_zero_bias_init_makes_the_bias_histograms_a_spike_at_zero():
    at = open_tab(open_page("pages/build.py"), "Weights and biases")
    biases = [t for t in figure_with(at, "fc1.bias")["data"] if ".bias" in t["name"]]
    assert all(len(t["x"]) > 1 for t in biases)  # PyTorch's default: spread out
    at.checkbox(key="b_zero_bias").check().run()
    biases = [t for t in figure_with(at, "fc1.bias")["data"] if ".bias" in t["name"]]
    assert [(list(t["x"]), list(t["y"])) for t in biases] == [([0.0], [128]), ([0.0], [64]), ([0.0], [10])]
    assert at.query_params["bias"] == "zero"


def test_build_url_round_trip_restores_the_same_network_and_weights():
    at = open_page("pages/build.py")
    at.number_input(key="b_size_0").set_value(200).run()
    at.selectbox(key="b_act_1").set_value("sigmoid").run()
    at.radio(key="b_init").set_value("Normal(0, std)").run()
    at.select_slider(key="b_std").set_value(0.05).run()
    at.number_input(key="b_seed").set_value(42).run()
    link = dict(at.query_params)
    assert link == {"hidden": "200,64", "act": "relu,sigmoid", "std": "0.05", "bias": "default", "seed": "42"}
    tabs = {"Weights and biases": "fc1.weight", "Forward pass": "Untrained"}
    seen = {tab: figure_with(open_tab(at, tab), title)["data"] for tab, title in tabs.items()}

    st.cache_resource.clear()  # the figures are drawn afresh for the other browser
    other = open_page("pages/build.py", link)  # another browser: a new session from the link
    assert not other.warning
    assert other.code[0].value == at.code[0].value
    assert other.number_input(key="b_seed").value == 42 and other.select_slider(key="b_std").value == 0.05
    for tab, title in tabs.items():  # weight histograms and the forward pass agree exactly
        a, b = seen[tab], figure_with(open_tab(other, tab), title)["data"]
        for ta, tb in zip(a, b):
            np.testing.assert_array_equal(ta.get("x"), tb.get("x"))
            np.testing.assert_array_equal(ta.get("y"), tb.get("y"))
    # A different seed gives different weights.
    other.number_input(key="b_seed").set_value(43).run()
    assert not np.array_equal(figure_with(other, "Untrained")["data"][1]["x"],
                              figure_with(at, "Untrained")["data"][1]["x"])


def test_build_bad_link_values_fall_back_with_a_visible_notice():
    at = open_page("pages/build.py", {"hidden": "10000000,abc", "std": "nan", "seed": "-3"})
    notices = [w.value for w in at.warning]
    assert len(notices) == 3 and not at.error
    assert "Linear(in_features=784, out_features=128, bias=True)" in at.code[0].value  # the default
    assert at.query_params["hidden"] == "128,64" and at.query_params["seed"] == "0"
    at.number_input(key="b_seed").set_value(1).run()  # the notices go once the visitor moves on
    assert not at.warning


def test_build_names_every_bad_link_value_and_cleans_the_address():
    at = open_page("pages/build.py", {"hidden": "abc", "act": "tanh,foo", "seed": "-1"})
    notices = [w.value for w in at.warning]
    assert [n.split("=")[0] for n in notices] == ["Link value hidden", "Link value act", "Link value seed"]
    assert all(w.proto.icon == ":material/link_off:" for w in at.warning)  # as Explore's
    assert dict(at.query_params) == {"hidden": "128,64", "act": "relu,relu", "std": "default",
                                     "bias": "default", "seed": "0"}  # no bad value left in it


def test_build_too_many_parameters_is_an_error_not_a_traceback():
    at = open_page("pages/build.py")
    at.number_input(key="b_size_0").set_value(2048).run()
    at.number_input(key="b_size_1").set_value(1024).run()
    at.button(key="b_add").click().run()
    at.number_input(key="b_size_2").set_value(2048).run()
    assert not at.exception
    assert "parameters" in at.error[0].value and "5,000,000" in at.error[0].value
    at.button(key="b_remove_2").click().run()  # the page stays usable
    assert not at.error and total_parameters(at) == Architecture((2048, 1024)).n_parameters


@pytest.fixture
def fresh_server():
    """Streamlit's mode on a server nobody has opened at its root yet (see navigation_mode)."""


def test_a_shared_link_opened_first_on_a_fresh_server_still_goes_through_app_py(fresh_server):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update({"hidden": "30", "act": "tanh", "seed": "9"})
    at.run()
    at.switch_page("pages/build.py").run()
    assert not at.exception and not at.warning
    assert "Device:" in at.sidebar.caption[0].value  # app.py's sidebar: app.py ran
    assert "(tanh1): Tanh()" in at.code[0].value and at.number_input(key="b_seed").value == 9


def test_build_device_choice_shows_in_the_sidebar():
    at = open_page("pages/build.py")
    devices = at.selectbox(key="b_device").options
    at.selectbox(key="b_device").set_value(devices[-1]).run()
    assert f"**Device:** {devices[-1]}" in at.sidebar.caption[0].value
    assert at.session_state["build"].device == devices[-1]


def test_without_files_or_network_the_app_says_how_to_supply_mnist(tmp_path, monkeypatch):
    from torchvision import datasets

    monkeypatch.setenv("MNISTLAB_DATA", str(tmp_path))
    monkeypatch.setattr(datasets.MNIST, "mirrors", [])  # as if offline: no server to download from
    at = open_page()
    assert not at.exception
    message = at.error[0].value
    assert len(at.error) == 1 and "downloading it failed" in message  # one message: what happened,
    assert "connect to the internet once" in message and "MNISTLAB_DATA" in message  # and the ways out
    assert not at.get("expandable") and not at.info  # no "Downloading…" box left, no second notice
    assert not at.title  # the page itself did not run
    assert list(tmp_path.iterdir()) == []  # no empty MNIST/raw/ left behind


def test_build_comes_back_as_the_visitor_left_it_after_another_page():
    at = open_page("pages/build.py")
    at.number_input(key="b_size_1").set_value(32).run()
    at.number_input(key="b_seed").set_value(5).run()
    at.switch_page("pages/dataset.py").run()
    at.query_params.clear()  # the browser's address for the Dataset page carries no Build link
    at.switch_page("pages/build.py").run()
    assert "(fc2): Linear(in_features=128, out_features=32, bias=True)" in at.code[0].value
    assert at.number_input(key="b_seed").value == 5
    assert at.query_params["hidden"] == "128,32" and at.query_params["seed"] == "5"


def test_build_code_style_changes_print_model_and_the_code():
    at = open_page("pages/build.py")
    assert at.code[0].value.startswith("Sequential(\n  (fc1): Linear(")  # the OrderedDict style
    at.radio(key="b_style").set_value("indexed").run()
    assert "  (0): Linear(in_features=784, out_features=128, bias=True)" in at.code[0].value
    assert "  (5): Softmax(dim=1)" in at.code[0].value
    assert "nn.Sequential(\n    nn.Linear(784, 128)," in at.code[1].value
    at.radio(key="b_style").set_value("module").run()
    assert at.code[0].value.startswith("Network(\n  (fc1): Linear(")
    assert "class Network(nn.Module):" in at.code[1].value
    assert at.get("download_button")


def test_build_dropout_and_batch_norm_show_in_print_model_the_count_the_link_and_the_forward_pass():
    at = open_page("pages/build.py")
    at.number_input(key="b_drop_0").set_value(0.5).run()
    at.toggle(key="b_bn").set_value(True).run()
    printed = at.code[0].value
    assert "(bn1): BatchNorm1d(128, eps=1e-05" in printed
    assert "(dropout1): Dropout(p=0.5, inplace=False)" in printed
    assert "(bn2): BatchNorm1d(64" in printed and "dropout2" not in printed  # layer 2 keeps p = 0
    assert total_parameters(at) == Architecture((128, 64), batch_norm=True).n_parameters == 109_386 + 2 * 192
    assert dict(at.query_params) == {"hidden": "128,64", "act": "relu,relu", "std": "default",
                                  "bias": "default", "seed": "0", "dropout": "0.5,0", "bn": "1"}
    at.button(key="b_add").click().run()  # a new layer takes the last one's dropout (here 0)
    assert at.number_input(key="b_drop_2").value == 0
    at.button(key="b_remove_0").click().run()  # the layers below move up with their dropout
    assert at.number_input(key="b_drop_0").value == 0 and "dropout" not in at.code[0].value
    # eval mode: the forward pass of an untrained network with dropout is the same each time
    other = open_page("pages/build.py", {"hidden": "64", "dropout": "0.9", "bn": "1"})
    assert not other.warning and "(dropout1): Dropout(p=0.9, inplace=False)" in other.code[0].value
    open_tab(other, "Forward pass")
    first = figure_with(other, "Untrained")["data"][1]["x"]
    st.cache_resource.clear()
    other.run()
    np.testing.assert_array_equal(figure_with(other, "Untrained")["data"][1]["x"], first)
    for tab in ("Activations", "Network"):  # batch norm reads one image with its running statistics
        open_tab(other, tab)
        assert not other.exception and not other.error
