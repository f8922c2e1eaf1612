"""The network drawn as a network: what it draws is the model's own weights and its forward pass."""

import json
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from mnistlab import network_diagram as nd
from mnistlab.dataset import MNIST
from mnistlab.network import Architecture, Init, build, probabilities


@pytest.fixture(scope="module")
def images(test_split):
    return test_split.normalized(slice(0, 8))


def image(images, i=0):
    return images[i:i + 1]  # (1, 1, 28, 28)


def scatter(fig, mode: str) -> list:
    return [t for t in fig.data if t.type == "scatter" and t.mode == mode]


def point(x, y) -> tuple:
    return round(x, 6), round(y, 6)


def lines(fig) -> dict:
    """Each drawn line as ((x0, y0), (x1, y1)) -> its colour, from the figure's line traces."""
    drawn = {}
    for t in scatter(fig, "lines"):
        if t.name and "weights" in t.name:
            x, y = list(t.x), list(t.y)
            for k in range(0, len(x), 3):
                drawn[point(x[k], y[k]), point(x[k + 1], y[k + 1])] = t.line.color
    return drawn


def unit_positions(fig) -> dict:
    """(layer name, unit index) -> (x, y) of its dot, read from the dots' hover text."""
    at = {}
    for t in scatter(fig, "markers"):
        for text, x, y in zip(t.text, t.x, t.y):
            layer, rest = text.split(" unit ")
            at[layer, int(rest.split(":")[0])] = point(x, y)
    return at


def test_each_line_is_a_weight_of_the_model_coloured_by_its_sign(trained_relu, images):
    diagram = nd.diagram_data(trained_relu, image(images))
    fig = nd.draw(diagram)
    drawn, at = lines(fig), unit_positions(fig)
    assert len(drawn) == sum(len(c.weight) for c in diagram.connections)
    outputs = ["relu1", "relu2", "softmax"]
    for i, c in enumerate(diagram.connections):
        weight = getattr(trained_relu, c.layer).weight.detach()
        assert np.array_equal(c.weight, weight[c.target, c.source].numpy())
        for source, target, w in zip(c.source, c.target, c.weight):
            start = (point(source % MNIST.width, source // MNIST.width) if i == 0  # the pixel's centre
                     else at[outputs[i - 1], int(source)])
            colour = drawn[start, at[outputs[i], int(target)]]
            assert colour == (nd.POSITIVE if w > 0 else nd.NEGATIVE)
    assert {nd.POSITIVE, nd.NEGATIVE} <= set(drawn.values())


def test_the_lines_are_each_units_strongest_incoming_weights(trained_relu, images):
    diagram = nd.diagram_data(trained_relu, image(images))
    fc1, fc2 = diagram.connections[:2]
    w1 = trained_relu.fc1.weight.detach().abs()
    for unit in diagram.columns[0].shown:
        pixels = fc1.source[fc1.target == unit]
        assert len(pixels) == nd.PIXELS_PER_UNIT
        assert w1[unit, pixels].min() >= w1[unit].sort().values[-nd.PIXELS_PER_UNIT]
    shown1 = diagram.columns[0].shown
    w2 = trained_relu.fc2.weight.detach().abs()
    for unit in diagram.columns[1].shown:
        sources = fc2.source[fc2.target == unit]
        assert set(sources) <= set(shown1)  # lines only between drawn units
        assert w2[unit, sources].min() >= w2[unit, shown1].sort().values[-nd.EDGES_PER_UNIT]


def test_units_are_shaded_by_the_forward_pass_after_the_activation(trained_relu, images):
    x = image(images, 3)
    diagram = nd.diagram_data(trained_relu, x)
    fig = nd.draw(diagram)
    flat = x.reshape(1, -1)
    with torch.no_grad():
        relu1 = trained_relu[:2](flat)[0].numpy()
        relu2 = trained_relu[:4](flat)[0].numpy()
    dots = scatter(fig, "markers")
    for column, expected, dot in zip(diagram.columns, (relu1, relu2), dots):
        assert np.allclose(column.values, expected[column.shown])
        assert np.allclose(dot.marker.color, expected[column.shown])
        assert column.bound == pytest.approx(expected.max())  # the layer's strongest unit: full colour
    assert (relu1 == 0).any() and (relu1 > 0).any()  # some units off, some on: the shading shows both
    heatmap = next(t for t in fig.data if t.type == "heatmap")
    # the image is the input layer
    assert np.allclose(np.asarray(heatmap.z), x.reshape(MNIST.height, MNIST.width).numpy())


def test_the_output_column_is_the_softmax_probabilities_with_the_class_names(trained_relu, images,
                                                                           test_split):
    labels = test_split.labels[:8]
    for i in range(8):
        diagram = nd.diagram_data(trained_relu, image(images, i))
        ps = diagram.probabilities
        assert ps.sum() == pytest.approx(1, abs=1e-5)
        assert np.allclose(ps, probabilities(trained_relu, image(images, i))[0].detach().numpy(), atol=1e-6)
        assert ps.argmax() == labels[i]  # the trained network gets these right
    assert diagram.class_names == tuple("0123456789")
    fig = nd.draw(diagram)
    text = scatter(fig, "text")
    predicted = int(labels[7])
    assert text[0].text[predicted] == f"<b>{predicted}</b>"  # the predicted class: bold and red
    assert text[0].textfont.color[predicted] == nd.plots.PREDICTED
    names = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
             "Ankle boot")
    fig = nd.network_figure(trained_relu, image(images), class_names=names)
    assert "Trouser" in scatter(fig, "text")[0].text
    with pytest.raises(ValueError, match="10 outputs need 10 class names; got 3"):
        nd.diagram_data(trained_relu, image(images), class_names=["a", "b", "c"])


