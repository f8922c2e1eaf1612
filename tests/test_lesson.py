"""The lesson's 14 steps on real MNIST: each prints what the lesson's (corrected) code prints."""

import numpy as np
import pytest
import torch

from mnistlab import codegen, data, lesson, lesson_networks, network, plots, tensors
from mnistlab.errors import ConfigError
from mnistlab.lesson_step import DEFAULT, LessonValues

OTHER = LessonValues(n_hidden=100, hidden=(200, 50), seed=3, std=0.1, index=9)


@pytest.fixture(scope="module")
def lesson_outputs():
    return lesson.run()


@pytest.fixture(scope="module")
def other_outputs():
    return lesson.run(OTHER)


def namespace(values=DEFAULT, upto=lesson.N_STEPS) -> dict:
    return lesson.run(values, upto)[-1].namespace


# -- what each step prints -------------------------------------------------------------------------

def test_step_1_loads_60000_training_images_with_the_lessons_normalize(lesson_outputs):
    text = lesson_outputs[0].text
    assert "Number of datapoints: 60000" in text and "Normalize(mean=(0.5,), std=(0.5,))" in text


def test_step_2_a_batch_is_64_images_of_1_by_28_by_28(lesson_outputs):
    assert lesson_outputs[1].text == "<class 'torch.Tensor'>\ntorch.Size([64, 1, 28, 28])\ntorch.Size([64])"


@pytest.mark.parametrize("values", [DEFAULT, OTHER])
def test_the_batch_is_the_seeded_one_the_app_and_the_train_page_use(values, train_split):
    ns = namespace(values, 2)
    images, labels = next(iter(data.FastLoader(train_split, 64, seed=values.seed)))
    assert torch.equal(ns["images"], images) and torch.equal(ns["labels"], labels)


def test_step_3_shows_the_chosen_image_and_prints_its_label(other_outputs):
    ns = namespace(OTHER, 3)
    z = np.asarray(other_outputs[2].figure.data[0].z, dtype=np.float32)
    assert np.array_equal(z, ns["images"][OTHER.index, 0].numpy())
    assert other_outputs[2].text == f"tensor({int(ns['labels'][OTHER.index])})"


def test_step_3_writes_the_numbers_the_network_reads_large_enough_for_a_projector(other_outputs):
    image = namespace(OTHER, 3)["images"][OTHER.index, 0].numpy()
    picture = other_outputs[2].picture
    whole, window = picture.data
    assert np.array_equal(np.asarray(whole.z, dtype=np.float32), image)
    n = lesson_networks.PIXEL_WINDOW
    r0, c0 = plots.pixel_window(image, n)
    shown = np.asarray(window.z, dtype=np.float32)
    assert shown.shape == (n,) * 2
    assert np.array_equal(shown, image[r0:r0 + n, c0:c0 + n])
    assert shown.min() == -1 and shown.max() > 0.9  # across the stroke: background and ink
    assert f"rows {r0}–{r0 + n - 1}" in picture.layout.annotations[1].text
    assert window.textfont.size >= plots.FONT_SIZE
    assert plots.enlarged(picture, 26).data[1].textfont.size == 26  # presenter mode: the body text's size


def test_step_4_flattens_to_64_by_784_and_leaves_the_batch_alone(lesson_outputs):
    assert lesson_outputs[3].text == "torch.Size([64, 784])\ntorch.Size([64, 1, 28, 28])"


@pytest.mark.parametrize("values", [DEFAULT, OTHER])
def test_step_5_weights_are_torch_randn_after_manual_seed(values):
    ns = namespace(values, 5)
    net = tensors.TensorNetwork.random(values.n_hidden, values.seed)  # the oracle: the From tensors page's
    for name in ("W1", "W2", "B1", "B2"):
        assert torch.equal(ns[name], getattr(net, name)), name
    assert torch.equal(ns["output"], net.forward(ns["images"])["scores"])


def test_step_6_prints_the_table_of_shapes_for_the_hidden_units(lesson_outputs, other_outputs):
    assert lesson_outputs[5].text.splitlines() == [
        "images  torch.Size([64, 1, 28, 28])", "inputs  torch.Size([64, 784])",
        "W1      torch.Size([784, 256])", "W2      torch.Size([256, 10])", "B1      torch.Size([1, 256])",
        "B2      torch.Size([1, 10])", "hidden  torch.Size([64, 256])", "output  torch.Size([64, 10])"]
    assert "W1      torch.Size([784, 100])" in other_outputs[5].text


