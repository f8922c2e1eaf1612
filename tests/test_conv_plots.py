"""A CNN's own pictures, on real MNIST: its filters, one image's feature maps, the network diagram
drawn with stacks of maps, and the replay of its filters over a run."""

import base64
import copy
import io

import numpy as np
import pytest
import torch
from PIL import Image
from plotly.colors import diverging, unlabel_rgb
from torch import nn

from mnistlab import conv_plots, data, network, network_diagram, training_plots
from mnistlab.network import Architecture, Init

CONVNETJS = Architecture.parse("", "relu", conv="8:5,16:5")  # ConvNetJS's MNIST demo, 5,994 parameters
WIDE = Architecture.parse("", "relu", conv="32:3:1,64:3:1")
ONE = 2  # test image 2 is a "1": one stroke, nearly vertical
FULL_BLUE, FULL_RED = (unlabel_rgb(c) for c in (diverging.RdBu[-1], diverging.RdBu[0]))


@pytest.fixture(scope="module")
def short_run(trained_cnn):
    """tests/conftest.py's CNN: ConvNetJS's layout with a hidden layer, batch norm and dropout, one epoch
    on 10,000 images, its dynamics recorded."""
    return trained_cnn


@pytest.fixture(scope="module")
def one(test_split):
    assert int(test_split.labels[ONE]) == 1
    return test_split.normalized([ONE])  # (1, 1, 28, 28), as the network reads it


def png(source: str) -> np.ndarray:
    """A figure's image as the browser gets it: (height, width, RGBA)."""
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1]))).convert("RGBA"))


def test_the_feature_maps_are_the_networks_own_layer_by_layer_in_eval_mode(short_run, one):
    model = short_run.model().train()  # as a training thread holds it: dropout on, batch norm learning
    before = copy.deepcopy(model.state_dict())
    maps = conv_plots.feature_maps(model, one)
    assert model.training and all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert list(maps.maps) == ["conv1", "bn_conv1", "relu_conv1", "pool1", "conv2", "bn_conv2", "relu_conv2",
                               "pool2"]  # dropout passes its input on in eval mode: nothing to draw
    oracle = copy.deepcopy(model).eval()
    x = network.as_input(oracle, one)
    for name, module in oracle.named_children():
        if isinstance(module, nn.Flatten):
            break
        x = module(x)
        if name in maps.maps:
            assert torch.allclose(maps.maps[name], x[0], atol=1e-6), name
    assert maps.maps["pool2"].shape == (16, 4, 4) and torch.equal(maps.image, one[0])
    rest = oracle[list(dict(oracle.named_children())).index("flatten"):]
    assert torch.allclose(rest(maps.maps["pool2"][None]), network.probabilities(oracle, one), atol=1e-6)
    assert [(b.name, b.rows) for b in maps.blocks[1:]] == [
        ("conv1", ("bn_conv1", "relu_conv1", "pool1")), ("conv2", ("bn_conv2", "relu_conv2", "pool2"))]


def test_a_hand_set_vertical_edge_filter_lights_the_strokes_of_a_one(one):
    model = network.build(CONVNETJS)
    edge = torch.tensor([1.0, 1.0, 0.0, -1.0, -1.0])  # bright on the left, dark on the right
    with torch.no_grad():
        model.conv1.bias.zero_()
        model.conv1.weight.zero_()
        model.conv1.weight[0, 0] = edge.expand(5, 5)  # vertical edges
        model.conv1.weight[1, 0] = edge[:, None].expand(5, 5)  # horizontal edges
    maps = conv_plots.feature_maps(model, one)
    vertical, horizontal = maps.maps["relu_conv1"][:2]
    ink = one[0, 0] > 0.5
    assert vertical.sum() > 2 * horizontal.sum()  # a "1" is a vertical stroke: its sides, more than its ends
    lit = vertical > 0.5 * vertical.max()
    rows = lit.any(1).nonzero().ravel()
    assert len(rows) >= 12  # down the stroke's length
    for r, c in lit.nonzero().tolist():  # each lit map pixel sees ink in its 5×5 window of the image
        assert ink[r:r + 5, c:c + 5].any()
    assert vertical[:, :5].abs().max() == 0  # the blank left of the image: nothing
    # In the figure, conv1's block: a column per channel; channel 0 before ReLU, then after it.
    figure = conv_plots.feature_maps_figure(maps)
    tiles = png(figure.data[1].source)[..., :3].astype(int)
    before, after = tiles[:24, :24], tiles[26:50, :24]  # 24×24 maps, 2 pixels apart
    blue, red = after[..., 2] - after[..., 0] > 60, before[..., 0] - before[..., 2] > 60
    assert blue[lit.numpy()].all()  # the stroke's right edge, lit blue
    assert red.any()  # its left edge, negative: red before ReLU
    assert not (after[..., 0] - after[..., 2] > 60).any()  # and cut to 0 after it
    assert (after[(vertical == 0).numpy()] == after[0, 0]).all()  # zero: one colour, the scale's middle


