"""The figure builders, without Streamlit: what each figure shows, on real MNIST digits."""

import base64
import io

import numpy as np
import plotly.graph_objects as go
import pytest
import torch
from PIL import Image

from mnistlab import image_plots, plot_style, plots, training_plots
from mnistlab.dataset import MNIST

H, W = MNIST.height, MNIST.width  # 28×28: the figures take them from the data set


def test_view_classify_is_one_figure_with_the_image_beside_ten_bars(test_split):
    image = test_split.normalized(slice(0, 1))[0]
    ps = torch.softmax(torch.arange(10.0), dim=0)
    fig = plots.view_classify(image, ps, label=int(test_split.labels[0]), title="untrained")
    assert isinstance(fig, go.Figure)
    heatmap, bars = fig.data
    assert heatmap.type == "heatmap" and np.asarray(heatmap.z).shape == (H, W) == (28, 28)
    assert np.allclose(np.asarray(heatmap.z), image.reshape(H, W).numpy())
    assert bars.type == "bar" and bars.orientation == "h"
    assert tuple(bars.y) == MNIST.classes == tuple(str(c) for c in range(10))
    assert np.allclose(bars.x, ps.numpy())
    assert fig.layout.title.text == "untrained"


def test_view_classify_marks_the_prediction_and_the_true_label():
    ps = torch.tensor([0.05] * 9 + [0.55])
    fig = plots.view_classify(torch.zeros(MNIST.inputs), ps, label=3)
    colors = list(fig.data[1].marker.color)
    assert colors[9] == plots.PREDICTED and colors[3] == plots.TRUE
    assert {colors[i] for i in range(10) if i not in (3, 9)} == {plots.BAR}
    # Correct prediction: the true class's bar is the only highlighted one.
    colors = list(plots.view_classify(torch.zeros(MNIST.inputs), ps, label=9).data[1].marker.color)
    assert colors[9] == plots.TRUE and plots.PREDICTED not in colors


def test_view_classify_is_the_very_figure_plotly_builds_and_checks(test_split):
    # view_classify fills a cached, checked figure: it must equal one built afresh through Plotly
    import json

    images = test_split.normalized(slice(0, 3))
    for image, ps, label, title in ((images[0], torch.softmax(torch.randn(10), 0), None, None),
                                    (images[1], torch.softmax(torch.arange(10.0), 0), 9, "trained"),
                                    (images[2], torch.softmax(-torch.arange(10.0), 0), 4, "untrained")):
        fig = plots.view_classify(image, ps, label=label, title=title, height=280)
        colors = list(fig.data[1].marker.color)
        words = [a.text for a in fig.layout.annotations]
        fresh = plots._view_classify_figure(image.reshape(H, W).double().numpy(), ps.double().numpy(),
                                            colors, *words, title, 280)
        assert json.loads(fig.to_json()) == json.loads(fresh.to_json())
    assert plots.view_classify(images[0], ps).layout.annotations[1].text.startswith("class probability")


def test_view_classify_refuses_a_wrong_number_of_classes():
    with pytest.raises(ValueError, match="10 class probabilities"):
        plots.view_classify(torch.zeros(MNIST.inputs), torch.ones(9) / 9)


def grid_pixels(fig: go.Figure) -> np.ndarray:
    """The grid's tiles as the browser gets them: (H, W, 2) gray + alpha, from the PNG in the figure."""
    url = fig.data[0].source
    assert url.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))


def test_digit_grid_shows_every_digit_with_its_label(test_split):
    images, labels = test_split.normalized(slice(0, 64)), test_split.labels[:64]
    fig = plots.digit_grid(images, labels, columns=8)
    pixels = grid_pixels(fig)
    assert np.count_nonzero(pixels[..., 1]) == 64 * H * W  # every digit's pixels, and gaps between
    assert list(fig.data[1].text) == [str(int(y)) for y in labels]
    # The first tile is the first image as stored: -1 black, 1 white, 8 bits.
    assert np.array_equal(pixels[:H, :W, 0], test_split.images[0].numpy())


