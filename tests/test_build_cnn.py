"""Build and Train for a CNN: convolutions and pools added, moved and removed on Build, the lesson's
table of shapes with the core's counts, the filters and feature maps, a layer that no longer fits
told beside it, the link, and Train training the same network with every result tab. Real MNIST."""

import dataclasses
import json

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from mnistlab import share
from mnistlab.layers import Conv
from mnistlab.network import Architecture, Init, Network

APP = "../app.py"
pytestmark = pytest.mark.usefixtures("navigation_mode", "fresh_caches")  # see tests/conftest.py
TIMEOUT = 60


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def open_build(link: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update(link or {})
    at.run()
    return ok(at.switch_page("pages/build.py").run())


def open_tab(at: AppTest, tab: str) -> AppTest:
    at.session_state["b_tab"] = tab
    return ok(at.run())


def chart_titles(at: AppTest) -> list[str]:
    return [json.loads(c.proto.spec)["layout"].get("title", {}).get("text", "")
            for c in at.get("plotly_chart")]


def blocks(node):
    for child in getattr(node, "children", {}).values():
        if hasattr(child, "children"):
            yield child
            yield from blocks(child)


def errors_beside(at: AppTest, key: str) -> list[str]:
    """The errors in the box of the layer whose field is `key` (b_ch_4: layer 5's): the largest block
    holding its fields and no other layer's."""
    def own(block):
        keys = [w.key for w in block.number_input]
        return key in keys and all(k.rsplit("_", 1)[1] == key.rsplit("_", 1)[1] and k.split("_")[1] in
                                   ("ch", "k", "pad", "cdrop", "pool") for k in keys)
    box = max((b for b in blocks(at.main) if own(b)), key=lambda b: len(list(blocks(b))))
    return [e.value for e in box.error]


def shape_rows(at: AppTest) -> list[dict]:
    return at.dataframe[0].value.to_dict("records")


def the_cnn(at: AppTest) -> AppTest:
    """ConvNetJS's MNIST layout, added button by button to the lesson's network: 8:5, pool, 16:5, pool."""
    for kind in ("conv", "pool", "conv", "pool"):
        ok(at.button(key=f"b_add_{kind}").click().run())
    return at


def test_a_conv_and_a_pool_added_show_the_lessons_shapes_and_the_cores_counts():
    at = the_cnn(open_build())
    arch = Architecture.parse("128,64", "relu", conv="8:5,pool,16:5,pool", pool=False)
    assert at.session_state["build"].network.arch == arch
    assert not at.error and "Layers and shapes" in [s.value for s in at.subheader]
    assert at.code[0].value.replace("\N{NO-BREAK SPACE}", " ") == (
        "(64, 1, 28, 28) → (64, 8, 24, 24) → (64, 8, 12, 12) → (64, 16, 8, 8) → "
        "(64, 16, 4, 4) → (64, 256) → (64, 128) → (64, 64) → (64, 10)")
    rows = shape_rows(at)
    assert [r["layer"] for r in rows] == ["conv1", "pool1", "conv2", "pool2", "flatten", "fc1", "fc2",
                                          "output"]
    assert [(r["parameters"], r["multiply-adds"]) for r in rows] == [
        (t["parameters"], t["macs"]) for t in arch.table()]
    assert rows[0]["output shape"] == "(64, 8, 24, 24)" and rows[0]["parameters"] == 8 * 25 + 8
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {"Total parameters": f"{arch.n_parameters:,}",
                       "Multiply-adds per image": f"{arch.macs:,}"}
    printed = at.code[1].value  # print(model)
    assert "(conv1): Conv2d(1, 8, kernel_size=(5, 5), stride=(1, 1))" in printed
    assert "(pool2): MaxPool2d(kernel_size=2" in printed and "(flatten): Flatten(" in printed
    assert at.query_params["conv"] == "8:5,pool,16:5,pool"
    for style in ("indexed", "module", "functional"):  # the four code styles write the convolutions
        at.radio(key="b_style").set_value(style).run()
        assert "Conv2d(" in at.code[1].value or "conv2d(" in at.code[2].value
        assert "nn.Conv2d(8, 16, kernel_size=5)" in at.code[2].value


def test_no_hidden_layer_after_convolutions_and_per_layer_fields_reach_the_network_and_the_link():
    at = the_cnn(open_build())
    ok(at.button(key="b_remove_0").click().run())
    ok(at.button(key="b_remove_0").click().run())  # no hidden layers: allowed after convolutions
    assert at.session_state["build"].network.arch.hidden == ()
    assert at.button(key="b_fremove_0").disabled is False
    at.selectbox(key="b_cact_2").set_value("tanh").run()
    at.number_input(key="b_cdrop_0").set_value(0.25).run()
    at.number_input(key="b_pad_2").set_value(2).run()
    arch = ok(at).session_state["build"].network.arch
    assert arch.features_text() == "8:5,pool,16:5:2,pool" and arch.hidden == ()
    assert [f.activation for f in arch.features if isinstance(f, Conv)] == ["relu", "tanh"]
    assert dict(at.query_params) == {"hidden": "", "act": "", "std": "default", "bias": "default",
                                     "seed": "0", "conv": "8:5,pool,16:5:2,pool", "conv_act": "relu,tanh",
                                     "conv_dropout": "0.25,0"}
    assert shape_rows(at)[-1] == {"layer": "output", "output shape": "(64, 10)",
                                  "parameters": 16 * 6 * 6 * 10 + 10, "multiply-adds": 16 * 6 * 6 * 10}


def test_layers_move_up_and_down_and_go():
    at = the_cnn(open_build())
    ok(at.button(key="b_up_1").click().run())  # the first pool before the first convolution
    assert at.session_state["build"].network.arch.features_text() == "pool,8:5,16:5,pool"
    ok(at.button(key="b_down_0").click().run())
    assert at.session_state["build"].network.arch.features_text() == "8:5,pool,16:5,pool"
    ok(at.button(key="b_fremove_2").click().run())
    assert at.session_state["build"].network.arch.features_text() == "8:5,pool,pool"
    assert at.number_input(key="b_pool_2").value == 2


def test_a_layer_that_no_longer_fits_is_told_beside_it_and_the_page_stays_usable():
    at = the_cnn(open_build())
    ok(at.button(key="b_add_conv").click().run())  # a 32:5 after 4×4 maps
    assert [e.value for e in at.error] == [
        "Layer 5: a 5×5 kernel does not fit the 4×4 maps after layer 4. Use a smaller kernel, more padding, "
        "or fewer pools before it."]
    assert errors_beside(at, "b_ch_4") == [at.error[0].value]  # in layer 5's own box, with its fields
    assert errors_beside(at, "b_ch_2") == []
    assert not any("Conv2d" in c.value for c in at.code), "the old network is not shown as if built"
    at.number_input(key="b_pad_4").set_value(1).run()  # 4 + 2 ≥ 5: it fits again
    assert not ok(at).error and "(64, 32, 2, 2)" in at.code[0].value.replace("\N{NO-BREAK SPACE}", " ")
    at.number_input(key="b_k_4").set_value(12).run()  # a field out of range: the core's message, not rounded
    assert [e.value for e in at.error] == ["Layer 5: A convolution's kernel must be from 1 to 11; got 12."]
    at.number_input(key="b_k_4").set_value(2.5).run()
    assert at.error[0].value == ("Layer 5: A convolution's kernel must be a whole number from 1 to 11; "
                                 "got '2.5'.")
    ok(at.button(key="b_fremove_4").click().run())  # remove it: all is well
    assert not at.error and at.session_state["build"].network.arch.features_text() == "8:5,pool,16:5,pool"


def test_the_filters_and_feature_maps_tabs_draw_the_untrained_cnn_and_warm_reruns_reuse_them():
    at = the_cnn(open_build())
    tabs = [t.label for t in at.tabs]
    assert tabs == ["Code", "Network", "Filters", "Feature maps", "Weights and biases", "Forward pass"]
    assert chart_titles(open_tab(at, "Filters")) == ["Untrained filters: init default, seed 0"]
    assert chart_titles(open_tab(at, "Feature maps")) == ["Untrained: test image 0, label 7"]
    at.number_input(key="b_image").set_value(3).run()
    assert chart_titles(ok(at)) == ["Untrained: test image 3, label 0"]
    spec = at.get("plotly_chart")[0].proto.spec
    assert ok(at.run()).get("plotly_chart")[0].proto.spec == spec
    for tab in ("Network", "Weights and biases", "Forward pass"):
        assert chart_titles(open_tab(at, tab)) and not at.error
    assert not any("fc1 weights as" in t for t in chart_titles(open_tab(at, "Weights and biases")))


@pytest.mark.parametrize("link, tabs", [
    ({"hidden": "", "conv": "pool"},
     ["Code", "Network", "Feature maps", "Weights and biases", "Forward pass"]),
    ({"hidden": "", "conv": "4:3,pool", "bn": "1", "conv_dropout": "0.5"},
     ["Code", "Network", "Filters", "Feature maps", "Weights and biases", "Forward pass"])])
def test_every_tab_of_a_cnn_without_hidden_layers_renders(link, tabs):
    at = open_build(link)
    assert not at.warning and [t.label for t in at.tabs] == tabs  # pools alone have no filters
    for tab in tabs:
        assert not open_tab(at, tab).error


def test_a_cnn_link_opens_the_same_network_and_a_bad_conv_is_a_notice_that_keeps_the_rest():
    state = Network(Architecture.parse("32", "tanh", conv="4:3:1,pool,8:3", pool=False), Init(True, 0.05), 7)
    at = open_build(share.encode(state))
    assert not at.warning and at.session_state["build"].network == state
    assert at.number_input(key="b_ch_2").value == 8 and at.number_input(key="b_pad_0").value == 1
    assert at.selectbox(key="b_cact_0").value == "tanh"

    other = open_build({"hidden": "32", "act": "tanh", "seed": "7", "conv": "8:5,pool,16:5,pool,16:5"})
    notices = [w.value for w in other.warning]
    assert len(notices) == 1 and "conv='8:5,pool,16:5,pool,16:5'" in notices[0]
    assert "Layer 5: a 5×5 kernel does not fit the 4×4 maps after layer 4" in notices[0]
    assert other.session_state["build"].network == Network(Architecture((32,), "tanh"), seed=7)
    assert not other.error and "conv" not in other.query_params


def test_an_mlp_build_page_is_as_before():
    at = open_build()
    assert [t.label for t in at.tabs] == ["Code", "Network", "Weights and biases", "Forward pass",
                                         "Activations"]
    assert [s.value for s in at.subheader][:3] == ["Convolutions", "Hidden layers",
                                                   "Initial weights"]
    assert at.metric[0].label == "Total" and "conv" not in at.query_params


def test_train_trains_the_builds_cnn_and_every_result_tab_renders(monkeypatch):
    at = the_cnn(open_build())
    at.button(key="b_remove_1").click().run()
    at.number_input(key="b_size_0").set_value(16).run()
    net = at.session_state["build"].network
    at.switch_page("pages/train.py").run()
    ok(at)
    assert at.text_input(key="tr_conv").value == "8:5,pool,16:5,pool"
    assert net.arch.label() in at.markdown[0].value
    at.slider(key="tr_epochs").set_value(1).run()
    at.selectbox(key="tr_train_images").set_value(1000)  # a quick training: few images
    at.select_slider(key="tr_batch").set_value(256)
    ok(at.button(key="tr_train").click().run())
    assert at.session_state["train_job"].wait(120)
    ok(at.run())
    assert "tr_error" not in at.session_state, at.session_state["tr_error"]
    run = at.session_state["runs"][-1]
    assert run.network == net and run.arch.is_cnn
    assert [t.label for t in at.tabs] == ["Learning dynamics", "Confusion matrix (test)", "Mistakes (test)",
                                         "Weights", "Training code", "Model file"]
    titles = chart_titles(at)
    assert "Filters after training" in titles  # the Weights tab: conv1's and conv2's filters
    assert any("Replay" in t for t in titles)  # conv1's filters over the epochs
    assert "trainloader" in "\n".join(c.value for c in at.code)  # the training code
    link = next(p for p in at.get("page_link") if "Build" in p.proto.label and p.proto.query_string)
    assert "conv=8%3A5%2Cpool%2C16%3A5%2Cpool" in link.proto.query_string


def test_train_changes_the_convolutions_as_typed_with_the_cores_messages():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    ok(at.switch_page("pages/train.py").run())
    at.text_input(key="tr_conv").set_value("8:5,pool,16:5,pool,16:5").run()
    at.button(key="tr_use").click().run()
    assert at.error[0].value.startswith("Layer 5: a 5×5 kernel does not fit the 4×4 maps after layer 4")
    at.text_input(key="tr_conv").set_value("8:5,pool").run()
    at.text_input(key="tr_hidden").set_value("").run()
    at.button(key="tr_use").click().run()
    assert not ok(at).error
    assert at.session_state["build"].network.arch == Architecture.parse("", "relu", conv="8:5,pool",
                                                                        pool=False)


def test_train_keeps_builds_convolution_activations_and_dropout_when_only_the_hidden_sizes_change():
    arch = Architecture.parse("32", "relu", dropout="0.3", batch_norm=True, conv="4:3,pool", pool=False)
    arch = dataclasses.replace(arch, features=(Conv(4, 3, activation="tanh", dropout=0.2), arch.features[1]))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update(share.encode(Network(arch)))
    at.run()
    ok(at.switch_page("pages/build.py").run())
    at.query_params.clear()
    ok(at.switch_page("pages/train.py").run())
    at.text_input(key="tr_hidden").set_value("48").run()
    at.button(key="tr_use").click().run()
    assert at.session_state["build"].network.arch == dataclasses.replace(arch, hidden=(48,))
    # batch norm and each hidden layer's dropout stay too; a layer added here has none
    at.text_input(key="tr_hidden").set_value("48,16").run()
    at.button(key="tr_use").click().run()
    assert at.session_state["build"].network.arch == dataclasses.replace(
        arch, hidden=(48, 16), dropout=(0.3, 0.0), activations=("relu", "relu"))
    st.cache_resource.clear()


def test_the_live_view_draws_a_training_cnn_as_its_feature_maps():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update({"hidden": "", "conv": "4:5,pool"})
    at.run()
    ok(at.switch_page("pages/build.py").run())
    at.query_params.clear()
    ok(at.switch_page("pages/train.py").run())
    at.slider(key="tr_epochs").set_value(20)
    at.select_slider(key="tr_batch").set_value(8)  # far more steps than the test waits for
    ok(at.button(key="tr_train").click().run())
    job = at.session_state["train_job"]
    try:
        for _ in range(100):  # until the loop has its first batch
            if job.live_snapshot() is not None and job.latest is not None:
                break
            job.wait(0.1)
        ok(at.run())
        titles = chart_titles(at)
        assert "The network as it learns, on test image 0" in titles
        assert any(t.startswith("While it trains") for t in titles)
    finally:
        job.stop()
        assert job.wait(60)
    ok(at.run())
    assert at.session_state["runs"][-1].arch.features_text() == "4:5,pool"


def test_a_network_of_pools_alone_trains_and_every_result_tab_renders():
    at = open_build({"hidden": "", "conv": "pool"})
    at.query_params.clear()
    ok(at.switch_page("pages/train.py").run())
    at.slider(key="tr_epochs").set_value(1)
    at.selectbox(key="tr_train_images").set_value(1000)
    ok(at.button(key="tr_train").click().run())
    assert at.session_state["train_job"].wait(120)
    ok(at.run())  # no replay: its first weights read pooled maps, not images
    assert at.session_state["runs"][-1].arch.features_text() == "pool" and "tr_error" not in at.session_state
