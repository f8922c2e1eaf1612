"""The downloaded notebooks, executed top to bottom by nbclient in a real ipykernel, on real MNIST:
they print what the app showed, draw the same weights, and train to the same test accuracy."""

import base64
import json

import nbclient
import nbformat
import numpy as np
import pytest
import torch

from mnistlab import (
    codegen,
    lesson,
    lesson_networks,
    lesson_validation,
    network,
    notebook,
    runs,
    training_code,
)
from mnistlab.layers import Conv, Pool
from mnistlab.lesson_step import LessonValues
from mnistlab.network import Architecture, Init
from mnistlab.train_config import TrainConfig

OTHER = LessonValues(n_hidden=100, hidden=(200, 50), seed=3, std=0.1, index=9)


def execute(nb, tmp_path, extra: str | None = None) -> nbformat.NotebookNode:
    """Runs every cell in a fresh kernel (the venv's python3), in tmp_path; `extra` is appended as
    one more cell (e.g. to save the weights for the test to compare)."""
    nb = nbformat.reads(notebook.to_bytes(nb).decode(), as_version=4)  # the downloaded file itself
    if extra:
        nb.cells.append(nbformat.v4.new_code_cell(extra))
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    return nb


def text_of(cell) -> str:
    """A code cell's outputs as the page shows them: what it printed, then its Out[] repr."""
    printed = "".join(o.text for o in cell.outputs if o.output_type == "stream" and o.name == "stdout")
    result = [o.data["text/plain"] for o in cell.outputs if o.output_type == "execute_result"]
    return "\n".join(t for t in (printed.rstrip("\n"), *result) if t)


def figure_of(cell) -> dict:
    (shown,) = [o for o in cell.outputs if "application/vnd.plotly.v1+json" in o.get("data", {})]
    return shown.data["application/vnd.plotly.v1+json"]


def values(trace: dict, key: str) -> np.ndarray:
    v = trace[key]
    if isinstance(v, dict):  # Plotly's packed arrays
        a = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
        return a.reshape([int(n) for n in str(v["shape"]).split(",")]) if "shape" in v else a
    return np.asarray(v, dtype=np.float64)


@pytest.mark.slow
def test_the_lesson_notebook_prints_what_the_lesson_page_shows(tmp_path):
    nb = execute(notebook.lesson(OTHER), tmp_path)
    cells = [c for c in nb.cells if c.cell_type == "code"][1:]  # after the view_classify helper
    app = lesson.run(OTHER)
    assert len(cells) == len(app) == 14
    for step, cell, output in zip(lesson_networks.STEPS, cells, app):
        assert not [o for o in cell.outputs if o.output_type == "error"], step.title
        assert cell.source == step.source(OTHER)
        assert text_of(cell) == output.text, f"step {step.number}"
    image = values(figure_of(cells[2])["data"][0], "z")  # step 3: the same pixels
    assert np.allclose(image, np.asarray(app[2].figure.data[0].z, dtype=np.float64))
    bars = values(figure_of(cells[12])["data"][1], "x")  # step 13: the same probabilities
    assert np.allclose(bars, np.asarray(app[12].figure.data[1].x), atol=1e-6)


@pytest.mark.slow
def test_the_part_2_notebook_prints_what_the_lesson_page_shows(tmp_path, lesson_part):
    """The notebook with the page's values, run in a kernel, against the session's run of part 2 (on one
    thread, as the app's server and the notebook's first cell), as part 3's notebook test does."""
    chosen = LessonValues(seed=3)  # a visitor's value reaches every step of the notebook they download
    assert [c.source for c in notebook.lesson(chosen, part=2).cells if c.cell_type == "code"][1:] == [
        s.source(chosen) for s in lesson_validation.STEPS]
    nb = execute(notebook.lesson(part=2), tmp_path)
    assert nb.cells[0].source.startswith("# Validation and overfitting")
    cells = [c for c in nb.cells if c.cell_type == "code"][1:]  # after view_classify and one thread
    app = lesson_part(2)
    assert len(cells) == len(app) == len(lesson_validation.STEPS)
    for step, cell, output in zip(lesson_validation.STEPS, cells, app):
        assert not [o for o in cell.outputs if o.output_type == "error"], step.title
        assert cell.source == step.source()
        assert text_of(cell) == output.text, f"step {step.number}"
    curves = figure_of(cells[10])["data"]  # step 11: the same four loss curves
    for shown, drawn in zip(curves, app[10].figure.data):
        assert np.allclose(values(shown, "y"), np.asarray(drawn.y))
    bars = values(figure_of(cells[12])["data"][1], "x")  # step 13: the same probabilities
    assert np.allclose(bars, np.asarray(app[12].figure.data[1].x), atol=1e-6)


