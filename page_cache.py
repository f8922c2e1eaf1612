"""What pages compute once per server and share among visitors, keyed by their inputs.

Here and not in the pages: a page file is a script Streamlit runs afresh on every rerun, and
`st.cache_resource` / `st.cache_data` read and hash the function's source each time they decorate it
(about 5% of a busy classroom server's time). Decorated in a module, they are decorated once per process
(tests/test_page_cache.py keeps them out of the pages). Every value a cache depends on is an argument
(the visitor's data set by its name) or a constant here, never a page's variable.
"""

import pandas as pd
import streamlit as st
import torch

import lab_ui
from mnistlab import (
    activations,
    codegen,
    conv_plots,
    lesson,
    lesson_step,
    model_files,
    network,
    network_diagram,
    plots,
    shift_plots,
    shift_test,
    sweep_db,
)
from mnistlab.activations import layer_activations
from mnistlab.data import MEAN, STD, FastLoader, normalize, normalize_code
from mnistlab.dataset import DATASETS, Dataset
from mnistlab.network import Architecture, Init, build, probabilities
from mnistlab.tensors import TensorNetwork

# -- Build: what the page shows of a network, the same for every visitor with the same (arch, init, seed)
# A rerun that changes nothing else (another tab, a code style, a classmate with the default network)
# only sends them again. CPU weights: the page's device draws the very same numbers.

SHOWN_UNITS = 64  # first-layer weight images: a readable number
ACTIVATION_BATCH = 256


@st.cache_resource(max_entries=64, show_spinner=False)
def built(arch: Architecture, init: Init, seed: int, device: str) -> torch.nn.Sequential:
    """The visitor's network on their device, built once per (network, device) for the server: a rerun
    that changes nothing about it (another tab, the code style) builds nothing. Read only: its table."""
    return build(arch, init, seed, device)


@st.cache_data(max_entries=512, show_spinner=False)
def printed(arch: Architecture, style: str) -> str:
    return codegen.printed(arch, style)


@st.cache_data(max_entries=512, show_spinner=False)
def generated(state: network.Network, style: str, device: str) -> str:
    return codegen.generate(state, style, device)


@st.cache_resource(max_entries=64, show_spinner=False)
def untrained(arch: Architecture, init: Init, seed: int) -> torch.nn.Sequential:
    return build(arch, init, seed).requires_grad_(False).eval()  # predicting: dropout off, batch norm's stats


@st.cache_resource(max_entries=64, show_spinner=False)
def weight_figures(arch: Architecture, init: Init, seed: int, shared_scale: bool) -> tuple:
    model = untrained(arch, init, seed)
    panels = {}
    for name, layer in model.named_children():
        if isinstance(layer, (torch.nn.Linear, torch.nn.Conv2d)):
            panels[f"{name}.weight {tuple(layer.weight.shape)}"] = layer.weight
            panels[f"{name}.bias {tuple(layer.bias.shape)}"] = layer.bias
    if arch.is_cnn:  # fc1 reads maps, not pixels: its rows are no images (the Filters tab has conv1's)
        return plots.histograms(panels, columns=2, title=f"Initial values: {init.label()}"), None
    shown = min(SHOWN_UNITS, arch.hidden[0])
    first = f" (first {shown} of {arch.hidden[0]})" if shown < arch.hidden[0] else ""
    images = plots.weight_images(model.fc1.weight, max_units=SHOWN_UNITS, shared_scale=shared_scale,
                                 title=f"fc1 weights as 28×28 images, one per hidden unit{first}")
    return plots.histograms(panels, columns=2, title=f"Initial values: {init.label()}"), images


@st.cache_resource(max_entries=256, show_spinner=False)
def forward_figure(arch: Architecture, init: Init, seed: int, index: int, data_name: str):
    test_split = lab_ui.split(False, data_name)
    image = test_split.normalized([index])
    ps = probabilities(untrained(arch, init, seed), image)[0]
    return plots.view_classify(image[0], ps, label=int(test_split.labels[index]),
                               title=f"Untrained {arch.label()}, init {init.label()}",
                               classes=test_split.dataset.classes)


@st.cache_resource(max_entries=256, show_spinner=False)
def network_view(arch: Architecture, init: Init, seed: int, index: int, data_name: str):
    test_split = lab_ui.split(False, data_name)
    classes = test_split.dataset.classes
    return network_diagram.network_figure(
        untrained(arch, init, seed), test_split.normalized([index]), class_names=classes,
        title=f"Untrained {arch.label()}: test image {index}, label {classes[int(test_split.labels[index])]}")


@st.cache_resource(max_entries=64, show_spinner=False)
def filters_view(arch: Architecture, init: Init, seed: int):
    return conv_plots.filters_figure(untrained(arch, init, seed),
                                     title=f"Untrained filters: init {init.label()}, seed {seed}")


@st.cache_resource(max_entries=256, show_spinner=False)
def feature_maps_view(arch: Architecture, init: Init, seed: int, index: int, data_name: str):
    test_split = lab_ui.split(False, data_name)
    classes = test_split.dataset.classes
    maps = conv_plots.feature_maps(untrained(arch, init, seed), test_split.normalized([index]))
    return conv_plots.feature_maps_figure(
        maps, title=f"Untrained: test image {index}, label {classes[int(test_split.labels[index])]}")


