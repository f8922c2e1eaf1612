"""Each data set owns its image shape, class count, split sizes and files' checksums (`Dataset`):
checked here against its real files, and read from it by loading, figures, the network diagram,
preprocessing, the learning dynamics and the hand-made tensor network.

The checksums a Dataset records (`raw_md5`) are the MD5s of the four *unpacked* files torchvision
reads from <root>/<class>/raw/, not of the .gz files (Debian's recompressed copies differ there)."""

import dataclasses
import hashlib
import math

import numpy as np
import pytest
import torch

from mnistlab import data, data_sources, dynamics, network_diagram, plots, preprocess
from mnistlab.dataset import DATASETS, FASHION, MNIST
from mnistlab.network import Network, build_network
from mnistlab.tensors import TensorNetwork

EACH = pytest.mark.parametrize("ds", list(DATASETS.values()), ids=list(DATASETS))


@pytest.fixture(scope="module")
def test_splits(test_split, fashion_test):
    """Each data set's real test split."""
    return {"mnist": test_split, "fashion": fashion_test}


# -- what the description says, against the real files -----------------------------------------------

@EACH
def test_the_checksums_are_the_md5s_of_the_unpacked_files_in_the_data_folder(ds):
    raw = data.raw_folder(dataset=ds)
    if not data.files_present(dataset=ds):
        pytest.skip(f"the real {ds.title} files are not in {raw} (set MNISTLAB_DATA)")
    found = {name: hashlib.md5((raw / name).read_bytes()).hexdigest() for name in ds.raw_files}
    assert found == dict(ds.raw_md5)
    assert data_sources.RAW_MD5[ds.torchvision_name] == dict(ds.raw_md5)  # what unpacking Debian's checks


@EACH
def test_the_files_it_lists_are_the_ones_torchvision_downloads_and_reads(ds):
    downloads = [url.rsplit("/", 1)[-1] for url, _ in ds.torchvision_class().resources]
    assert [f"{name}.gz" for name in ds.raw_files] == downloads
    assert data_sources.raw_names(ds.torchvision_class()) == ds.raw_files


@EACH
def test_both_splits_load_with_the_data_sets_sizes_shape_and_classes(ds):
    train, test = data.load_split(True, dataset=ds), data.load_split(False, dataset=ds)
    assert (len(train), len(test)) == (ds.train_size, ds.test_size)
    assert (ds.split_size(True), ds.split_size(False)) == (ds.train_size, ds.test_size)
    assert train.images.shape[1:] == test.images.shape[1:] == ds.image_shape[1:]
    assert test.normalized(slice(0, 4)).shape == (4, *ds.image_shape)  # a batch, as a network reads it
    assert len(test.class_counts()) == int(test.labels.max()) + 1 == ds.n_classes
    # Both are MNIST's format: the lesson's numbers
    assert (ds.train_size, ds.test_size, ds.image_shape, ds.inputs, ds.n_classes) == \
        (60_000, 10_000, (1, 28, 28), 784, 10)


# -- read where it acts ----------------------------------------------------------------------------------

@EACH
def test_a_figure_of_one_image_has_the_data_sets_shape_and_classes(ds, test_splits):
    split = test_splits[ds.name]
    pixels = plots.pixel_values(split.images[0], dataset=ds)
    assert np.asarray(pixels.data[0].z).shape == (ds.height, ds.width)
    assert pixels.layout.annotations[0].text == f"all {ds.height} × {ds.width}"
    ps = torch.full((ds.n_classes,), 1 / ds.n_classes)
    classify = plots.view_classify(split.normalized(0), ps, label=int(split.labels[0]), dataset=ds)
    heatmap, bars = classify.data
    assert np.allclose(np.asarray(heatmap.z), split.normalized(0).reshape(ds.height, ds.width).numpy())
    assert tuple(bars.y) == ds.classes


def pooled(images: torch.Tensor) -> torch.Tensor:
    """Real images halved in each direction (the mean of each 2×2 block), still 8 bits."""
    return torch.nn.functional.avg_pool2d(images[:, None].float(), 2)[:, 0].round().to(torch.uint8)


# MNIST at half size: real digits, described as a data set whose images are 14×14. Nothing in the code
# may write 28 or 784 for the figures below to come out right.
HALF = dataclasses.replace(MNIST, name="mnist14", title="MNIST at 14×14", image_shape=(1, 14, 14))