def test_a_wide_layer_shows_an_even_sample_and_says_how_many(images):
    model = build(Architecture((256, 20, 12)), Init(), 0)
    diagram = nd.diagram_data(model, image(images))
    wide, narrow, small, output = diagram.columns
    assert wide.showing == "16 of 256 units" and narrow.showing == "16 of 20 units"
    assert small.showing == "all 12 units" and output.showing == "all 10 units"
    assert wide.shown[0] == 0 and wide.shown[-1] == 255 and np.all(np.diff(wide.shown) == 17)
    assert len(set(narrow.shown)) == 16
    headers = " ".join(scatter(nd.draw(diagram), "text")[-1].text)
    assert "16 of 256" in headers and "16 of 20" in headers and "all 12" in headers
    assert "10 classes" in headers


def test_a_changed_weight_changes_the_drawing(trained_relu, images):
    """Flip the output layer's weights: its lines swap colour; the probabilities change."""
    flipped = build(Architecture((128, 64)), Init(), 0)
    flipped.load_state_dict(trained_relu.state_dict())
    with torch.no_grad():
        flipped.output.weight.neg_()
    before = nd.diagram_data(trained_relu, image(images)).connections[-1]
    after = nd.diagram_data(flipped, image(images)).connections[-1]
    assert np.array_equal(before.source, after.source) and np.array_equal(after.weight, -before.weight)
    assert not np.allclose(nd.diagram_data(flipped, image(images)).probabilities,
                           nd.diagram_data(trained_relu, image(images)).probabilities)


@pytest.mark.parametrize("activation, low, high", [("sigmoid", 0, 1), ("tanh", -1, 1)])
def test_bounded_activations_are_shaded_on_their_own_range(activation, low, high, images):
    diagram = nd.diagram_data(build(Architecture((32,), activation), Init(), 0), image(images))
    hidden = diagram.columns[0]
    assert hidden.header == f"fc1 → {activation}1" and hidden.bound == 1.0
    assert ((hidden.values >= low) & (hidden.values <= high)).all()


def lesson_named(*sizes) -> nn.Sequential:
    """The lesson's layer names at any size (784-2048-2048-10 is over Build's parameter cap)."""
    layers, sizes = OrderedDict(), (MNIST.inputs, *sizes, MNIST.n_classes)
    for i, (a, b) in enumerate(zip(sizes[:-2], sizes[1:-1]), 1):
        layers[f"fc{i}"], layers[f"relu{i}"] = nn.Linear(a, b), nn.ReLU()
    layers["output"], layers["softmax"] = nn.Linear(sizes[-2], sizes[-1]), nn.Softmax(dim=1)
    return nn.Sequential(layers).requires_grad_(False)


@pytest.mark.parametrize("sizes", [(128, 64), (2048, 2048)])
def test_the_figure_stays_a_few_traces_however_wide_the_network(sizes, images):
    """Its cost is bench "pages" (Build's rerun); here: wide layers are sampled, not drawn whole."""
    fig = nd.network_figure(lesson_named(*sizes), image(images))
    assert len(fig.data) <= 20


def test_an_mlps_diagram_is_drawn_exactly_as_before_the_diagram_drew_cnns(images):
    """tests/fixtures/mlp-diagrams.json: these figures as the diagram drew them at 923d004, before it
    drew convolutions (the same calls, on the same untrained networks and test images)."""
    made = json.loads((Path(__file__).parent / "fixtures" / "mlp-diagrams.json").read_text())
    cases = [(Architecture((64,), "relu", dropout=0.2, batch_norm=True), 0,
              dict(class_names=MNIST.classes, title="t")),
             (Architecture((256, 20, 12)), 1, dict(height=700))]
    for (arch, i, how), (what, figure) in zip(cases, made.items(), strict=True):
        model = build(arch, Init(), 3)
        assert nd.diagram_data(model, image(images, i)).stacks == ()
        drawn = nd.network_figure(model, image(images, i), **how)
        assert untemplated(json.loads(drawn.to_json())) == untemplated(json.loads(figure)), what


def untemplated(figure: dict) -> dict:
    """A figure without plotly's default template, which is not the diagram's: Streamlit sets its own
    once a page has run in the same process."""
    figure["layout"].pop("template", None)
    return figure