@pytest.mark.parametrize("style", list(codegen.STYLES))
def test_the_build_notebook_prints_the_model_and_draws_builds_weights(style, tmp_path):
    arch, init, seed = Architecture.parse("96,32", "tanh,relu"), Init(zero_bias=True, weight_std=0.05), 11
    nb = execute(notebook.build(network.Network(arch, init, seed), style), tmp_path,
                 "torch.save(model.state_dict(), 'weights.pt')")
    network_cell, count_cell = [c for c in nb.cells if c.cell_type == "code"][:2]
    assert text_of(network_cell) == codegen.printed(arch, style)
    assert text_of(count_cell) == f"{arch.n_parameters:,} parameters"
    saved = torch.load(tmp_path / "weights.pt")
    expected = codegen.state_dict_for(network.build(arch, init, seed).state_dict(), arch, style)
    assert saved.keys() == expected.keys()
    assert all(torch.equal(saved[k], expected[k]) for k in expected)


# The train notebook's oracle, one case per data set, each on 6,000 training images (the code for all
# of them differs by one slice, and tests/test_train.py trains that code on all of them): a CNN with
# dropout and batch norm after its convolution and both hidden layers, masks seeded as the app draws
# them (torch.manual_seed(batch seed) before the loop), on MNIST; an MLP on Fashion-MNIST.
TRAINED = {
    "mnist, cnn, dropout, batch norm": (
        Architecture((64, 32), "relu", dropout=(0.5, 0.2), batch_norm=True,
                     features=(Conv(4, 5, 0, "relu", 0.2), Pool(2))),
        TrainConfig(batch_size=128, epochs=1, batch_seed=2, train_images=6_000)),
    "fashion": (Architecture.parse("64", "relu"),
                TrainConfig(batch_size=128, epochs=1, batch_seed=2, normalization="none", dataset="fashion",
                            train_images=6_000)),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", TRAINED)
def test_the_train_notebook_trains_the_apps_very_weights_to_the_apps_test_accuracy(case, tmp_path, splits_of):
    """The downloaded notebook, run top to bottom in a kernel: the Train page's code, the model the app
    trained, tensor for tensor (batch norm's running statistics too), scored in eval mode as the app."""
    arch, config = TRAINED[case]
    splits = splits_of(config.dataset)
    torch.set_num_threads(1)  # as the app's server
    run = runs.run(network.Network(arch, Init(), 4), config, *splits)
    nb = execute(notebook.trained(network.Network(arch, Init(), 4), config, run.accuracy), tmp_path,
                 "torch.save(model.state_dict(), 'trained.pt')")
    code = [c for c in nb.cells if c.cell_type == "code"]
    shown = training_code.source(config, arch)  # as the Train page shows it
    assert shown.split("trainset =")[0] in code[3].source
    assert f"datasets.{splits[0].dataset.torchvision_name}(" in code[3].source
    if arch.has_dropout:
        assert "torch.manual_seed(2)  # the dropout masks" in code[3].source
    assert text_of(code[-2]) == f"Test accuracy (held out, not used to choose): {run.accuracy:.2%}"
    assert f"**{run.accuracy:.2%}**" in nb.cells[0].source
    trained = torch.load(tmp_path / "trained.pt")
    assert trained.keys() == run.state.keys()
    assert all(torch.equal(trained[k], run.state[k]) for k in run.state), "the very weights the app trained"
    if arch.batch_norm:
        assert {"bn2.running_var", "bn_conv1.running_var"} <= set(trained)


def test_notebooks_are_valid_and_read_mnist_where_the_app_does(monkeypatch):
    monkeypatch.setenv("MNISTLAB_DATA", "/some/where")
    lesson = notebook.lesson()
    nbformat.validate(lesson)
    assert "datasets.MNIST('/some/where'" in lesson.cells[3].source
    config = TrainConfig()
    assert 'datasets.MNIST("/some/where"' in notebook.training_source(config)
    monkeypatch.delenv("MNISTLAB_DATA")
    assert "datasets.MNIST('~/.pytorch/MNIST_data/'" in notebook.lesson().cells[3].source
    assert json.loads(notebook.to_bytes(lesson))["metadata"]["kernelspec"]["name"] == "python3"


def test_the_part_2_notebook_has_its_steps_after_one_thread_and_view_classify():
    part_2 = notebook.lesson(part=2)
    nbformat.validate(part_2)
    assert "torch.set_num_threads(1)" in part_2.cells[1].source
    assert [c.source for c in part_2.cells if c.cell_type == "code"][1:] == [
        s.source() for s in lesson_validation.STEPS]