def test_figures_take_the_shape_from_the_data_set_not_from_mnist(test_splits):
    images = pooled(test_splits["mnist"].images[:8])
    labels = test_splits["mnist"].labels[:8]
    assert plots._as_image(images[0].flatten(), HALF).shape == (14, 14)
    with pytest.raises(ValueError, match="MNIST's images have 784 pixels"):
        plots.view_classify(images[0].flatten(), torch.full((10,), 0.1))
    pixels = plots.pixel_values(images[0], window=6, dataset=HALF)
    assert np.array_equal(np.asarray(pixels.data[0].z), images[0].numpy())
    assert pixels.layout.annotations[0].text == "all 14 × 14"
    # the grid's PNG: the first tile is the first image, its label centred above it
    grid = plots.digit_grid(images, labels, columns=4, dataset=HALF)
    assert grid.data[1].x[:2] == (6.5, 14 + 16 + 6.5)
    weights = plots.weight_images(images.flatten(1).float(), columns=4, shared_scale=True, dataset=HALF)
    assert np.allclose(np.asarray(weights.data[0].z)[:14, :14], images[0].numpy())


def test_the_network_diagram_draws_the_image_the_network_reads(test_splits):
    images = pooled(test_splits["mnist"].images[:1])
    model = torch.nn.Sequential()
    model.add_module("fc1", torch.nn.Linear(HALF.inputs, 16))
    model.add_module("relu1", torch.nn.ReLU())
    model.add_module("output", torch.nn.Linear(16, HALF.n_classes))
    model.add_module("softmax", torch.nn.Softmax(dim=1))
    x = data.normalize(images)
    drawn = network_diagram.diagram_data(model, x, HALF.classes, dataset=HALF)
    assert drawn.image.shape == (14, 14) and np.allclose(drawn.image, x.reshape(14, 14).numpy())
    figure = network_diagram.draw(drawn)
    assert "<b>input</b><br>14×14 pixels" in figure.data[-1].text
    with pytest.raises(ValueError, match="reads 784 pixels"):
        network_diagram.diagram_data(model, x)  # MNIST's, by default: this network reads 196


def test_a_drawing_is_prepared_into_the_data_sets_field(test_splits):
    digit = test_splits["mnist"].images[0].numpy()
    canvas = np.kron(digit, np.ones((10, 10), np.uint8))  # the real digit, drawn big
    prepared = preprocess.preprocess(canvas, MNIST)
    assert prepared.image.shape == MNIST.image_shape[1:]
    assert prepared.input().shape == (1, *MNIST.image_shape)
    assert prepared.stages[3].name == f"padded to {MNIST.height}×{MNIST.width}"
    assert preprocess.naive(canvas, MNIST).stages[-1].name == "resized to 28×28"


@EACH
def test_the_dynamics_keep_the_probe_data_set_and_one_image_of_each_of_its_classes(ds, test_splits):
    split = test_splits[ds.name]
    recorder = dynamics.Recorder(split)
    recorder.start(build_network(Network()), "lesson", steps_per_epoch=10, epochs=1)
    d = recorder.result
    assert d.dataset is ds
    assert split.labels[d.replay_digits].tolist() == list(range(ds.n_classes))
    assert d.replay_images.shape == (ds.n_classes, ds.height, ds.width)
    assert d.snapshots[0].probabilities.shape == (ds.n_classes, ds.n_classes)
    assert d.expected_init_loss == pytest.approx(math.log(ds.n_classes))
    note = dynamics.init_loss_note(d.expected_init_loss, ds.n_classes)
    assert note.endswith("ten equal guesses give −ln(1/10) = 2.303: the network starts unsure, as it should.")


def test_the_tensor_network_is_sized_by_the_data_set(test_splits):
    split = test_splits["fashion"]
    t = TensorNetwork.random(32, 7, FASHION).forward(split.normalized(slice(0, 64)))
    assert t["W1"].shape == (FASHION.inputs, 32) and t["inputs"].shape == (64, FASHION.inputs)
    assert t["probabilities"].shape == (64, FASHION.n_classes)
    assert torch.equal(TensorNetwork.random(32, 7).W1, t["W1"])  # MNIST's and Fashion's: the same size