def test_step_7_probabilities_rows_sum_to_one_and_the_2018_softmax_overflows(lesson_outputs):
    lines = lesson_outputs[6].text.splitlines()
    assert lines[0] == "torch.Size([64, 10])"
    assert "".join(lines[1:-2]).count("1.0000") == 64
    assert lines[-2:] == ["tensor([[nan, 0.]])", "tensor([[1.0000e+00, 3.7835e-44]])"]
    ns = namespace(upto=7)
    assert torch.allclose(ns["probabilities"], torch.softmax(ns["output"], dim=1))


def test_step_8_prints_the_network_class_with_hidden_output_sigmoid_softmax(lesson_outputs, other_outputs):
    assert lesson_outputs[7].text == "\n".join([
        "Network(", "  (hidden): Linear(in_features=784, out_features=256, bias=True)",
        "  (output): Linear(in_features=256, out_features=10, bias=True)", "  (sigmoid): Sigmoid()",
        "  (softmax): Softmax(dim=1)", ")"])
    assert "(hidden): Linear(in_features=784, out_features=100, bias=True)" in other_outputs[7].text


def test_steps_8_and_9_are_the_same_network_as_build_makes_for_the_seed():
    built = network.build(*_state(OTHER.sigmoid_network()))
    with torch.no_grad():
        for upto in (8, 9):
            ns = namespace(OTHER, upto)
            assert torch.equal(ns["model"].hidden.weight, built.fc1.weight)
            assert torch.allclose(ns["model"](ns["inputs"]), network.probabilities(built, ns["images"]))


def test_step_9_uses_torch_sigmoid_and_prints_rows_of_ones(lesson_outputs):
    code = lesson.step(9).source()
    assert "torch.sigmoid(self.hidden(x))" in code and "F.sigmoid" not in code
    assert lesson_outputs[8].text.startswith("tensor([1., 1., 1., 1.], grad_fn=<SliceBackward0>)\nNetwork(")


def test_step_10_plots_sigmoid_tanh_and_relu(lesson_outputs):
    fig = lesson_outputs[9].figure
    curves = {trace.name: (np.asarray(trace.x), np.asarray(trace.y)) for trace in fig.data}
    assert list(curves) == ["sigmoid", "tanh", "ReLU"]
    x, y = curves["ReLU"]
    assert np.array_equal(y, np.maximum(x, 0)) and np.allclose(curves["tanh"][1], np.tanh(x), atol=1e-6)


def test_step_11_prints_fc1_fc2_fc3_and_draws_builds_weights(other_outputs):
    assert other_outputs[10].text.splitlines()[1:4] == [
        "  (fc1): Linear(in_features=784, out_features=200, bias=True)",
        "  (fc2): Linear(in_features=200, out_features=50, bias=True)",
        "  (fc3): Linear(in_features=50, out_features=10, bias=True)"]
    model, built = namespace(OTHER, 11)["model"], network.build(*_state(OTHER.relu_network()))
    assert torch.equal(model.fc3.weight, built.output.weight) and torch.equal(model.fc1.bias, built.fc1.bias)


def test_step_12_prints_parameters_then_zero_biases_and_normal_weights(other_outputs):
    text = other_outputs[11].text
    assert text.startswith("Parameter containing:\ntensor([[") and text.count("Parameter containing:") == 2
    assert "tensor([0., 0., 0.," in text
    fc1 = namespace(OTHER, 12)["model"].fc1
    assert torch.equal(fc1.bias, torch.zeros(200))
    assert abs(fc1.weight.std().item() - OTHER.std) < OTHER.std * 0.02
    assert "normal_(std=0.1)" in lesson.step(12).source(OTHER)


def test_step_12_pictures_the_weights_it_printed_one_28_by_28_image_per_unit(other_outputs):
    picture = other_outputs[11].picture
    weight = namespace(OTHER, 12)["model"].fc1.weight.detach().numpy()
    z = np.asarray(picture.data[0].z, dtype=np.float32)
    assert np.array_equal(z[:28, :28], weight[0].reshape(28, 28))  # the first unit, top left
    assert np.array_equal(z[:28, 31:59], weight[1].reshape(28, 28))  # the next one beside it
    assert "32 of 200 units" in picture.layout.title.text
    assert [n for n, o in enumerate(other_outputs, 1) if o.picture is not None] == [3, 12]


def test_step_13_the_forward_pass_of_the_chosen_image(other_outputs):
    ns = namespace(OTHER, 13)
    with torch.no_grad():
        expected = ns["model"](ns["images"][OTHER.index].view(1, 784))
    assert torch.equal(ns["ps"], expected) and abs(ns["ps"].sum().item() - 1) < 1e-6
    fig = other_outputs[12].figure  # plots.view_classify: the image, then its 10 bars
    assert np.array_equal(np.asarray(fig.data[0].z, dtype=np.float32), ns["images"][OTHER.index, 0].numpy())
    assert np.allclose(np.asarray(fig.data[1].x), expected[0].numpy())
    assert other_outputs[12].text.endswith("grad_fn=<SoftmaxBackward0>)")