def test_the_filters_figure_has_one_symmetric_colour_scale_per_layer_reaching_its_largest_weight(short_run):
    model = short_run.model()
    fig = conv_plots.filters_figure(model)
    bars = [t for t in fig.data if t.type == "scatter" and t.marker.showscale]
    images = [t for t in fig.data if t.type == "image"]
    assert len(bars) == len(images) == 2  # one block and one colour bar per convolution
    for (_, conv), bar in zip(conv_plots.convolutions(model), bars):
        strongest = conv.weight.detach().abs().max().item()
        assert bar.marker.cmin == -bar.marker.cmax == pytest.approx(-strongest)
    titles = [a.text for a in fig.layout.annotations]
    assert "<b>conv1</b>: 8 filters 5×5 over 1 map" in titles
    assert "<b>conv2</b>: 16 filters 5×5 over 8 maps" in titles
    # The strongest weight of conv1 is drawn in its scale's full colour; its filters in one row of 5×5.
    w = model.conv1.weight.detach()[:, 0]
    f, r, c = np.unravel_index(int(w.abs().argmax()), w.shape)
    pixels = png(images[0].source)
    assert pixels.shape[:2] == (5, 8 * 6 - 1)
    full = FULL_BLUE if w[f, r, c] > 0 else FULL_RED
    assert tuple(pixels[r, f * 6 + c, :3]) == full


def test_a_64_channel_layer_draws_its_first_filters_and_maps_and_says_so():
    fig = conv_plots.filters_figure(network.build(WIDE))
    titles = [a.text for a in fig.layout.annotations]
    assert "<b>conv1</b>: 32 filters 3×3 over 1 map (first 16)" in titles
    assert "<b>conv2</b>: 64 filters 3×3 over 32 maps (first 16, on maps 0–7)" in titles
    conv2 = png([t for t in fig.data if t.type == "image"][1].source)
    strip = 8 * 4 - 1  # a filter: its slices on 8 maps, 3 wide, a gap between
    assert conv2.shape[0] * conv2.shape[1] < 16 * 3 * (strip + 3) * 2  # 16 filters drawn, not 64
    with pytest.raises(ValueError, match="no convolutions"):
        conv_plots.filters_figure(network.build(Architecture((32,))))


def test_the_feature_maps_figure_is_a_few_images_one_scale_per_layer(short_run, one):
    maps = conv_plots.feature_maps(short_run.model(), one)
    fig = conv_plots.feature_maps_figure(maps, title="test image 2")
    assert [t.type for t in fig.data].count("image") == 3  # the input, conv1's block, conv2's block
    assert len(fig.to_json()) < 60_000  # light: re-sent to every student on every rerun
    bars = [t for t in fig.data if t.type == "scatter" and t.marker.showscale]
    for bar, block in zip(bars, maps.blocks[1:]):
        strongest = max(maps.maps[r].abs().max().item() for r in block.rows)
        assert bar.marker.cmax == -bar.marker.cmin == pytest.approx(strongest)
    notes = " ".join(a.text for a in fig.layout.annotations)
    assert "<b>conv1 → bn_conv1 → relu_conv1 → pool1</b>: 8 maps 24×24 → 12×12" in notes
    assert "before relu" in notes and "after relu" in notes and "max pool 2×2" in notes
    assert "<b>conv2 → bn_conv2 → relu_conv2 → pool2</b>: 16 maps 8×8 → 4×4" in notes
    assert "<b>bn_conv2</b> 8–15" in notes  # 16 maps: two rows of 8, each saying which


def test_the_network_diagram_draws_each_convolution_and_pool_as_its_stack_of_real_maps(one, test_split):
    model = network.build(CONVNETJS, Init(), 0)
    diagram = network_diagram.diagram_data(model, one, test_split.dataset.classes)
    maps = conv_plots.feature_maps(model, one)
    assert [(s.header, s.showing) for s in diagram.stacks] == [
        ("conv1 → relu_conv1", "8×24×24"), ("pool1", "8×12×12"), ("conv2 → relu_conv2", "16×8×8"),
        ("pool2", "16×4×4")]
    for stack, name in zip(diagram.stacks, ("relu_conv1", "pool1", "relu_conv2", "pool2")):
        assert np.array_equal(stack.maps, maps.maps[name][:len(stack.shown)].numpy())  # lit by this image
    ps = network.probabilities(model, one)[0].detach().numpy()
    assert np.allclose(diagram.probabilities, ps, atol=1e-6)
    lines = diagram.connections[0]  # into the output, from the drawn maps' pixels
    assert set(lines.source // 16) <= set(diagram.stacks[-1].shown.tolist())
    assert np.array_equal(lines.weight, model.output.weight.detach()[lines.target, lines.source].numpy())
    fig = network_diagram.draw(diagram, title="ConvNetJS")
    assert [t.type for t in fig.data].count("image") == 4 * conv_plots.MAPS_PER_STACK
    headers = " ".join(fig.data[-1].text)
    assert "8×24×24" in headers and "16×4×4" in headers and "28×28 pixels" in headers
    assert len(fig.data) <= 30


def test_the_replay_of_a_short_cnn_run_shows_conv1s_filters_over_the_epochs(short_run):
    d = short_run.dynamics
    fig = training_plots.replay(d, data.normalize(d.replay_images, short_run.config.normalization))
    assert len(fig.frames) == len(d.snapshots)
    assert fig.layout.annotations[0].text == "conv1: the first 8 filters 5×5, each on its own scale"
    first, last = (png(f.data[0].source) for f in (fig.frames[0], fig.frames[-1]))
    assert first.shape[:2] == last.shape[:2] == (2 * 5 + 1, 4 * 5 + 3)  # two rows of four 5×5 filters
    assert not np.array_equal(first, last)  # the filters learned
    w = short_run.state["conv1.weight"][0, 0]  # the last frame is the trained filter 0, on its own scale
    r, c = divmod(int(w.abs().argmax()), 5)
    assert tuple(last[r, c, :3]) == (FULL_BLUE if w[r, c] > 0 else FULL_RED)