def test_a_batch_grid_is_small_enough_for_a_classroom(test_split):
    # Every "Next batch" sends it to the browser: as a PNG it is ~30 kB; a heatmap's numbers were ~900 kB.
    fig = plots.digit_grid(test_split.normalized(slice(0, 64)), test_split.labels[:64])
    assert len(fig.to_json()) < 60_000


def test_pixel_values_writes_the_window_across_the_stroke_at_body_size(test_split):
    image = test_split.images[0].numpy().reshape(H, W)
    raw = plots.pixel_values(test_split.images[0])
    whole, window = raw.data
    assert np.array_equal(np.asarray(whole.z), image) and whole.texttemplate is None  # small, no numbers
    r0, c0 = plots.pixel_window(image, 14)
    assert np.array_equal(np.asarray(window.z), image[r0:r0 + 14, c0:c0 + 14])  # the tensor's own values
    assert list(window.y) == list(range(r0, r0 + 14)) and list(window.x) == list(range(c0, c0 + 14))
    assert window.texttemplate == "%{z:.0~f}" and window.textfont.size >= plots.FONT_SIZE == 16
    assert raw.layout.annotations[1].text == f"rows {r0}–{r0 + 13}, cols {c0}–{c0 + 13}"
    box = raw.layout.shapes[0]  # the window, outlined on the whole image
    assert (box.x0, box.y0, box.x1, box.y1) == (c0 - 0.5, r0 - 0.5, c0 + 13.5, r0 + 13.5)
    # Across the stroke: ink and background both, so the numbers show what a digit is made of.
    assert np.asarray(window.z).min() == 0 and np.asarray(window.z).max() >= 250
    normalized = plots.pixel_values(test_split.normalized(0), decimals=1, window=8, beside=False)
    z = np.asarray(normalized.data[0].z)
    assert z.min() == -1 and z.max() == 1 and np.asarray(normalized.data[1].z).shape == (8, 8)


def test_the_window_varies_most_and_is_the_nearest_the_centre_of_equals():
    image = np.zeros((H, W))
    assert plots.pixel_window(image, 8) == (10, 10)  # all alike: the centre
    image[3:6, 20:23] = 1  # the only ink: a window holding it and background
    r0, c0 = plots.pixel_window(image, 4)
    assert image[r0:r0 + 4, c0:c0 + 4].sum() > 0 and image[r0:r0 + 4, c0:c0 + 4].min() == 0
    with pytest.raises(ValueError, match=f"1 to {H}"):
        plots.pixel_window(image, H + 1)


def test_class_counts_shows_ten_bars_summing_to_the_split(test_split):
    fig = plots.class_counts(test_split.class_counts())
    assert list(fig.data[0].x) == [str(c) for c in range(10)]
    assert sum(fig.data[0].y) == len(test_split) == MNIST.test_size


def test_histogram_of_zero_biases_is_a_spike_at_zero():
    fig = plots.histograms({"fc1.weight": torch.randn(128, MNIST.inputs), "fc1.bias": torch.zeros(128)})
    weights, biases = fig.data
    assert len(weights.x) == 40 and sum(weights.y) == 128 * MNIST.inputs
    assert list(biases.x) == [0.0] and list(biases.y) == [128]
    assert [a.text for a in fig.layout.annotations] == ["fc1.weight", "fc1.bias"]


def test_histograms_ignore_values_that_are_not_finite():
    centers, counts = plots.histogram_counts(torch.tensor([0.0, 1.0, float("nan"), float("inf")]), bins=2)
    assert counts.sum() == 2


def test_weight_images_show_one_28x28_tile_per_unit_up_to_the_cap():
    w = torch.randn(128, MNIST.inputs)
    fig = plots.weight_images(w, max_units=64, columns=8, shared_scale=True)
    z = np.asarray(fig.data[0].z, dtype=float)
    assert np.count_nonzero(~np.isnan(z)) == 64 * MNIST.inputs
    assert np.allclose(z[:H, :W], w[0].reshape(H, W).numpy(), atol=1e-6)
    assert fig.data[0].zmid == 0