def test_step_14_sequential_indexed_then_named_as_the_code_generator_and_build(other_outputs):
    arch = OTHER.relu_network().arch
    indexed, first, named, fc1 = _split_reprs(other_outputs[13].text)
    assert indexed == codegen.printed(arch, "indexed") and "(5): Softmax(dim=1)" in indexed
    assert first == fc1 == "Linear(in_features=784, out_features=200, bias=True)"
    assert named == repr(network.build(arch)) == codegen.printed(arch, "sequential")
    model = namespace(OTHER)["model"]
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                  network.build(arch, seed=OTHER.seed).state_dict().values()))


def _state(state):
    return state.arch, state.init, state.seed


def _split_reprs(text: str) -> list[str]:
    """The four things step 14 prints: two multi-line Sequentials, each followed by one line."""
    parts, current = [], []
    for line in text.splitlines():
        current.append(line)
        if line == ")" or (len(current) == 1 and line.startswith("Linear(")):
            parts.append("\n".join(current))
            current = []
    return parts


# -- the steps as data -----------------------------------------------------------------------------

def test_every_step_has_a_title_text_and_code_and_the_2018_changes_are_noted():
    assert [s.number for s in lesson_networks.STEPS] == list(range(1, 15))
    assert all(s.title and s.text and s.source() for s in lesson_networks.STEPS)
    notes = " ".join(s.note or "" for s in lesson_networks.STEPS)
    for change in ("dataiter.next()", "next(dataiter)", "images.resize_", "`view`", "F.sigmoid",
                   "torch.sigmoid", "overflows", "passed the output through the sigmoid"):
        assert change in notes, change
    code = "\n".join(s.source() for s in lesson_networks.STEPS)
    assert ".next()" not in code and "resize_" not in code and "F.sigmoid" not in code


def test_the_steps_code_carries_the_visitors_values():
    source = lesson.step(5).source(OTHER)
    assert "n_hidden = 100" in source and "manual_seed(3)" in source
    assert "hidden_sizes = [200, 50]" in lesson.step(14).source(OTHER)
    assert "images[9]" in lesson.step(3).source(OTHER) and "images[9]" in lesson.step(13).source(OTHER)
    assert "manual_seed(3)" in lesson.step(1).source(OTHER)


# -- parsing the URL -------------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [("1", 1), ("5", 5), (" 14 ", 14), (["3", "7"], 7)])
def test_a_step_from_1_to_14_is_that_step(value, expected):
    assert lesson.parse_step(value) == (expected, None)


@pytest.mark.parametrize("value", [None, "", " ", []])
def test_a_missing_step_is_step_1_where_the_lesson_starts_without_a_notice(value):
    assert lesson.parse_step(value) == (1, None)


@pytest.mark.parametrize("value", ["0", "15", "-1", "abc", "5.0", "1e1", "٣", "2" * 500, "+3"])
def test_a_bad_step_is_step_1_with_a_notice_naming_the_allowed_steps(value):
    step, notice = lesson.parse_step(value)
    assert step == 1 and "steps are 1 to 14" in notice and len(notice) < 200


@pytest.mark.parametrize("value, present", [("1", True), ("true", True), ("0", False), (None, False),
                                            ("", False), ("x", False)])
def test_presenter_mode_from_the_url(value, present):
    assert lesson.parse_present(value) is present


def test_the_values_round_trip_through_the_url():
    assert lesson.decode_values(lesson.encode_values(OTHER)) == (OTHER, [])
    assert lesson.decode_values({}) == (DEFAULT, [])


def test_bad_values_in_a_link_keep_their_defaults_with_a_notice_each():
    values, notices = lesson.decode_values({"units": "0", "layers": "128", "seed": "-4", "std": "0.03",
                                           "image": "64"})
    assert values == DEFAULT and len(notices) == 5
    values, notices = lesson.decode_values({"units": "abc", "image": "12"})
    assert values == LessonValues(index=12) and "units 'abc' was not used" in notices[0]


@pytest.mark.parametrize("bad", [dict(n_hidden=0), dict(n_hidden=4096), dict(hidden=(128,)),
                                 dict(hidden=(128, 0)), dict(seed=-1), dict(std=0), dict(std=11.0),
                                 dict(index=64), dict(index=True)])
def test_values_out_of_range_are_refused_with_what_is_allowed(bad):
    with pytest.raises(ConfigError):
        LessonValues(**bad)