@st.cache_resource(max_entries=64, show_spinner=False)
def activation_view(arch: Architecture, init: Init, seed: int, data_name: str) -> tuple:
    hidden = activations.hidden_activations(untrained(arch, init, seed),
                                        lab_ui.split(False, data_name).normalized(slice(0, ACTIVATION_BATCH)))
    rows = pd.DataFrame([{"layer": a.name, "units": a.values.shape[1],
                          "cannot learn much": f"{a.share:.0%} {a.problem}"} for a in hidden])
    return rows, plots.histograms({a.label(): a.values for a in hidden}, columns=2, x_title="activation",
                                  log_y=True, title="How often each activation value occurs (log scale)")


# -- Dataset: classmates with the same loader settings see the same batches in the same order ---------
# `batch` is the batch's fingerprint (the page's); a rerun that changes nothing (or only the page's
# fragment) rebuilds none.

BEFORE = "0 to 255 (stored)"


def pixel_views(dataset: Dataset) -> dict[str, str]:
    """The pixel-value views after ToTensor, each with its normalization's name: the lesson's Normalize
    first; the others are what the Train page also offers (see its help)."""
    return {"−1 to 1 (the lesson's Normalize)": "lesson", f"{dataset.title}'s mean and std": dataset.name,
            "0 to 1 (ToTensor alone)": "none"}


@st.cache_resource(max_entries=256, show_spinner=False)
def grid_figure(batch: str, title: str, data_name: str, _images: torch.Tensor, _labels: torch.Tensor):
    return plots.digit_grid(_images, _labels, title=title, dataset=lab_ui.split(True, data_name).dataset)


@st.cache_resource(max_entries=256, show_spinner=False)
def pixel_figure(batch: str, index: int, view: str, label: str, data_name: str, _image: torch.Tensor):
    dataset = lab_ui.split(True, data_name).dataset
    stored = ((_image * STD + MEAN) * 255).round()  # undo the lesson's Normalize: the stored 8-bit values
    if view == BEFORE:
        return plots.pixel_values(stored, decimals=0, dataset=dataset,
                                  title=f"images[{index}], label {label}: stored 8-bit values")
    name = pixel_views(dataset)[view]
    how = "ToTensor (÷255)" + (f" and {normalize_code(name)}" if name != "none" else "")
    return plots.pixel_values(normalize(stored.to(torch.uint8)[0], name), decimals=1, dataset=dataset,
                              title=f"images[{index}] after {how}")


@st.cache_resource(show_spinner=False)
def counts_figure(train: bool, data_name: str):
    split = lab_ui.split(train, data_name)
    return plots.class_counts(split.class_counts(), title=f"{len(split):,} images",
                              classes=split.dataset.classes)


# -- Draw: saved models while their files are unchanged; a drawing's shift test and feature maps ------

@st.cache_resource(max_entries=16, show_spinner=False)
def saved_model(name: str, stamp: tuple) -> model_files.SavedModel:
    """A saved model, read once per server while its file is unchanged (`stamp`: mtime and size)."""
    return model_files.load(name)


@st.cache_resource(max_entries=64, show_spinner=False)
def shift_result(key: str, label: str, normalization: str, target: int | None, data_name: str, _model,
                 _image) -> shift_test.ShiftTest:
    """One network's shift test on one drawing, keyed by its weights' and the drawing's `key`."""
    return shift_test.shift_test(_model, _image, normalization, label, target, DATASETS[data_name])


@st.cache_resource(max_entries=32, show_spinner=False)
def shift_figure(keys: tuple, _tests: list) -> object:
    return shift_plots.shift_figure(_tests)


@st.cache_resource(max_entries=32, show_spinner=False)
def feature_maps_figure(key: str, _model, _image) -> object:
    return conv_plots.feature_maps_figure(conv_plots.feature_maps(_model, _image))


# -- From tensors: the lesson's network for one (n_hidden, seed) and its figures -----------------------
# Moving the image slider or coming back to the page rebuilds nothing but the chosen image's figure.

@st.cache_resource(max_entries=32, show_spinner=False)
def lesson_network(n_hidden: int, seed: int, data_name: str) -> tuple:
    split = lab_ui.split(True, data_name)
    images, labels = next(iter(FastLoader(split, lesson_step.BATCH, shuffle=True, seed=seed)))
    t = TensorNetwork.random(n_hidden, seed, split.dataset).forward(images)
    hidden = layer_activations(t["hidden"], "sigmoid", "hidden")
    figure = plots.histograms({f"hidden: {hidden.share:.0%} of activations saturated": t["hidden"]},
                              columns=1, x_title="sigmoid output", panel_height=300)
    return images, labels, t, figure


@st.cache_resource(max_entries=256, show_spinner=False)
def image_figure(n_hidden: int, seed: int, index: int, data_name: str):
    images, labels, t, _ = lesson_network(n_hidden, seed, data_name)
    return plots.view_classify(images[index], t["probabilities"][index], label=int(labels[index]),
                               title=f"images[{index}] through the untrained network",
                               dataset=lab_ui.split(True, data_name).dataset)


# -- Lesson --------------------------------------------------------------------------------------------

@st.cache_resource(max_entries=16, show_spinner="Running the lesson's code…")
def lesson_outputs(values: lesson_step.LessonValues, part: int = 1) -> list[lesson.Output]:
    """Every step's output of a part for these values, shared by all visitors (only ever read).
    Part 2 trains three networks (about 15 s): run once per seed, then read from here."""
    outputs = lesson.run(values, part=part)
    outputs[-1].namespace = {}  # the data set and models: not kept in the cache
    return outputs


# -- Explore -------------------------------------------------------------------------------------------

@st.cache_resource(show_spinner=False)
def sweeps_at(url: str, old_file: str) -> sweep_db.SweepDatabase:
    """The server's sweeps, in the app's database (the sweeps file of earlier versions imported once)."""
    return sweep_db.SweepDatabase(url, old_files=[old_file])