def test_weight_images_give_each_unit_its_own_symmetric_scale_by_default():
    w = torch.randn(2, MNIST.inputs)
    w[1] *= 0.01  # a weak unit beside a strong one: on a shared scale it would look blank
    fig = plots.weight_images(w, columns=2)
    z = np.asarray(fig.data[0].z, dtype=float)
    assert np.nanmax(np.abs(z[:, :W])) == pytest.approx(1)
    assert np.nanmax(np.abs(z[:, W + 3:])) == pytest.approx(1)
    hover = np.asarray(fig.data[0].customdata, dtype=float)  # the weights themselves
    assert np.allclose(hover[:H, W + 3:], w[1].reshape(H, W).numpy(), atol=1e-6)
    shared = np.asarray(plots.weight_images(w, columns=2, shared_scale=True).data[0].z, dtype=float)
    assert np.nanmax(np.abs(shared[:, W + 3:])) < 0.1 * np.nanmax(np.abs(shared[:, :W]))


def test_log_scale_histograms_tick_only_powers_of_ten():
    fig = plots.histograms({"relu1": torch.relu(torch.randn(20_000))}, log_y=True)
    assert fig.layout.yaxis.type == "log"
    assert fig.layout.yaxis.dtick == 1  # 1, 10, 100, ... and nothing between


def test_digit_grid_with_predictions_colours_right_and_wrong(test_split):
    labels = test_split.labels[:4]
    predictions = labels.clone()
    predictions[1] = (labels[1] + 1) % 10
    fig = plots.digit_grid(test_split.normalized(slice(0, 4)), labels, predictions=predictions)
    assert fig.data[1].text[1] == f"{int(labels[1])}→{int(predictions[1])}"
    assert list(fig.data[1].textfont.color) == [plots.TRUE, plots.PREDICTED, plots.TRUE, plots.TRUE]


def test_enlarged_puts_every_text_of_a_figure_at_least_at_the_size_asked():
    import plotly.express as px

    small = plots.view_classify(torch.zeros(MNIST.inputs), torch.full((10,), 0.1), label=3,
                                title="A long title: here")
    big = plots.enlarged(small, 26, line_chars=12)
    sizes = [big.layout.font.size, big.layout.title.font.size, *(a.font.size for a in big.layout.annotations),
             big.data[1].textfont.size, big.layout.xaxis2.tickfont.size, big.layout.yaxis2.tickfont.size]
    assert min(sizes) >= 26
    assert "<br>" in big.layout.title.text and "<br>" in big.layout.annotations[1].text  # long: two lines
    assert big.layout.margin.t > small.layout.margin.t and small.layout.annotations[1].text.count("<br>") == 0
    image = plots.enlarged(px.imshow(np.zeros((28, 28))), 30)
    assert image.layout.coloraxis.colorbar.tickfont.size == 30 and image.layout.xaxis.tickfont.size == 30


