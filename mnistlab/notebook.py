"""Jupyter notebooks to take home: the lesson with the visitor's values, a Build network, a Train run.

Written with nbformat, without outputs: run top to bottom, each prints what the app showed (the
lesson's steps are `mnistlab.lesson.PARTS`, the code is `codegen` and `training_code.source`, all
shared with the pages). MNIST is read where the app found it ($MNISTLAB_DATA or the lesson's folder), and
downloaded when it is not there.
"""

from __future__ import annotations

import nbformat
from nbformat import v4

from mnistlab import codegen, lesson_step, training_code
from mnistlab.dataset import MNIST, Dataset
from mnistlab.lesson import PARTS
from mnistlab.network import Network
from mnistlab.train_config import TrainConfig


def view_classify_code(dataset: Dataset = MNIST) -> str:
    """The lesson's helper.view_classify for `dataset`'s images and classes, drawn with Plotly (the app
    draws its own, plots.view_classify)."""
    h, w, n = dataset.height, dataset.width, dataset.n_classes
    return f'''import plotly.graph_objects as go
from plotly.subplots import make_subplots


def view_classify(img, ps):
    """The lesson's helper: an image and its {n} class probabilities, side by side."""
    fig = make_subplots(rows=1, cols=2, column_widths=[0.4, 0.6],
                        subplot_titles=("image", "class probability"))
    fig.add_trace(go.Heatmap(z=img.view({h}, {w}).numpy(), colorscale="gray", showscale=False),
                  row=1, col=1)
    fig.add_trace(go.Bar(x=ps.detach().view({n}).numpy(), y=[str(c) for c in range({n})],
                         orientation="h"), row=1, col=2)
    fig.update_yaxes(autorange="reversed", scaleanchor="x", row=1, col=1)
    fig.update_xaxes(range=[0, 1.1], row=1, col=2)
    fig.update_layout(showlegend=False, height=380)
    return fig'''


VIEW_CLASSIFY = view_classify_code(MNIST)  # the lesson's: MNIST

ONE_THREAD = ("torch.set_num_threads(1)  # as MNIST Lab's server: the same arithmetic, in the same order, "
              "so the same weights")


def _notebook(cells: list) -> nbformat.NotebookNode:
    nb = v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def to_bytes(nb: nbformat.NotebookNode) -> bytes:
    """The .ipynb file's contents."""
    nbformat.validate(nb)
    return nbformat.writes(nb).encode()


def _values_line(values: lesson_step.LessonValues) -> str:
    return (f"hidden units {values.n_hidden} (steps 5-9), hidden layers {values.hidden[0]} and "
            f"{values.hidden[1]} (steps 11-14), seed {values.seed}, init std {values.std:g}, "
            f"image {values.index} of the batch")


def lesson(values: lesson_step.LessonValues = lesson_step.DEFAULT, part: int = 1) -> nbformat.NotebookNode:
    """A part of the lesson with these values: each step a markdown cell (what it shows, what changed
    since 2018) and its code cell, after a cell with the lesson's `view_classify` helper (parts 2 and
    3, which train, first run torch on one thread as the app does, to print the same losses; part 3
    draws no probabilities, so it has no helper)."""
    if part == 1:
        cells = [v4.new_markdown_cell(
                     "# Neural Network Architecture: PyTorch's `nn` on MNIST\n\n"
                     f"The lesson as MNIST Lab shows it, with {_values_line(values)}. Run the cells in "
                     "order: each prints what the app's Lesson page showed."),
                 v4.new_code_cell(VIEW_CLASSIFY)]
    else:
        title = {2: "Validation and overfitting: PyTorch on MNIST",
                 3: "Convolutions: a CNN on Fashion-MNIST, beside part 2's network"}[part]
        cells = [v4.new_markdown_cell(
                     f"# {title}\n\n"
                     f"Part {part} of the lesson as MNIST Lab shows it, with seed {values.seed}. Run the "
                     "cells in order: each prints what the app's Lesson page showed."),
                 v4.new_code_cell(("" if part == 3 else f"{VIEW_CLASSIFY}\n\n")  # part 3 has no use for it
                                  + f"import torch\n\n{ONE_THREAD}")]
    for s in PARTS[part - 1].steps:
        text = f"## {s.number}. {s.title}\n\n{s.text}"
        if s.note:
            text += f"\n\n> **Changed since the 2018 lesson:** {s.note}"
        cells += [v4.new_markdown_cell(text), v4.new_code_cell(s.source(values))]
    return _notebook(cells)


def _network_cells(net: Network, style: str) -> list:
    return [v4.new_markdown_cell(f"## The network: {net.label()}\n\n"
                                 f"Written as {codegen.STYLES[style]}; it draws exactly the weights "
                                 f"MNIST Lab shows for this seed."),
            v4.new_code_cell(codegen.generate(net, style).rstrip("\n")),
            v4.new_code_cell("print(f\"{sum(p.numel() for p in model.parameters()):,} parameters\")")]


def build(net: Network, style: str = "sequential") -> nbformat.NotebookNode:
    """The Build page's network as code in the chosen style, and its parameter count."""
    return _notebook([v4.new_markdown_cell(f"# MNIST Lab: a {net.arch.label()} network\n\n"
                                           "The network from MNIST Lab's Build page."),
                      *_network_cells(net, style)])


def training_source(config: TrainConfig, arch=None) -> str:
    """The Train page's training code (for a network of `arch`), reading the data set where this app does."""
    code = training_code.source(config, arch)
    folder = repr(lesson_step.data_folder_text(config.data))
    lesson_folder = f'"{config.data.lesson_folder}"'  # how training_code.source names the data folder
    if lesson_folder not in code:
        raise RuntimeError("training_code.source no longer names the lesson's data folder as expected")
    return code.replace(lesson_folder, folder.replace("'", '"')).rstrip("\n")  # training and validation's


def evaluation_source(config: TrainConfig, arch=None) -> str:
    images = "images" if arch is not None and arch.is_cnn else "images.view(images.shape[0], -1)"
    return f"""testset = datasets.{config.data.torchvision_name}(trainset.dataset.root, download=True,
                            train=False, transform=transform)
testloader = DataLoader(testset, batch_size=1000)
model.eval()
correct = 0
with torch.no_grad():
    for images, labels in testloader:
        ps = model({images})
        correct += (ps.argmax(dim=1) == labels).sum().item()
print(f"Test accuracy (held out, not used to choose): {{correct / len(testset):.2%}}")"""


def trained(net: Network, config: TrainConfig, accuracy: float | None = None) -> nbformat.NotebookNode:
    """A Train page run: the network (OrderedDict `nn.Sequential`), the training code as the page
    shows it, and an evaluation cell that prints the test accuracy the app measured."""
    measured = "" if accuracy is None else f" MNIST Lab measured **{accuracy:.2%}**."
    return _notebook([
        v4.new_markdown_cell(f"# MNIST Lab: training {net.arch.label()}\n\n{config.label()}. Run every cell: "
                             f"the last prints the accuracy on the test images (held out, not used to "
                             f"choose).{measured}"),
        v4.new_code_cell(f"import torch\n\n{ONE_THREAD}"),
        *_network_cells(net, "sequential"),
        v4.new_markdown_cell("## Training, as the Train page shows it"),
        v4.new_code_cell(training_source(config, net.arch)),
        v4.new_markdown_cell(f"## Evaluation on the {config.data.title} test images"),
        v4.new_code_cell(evaluation_source(config, net.arch)),
    ])