def test_training_curves_draw_validation_dashed_in_the_runs_colour_and_mark_its_best_epoch():
    training = ([0.5, 1.0, 1.5, 2.0, 2.5, 3.0], [1.0, 0.6, 0.4, 0.3, 0.2, 0.1],
                [0.7, 0.8, 0.9, 0.92, 0.95, 0.97])
    # checks twice an epoch; at whole epochs on every validation image, where the lowest loss is epoch 2's
    # (0.30 at 2.5 is a part of the images, and never chooses)
    validation = ([0.5, 1.0, 1.5, 2.0, 2.5, 3.0], [0.9, 0.5, 0.45, 0.4, 0.30, 0.42],
                  [0.7, 0.8, 0.85, 0.87, 0.88, 0.86])
    fig = training_plots.training_curves({"run": training}, validation={"run": validation})
    assert [a.text for a in fig.layout.annotations] == ["loss", "accuracy", "best: epoch 2"]
    key = [t for t in fig.data if t.legendgroup == "key"]
    assert [(t.name, t.line.dash) for t in key] == [("training (solid)", "solid"),
                                                    ("validation (dashed)", "dash")]
    run = [t for t in fig.data if t.legendgroup == "run"]
    dashed = [t for t in run if t.line.dash == "dash"]
    assert [list(t.y) for t in dashed] == list(validation[1:]) and dashed[0].line.color == run[0].line.color
    stars = [t for t in run if t.marker.symbol == "star"]
    assert [(t.x, t.y) for t in stars] == [((2.0,), (0.4,)), ((2.0,), (0.87,))]
    assert list(dashed[0].marker.size) == [0, 8, 0, 8, 0, 8]  # dots where all of validation was checked
    live = training_plots.training_curves({"run": training}, validation={"run": ([0.5], [0.9], [0.7])})
    first = [t.marker.size for t in live.data if t.line.dash == "dash" and t.legendgroup == "run"]
    assert first == [(6,), (6,)]  # a live curve's first check shows before a line can
    assert training_plots.best_epoch_point([0.5], [0.1]) is None  # no epoch has ended yet: nothing to mark
    assert all(t.legendgroup != "key" or t.name != "validation (dashed)"
               for t in training_plots.training_curves({"run": training}).data)  # no validation: no key


IMAGES = [None, None]  # the test split's first images and labels, set by the test below
LIVE = ([0.5, 1.0, 1.5, 2.0], [1.0, 0.6, 0.4, 0.45], [0.7, 0.8, 0.9, 0.88])


@pytest.mark.parametrize("figure", [
    lambda: training_plots.training_curves({"Run 1: a": LIVE, "Run 2: b": LIVE}, title="Runs", epochs=3,
                                           validation={"Run 1: a": LIVE}),
    lambda: training_plots.training_curves({"run": ([], [], [])}, epochs=2),
    lambda: training_plots.layer_dynamics({"Run 1: a": {("fc1", "update_ratio_log10"): LIVE[:2],
                                                        ("relu1", "share"): LIVE[::2]},
                                           "Run 2: b": {("fc1", "grad_ratio_log10"): LIVE[:2]}}, title="x"),
    lambda: training_plots.layer_dynamics({"Training": {}}, epochs=1),
    lambda: plots.digit_grid(IMAGES[0][:6], IMAGES[1][:6], predictions=IMAGES[1][:6].flip(0)),
    lambda: plots.pixel_values(IMAGES[0][0], decimals=1, title="x"),
    lambda: plots.pixel_values(IMAGES[0][1], beside=False, window=8),
], ids=["curves", "curves-empty", "dynamics", "dynamics-empty", "digit-grid", "pixels", "pixels-below"])
def test_a_figure_built_as_dicts_passes_plotlys_checks(figure, test_split):
    """Figures redrawn often (the live view's, a batch's) skip Plotly's checks as they are built
    (plot_style.from_dicts): here Plotly checks every property, and a misspelt or misplaced one raises."""
    IMAGES[:] = test_split.normalized(slice(0, 6)), test_split.labels[:6]
    fig = figure()
    checked = go.Figure(fig.to_dict())
    assert len(checked.data) == len(fig.data) and checked.layout.height == fig.layout.height
    assert all(axis.tickfont.size == plot_style.FONT_SIZE - 2 for axis in checked.select_xaxes())


def test_a_page_finds_every_figure_as_plots_name():
    """plots.py is split by concern (the look in plot_style, images in image_plots); pages and the
    lesson still call plots.<name>, the same functions."""
    for name in ("digit_grid", "pixel_values", "pixel_window", "weight_images"):
        assert getattr(plots, name) is getattr(image_plots, name)
    for name in ("png_data_url", "FONT_SIZE", "DIGITS", "BAR", "PREDICTED", "TRUE", "TEXT", "RUN_COLORS"):
        assert getattr(plots, name) is getattr(plot_style, name)
