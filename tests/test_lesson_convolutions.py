"""The lesson's part 3, "Convolutions", on real Fashion-MNIST: the hand-set edge filter's map is what
F.conv2d computes, ReLU and pooling do what the steps say, the CNN has the shapes and parameters the
app's own Architecture gives, and it does at least as well as part 2's network, on the same splits,
with a fortieth of the parameters. Its page and its notebook show what the steps print."""

import copy
import re

import pytest
import torch
import torch.nn.functional as F
from streamlit.testing.v1 import AppTest

from mnistlab import lesson, lesson_convolutions, notebook
from mnistlab.architecture import Architecture
from mnistlab.dataset import FASHION
from mnistlab.lesson_step import DEFAULT, LessonValues

PART = 3
STEPS = lesson_convolutions.STEPS


@pytest.fixture(scope="module")
def run(lesson_part):
    """Part 3's outputs and its namespace after the last step, on one thread as the app's server
    (about 15 s: it trains both networks; once for the session, tests/conftest.py)."""
    outputs = lesson_part(PART)
    return outputs, outputs[-1].namespace


def test_part_3_follows_the_course_order_and_each_step_is_data():
    titles = [s.title for s in STEPS]
    order = ["Fashion-MNIST", "edge filter in nn.Conv2d", "ReLU", "Max pooling", "A small CNN",
             "parameters", "training loop", "Train the CNN", "Part 2's network", "CNN against MLP",
             "filters", "Feature maps"]
    found = [next(i for i, t in enumerate(titles) if word in t) for word in order]
    assert found == sorted(found), titles
    part = lesson.PARTS[PART - 1]
    assert part.label == "Part 3: Convolutions" and part.steps is STEPS and part.dataset is FASHION
    code = "\n".join(s.source() for s in STEPS)
    assert "torch.no_grad()" in code and "nn.MaxPool2d(2)" in code and "datasets.FashionMNIST" in code


def test_part_3_reads_only_the_seed():
    changed = LessonValues(n_hidden=64, hidden=(32, 16), seed=5, std=0.1, index=3)
    assert lesson.PARTS[PART - 1].values(changed) == LessonValues(seed=5)
    assert all(s.source(changed) == s.source(LessonValues(seed=5)) for s in STEPS)
    assert "manual_seed(5)" in STEPS[0].source(changed) and "manual_seed(5)" in STEPS[4].source(changed)


def test_its_address_is_part_3_and_a_bad_part_names_all_three():
    assert lesson.parse_part("3") == (3, None)
    part, notice = lesson.parse_part("4")
    assert part == 1 and "parts are 1 to 3" in notice
    assert lesson.parse_step("12", len(STEPS)) == (12, None)
    assert "steps are 1 to 12" in lesson.parse_step("13", len(STEPS))[1]


def test_step_1_splits_fashion_mnist_as_part_2_splits_mnist(run):
    outputs, ns = run
    assert outputs[0].text == "training 20000 of 50000, validation 10000, test 10000"
    part_2 = lesson.run(DEFAULT, upto=1, part=2)[-1].namespace
    assert ns["validset"].indices == part_2["validset"].indices  # the same seed, the same split
    assert ns["trainset"].indices == part_2["trainset"].indices
    assert type(ns["fullset"]).__name__ == "FashionMNIST" and len(ns["trainloader"].dataset) == 20000
    first, label = ns["trainsubset"][0]  # transformed once: the loader's images are the data set's
    assert torch.equal(ns["trainloader"].dataset[0][0], first) and ns["trainloader"].dataset[0][1] == label


def test_step_2_the_edge_filters_map_is_what_f_conv2d_computes_with_that_kernel(run):
    outputs, ns = run
    kernel = torch.tensor(lesson_convolutions.SOBEL, dtype=torch.float32).view(1, 1, 3, 3)
    assert torch.equal(ns["conv"].weight, kernel) and ns["conv"].bias is None
    expected = F.conv2d(ns["image"].unsqueeze(0), kernel)
    assert ns["feature_map"].shape == (1, 1, 26, 26)
    assert torch.allclose(ns["feature_map"], expected, atol=1e-6)
    image, label = ns["testset"][lesson_convolutions.IMAGE]
    assert torch.equal(ns["image"], image) and FASHION.classes[label] == "Trouser"
    assert outputs[1].text.splitlines() == [
        "Trouser (1, 28, 28)", "(1, 1, 26, 26)",
        f"from {expected.min():.1f} to {expected.max():.1f}"]


def test_step_3_relu_keeps_the_positive_side_of_each_edge(run):
    outputs, ns = run
    assert torch.equal(ns["activated"], ns["feature_map"].clamp(min=0))
    before, after, share = outputs[2].text.splitlines()
    assert "-" in before and "-" not in after  # the right edges' negatives are 0
    assert share == f"{(ns['feature_map'] < 0).float().mean():.0%} of the map was negative: now 0"


def test_step_4_pooling_halves_the_shape_and_keeps_the_strongest(run):
    outputs, ns = run
    assert ns["pooled"].shape == (1, 1, 13, 13)
    assert torch.equal(ns["pooled"], F.max_pool2d(ns["activated"], 2))
    assert ns["pooled"].max() == ns["activated"].max()
    blocks = ns["activated"][0, 0, 14:16, 6:18].unfold(1, 2, 2).amax(dim=(0, 2))  # six 2×2 blocks
    assert torch.equal(ns["pooled"][0, 0, 7, 3:9], blocks)
    assert outputs[3].text.splitlines()[0] == "(1, 1, 26, 26) → (1, 1, 13, 13)"


def test_step_5_the_cnns_shapes_and_parameters_are_the_apps_own(run):
    outputs, ns = run
    arch = Architecture.parse("", "relu", conv="8:5,16:5")  # the same layout, as Build counts it
    lines = outputs[4].text.splitlines()
    rows = {line.split()[0]: line for line in lines[1:-1]}
    shown = [re.search(r"\([\d, ]+\)", rows[name]).group()
             for name in ("input", "conv1", "pool1", "conv2", "pool2", "flatten", "output")]
    # (64, 1, 28, 28) → (64, 8, 24, 24) → (64, 8, 12, 12) → (64, 16, 8, 8) → (64, 16, 4, 4) → …
    assert shown == [str((64, *shape)) for shape in arch.shapes()]
    assert rows["relu1"].split()[1:] == rows["conv1"].split()[1:-1]  # ReLU keeps the shape
    model = ns["model"]
    assert sum(p.numel() for p in model.parameters()) == arch.n_parameters == 5994
    assert lines[-1].split() == ["in", "all", "5,994"]
    assert [r["parameters"] for r in arch.table() if r["parameters"]] == [208, 3216, 2570]
    assert [line.split()[-1] for line in lines if line.split()[0] in ("conv1", "conv2", "output")] == [
        "208", "3,216", "2,570"]


def test_the_cnn_matches_or_beats_part_2s_network_with_a_fortieth_of_the_parameters(run):
    outputs, ns = run
    count = ns["count"]
    cnn, mlp = count(ns["model"]), count(ns["mlp"])
    assert (cnn, mlp) == (5994, 242762) and mlp > 40 * cnn
    # both trained by the same `fit` on the same 20,000 images, validated on the same 10,000;
    # measured on one thread: CNN 84.6%, MLP 83.3% validation; 84.3% and 82.7% test
    assert ns["cnn_valid"] >= ns["mlp_valid"] > 0.80
    header, cnn_row, mlp_row, chosen = outputs[9].text.splitlines()
    assert header.split() == ["parameters", "validation", "test"]
    assert cnn_row.split()[:3] == ["CNN", "5,994", f"{ns['cnn_valid']:.1%}"]
    assert mlp_row.split()[:3] == ["MLP", "242,762", f"{ns['mlp_valid']:.1%}"]
    assert float(cnn_row.split()[3].rstrip("%")) >= float(mlp_row.split()[3].rstrip("%")) - 0.5
    assert chosen == "Chosen on validation: the CNN. Test only reports."
    for training in (outputs[7].text, outputs[8].text):  # each kept its best validation epoch
        rows = [line.split() for line in training.splitlines()[1:-1]]
        assert len(rows) == lesson_convolutions.EPOCHS
        best = max(rows, key=lambda r: float(r[3].rstrip("%")))
        assert best[-1] == "best" and training.splitlines()[-1].startswith(f"Keeping epoch {best[0]}:")


def test_steps_11_and_12_draw_the_learned_filters_and_feature_maps(run):
    outputs, ns = run
    assert all(outputs[n - 1].picture is not None for n in (2, 3, 4, 11, 12))
    assert [len(outputs[n - 1].picture.data) for n in (2, 3, 4)] == [2, 3, 4]  # the image and its maps
    filters = outputs[10].picture
    assert [a.text for a in filters.layout.annotations] == ["<b>conv1</b>", "<b>conv2</b>"]
    maps = outputs[11].picture
    assert [a.text for a in maps.layout.annotations] == ["<b>conv1 → relu1 → pool1</b>",
                                                         "<b>conv2 → relu2 → pool2</b>"]
    assert outputs[10].text.splitlines()[:2] == ["(8, 1, 5, 5)", "(16, 8, 5, 5)"]
    assert outputs[11].text.splitlines()[-1].startswith("pool2  (1, 16, 4, 4)")


@pytest.mark.slow
def test_the_part_3_notebook_prints_what_the_lesson_page_shows(tmp_path, run):
    from tests.test_notebook import execute, text_of

    outputs, _ = run
    nb = execute(notebook.lesson(part=PART), tmp_path)
    assert nb.cells[0].source.startswith("# Convolutions")
    cells = [c for c in nb.cells if c.cell_type == "code"][1:]  # after one thread
    assert "torch.set_num_threads(1)" in nb.cells[1].source and "view_classify" not in nb.cells[1].source
    assert len(cells) == len(outputs) == len(STEPS)
    for step, cell, output in zip(STEPS, cells, outputs):
        assert not [o for o in cell.outputs if o.output_type == "error"], step.title
        assert cell.source == step.source()
        assert text_of(cell) == output.text, f"step {step.number}"


# -- the page ---------------------------------------------------------------------------------------

@pytest.fixture
def page_reads_the_run(run, monkeypatch):
    """The page's part 3 is the module's run (the same values, one thread), so that it does not train
    both networks again: these tests are about what the page shows of it."""
    real = lesson.run

    def shared(values=DEFAULT, upto=None, part=1):
        if part == PART and values == DEFAULT and upto is None:
            return [copy.copy(o) for o in run[0]]  # the page empties the last one's namespace
        return real(values, upto, part)

    monkeypatch.setattr(lesson, "run", shared)


@pytest.mark.usefixtures("navigation_mode", "page_reads_the_run")
@pytest.mark.parametrize("number", [1, 4, 10, 12])
def test_the_page_renders_part_3s_steps_code_then_what_it_printed(number, run):
    at = AppTest.from_file("../app.py", default_timeout=300)
    at.query_params.update({"part": "3", "step": str(number)})
    at.run()
    at.switch_page("pages/lesson.py").run()
    assert not at.exception, [e.value for e in at.exception]
    step = lesson.step(number, part=PART)
    assert at.header[0].value == f"{number}. {step.title}" and not at.error and not at.warning
    output = run[0][number - 1]
    assert [c.value for c in at.code][:2] == [step.source(), output.text]
    assert len(at.get("plotly_chart")) == (output.picture is not None)
    assert at.radio(key="l_part_choice").value == 3
    assert any("Fashion-MNIST" in i.value for i in at.info)  # the sidebar's MNIST is not this part's


@pytest.mark.usefixtures("navigation_mode", "page_reads_the_run")
def test_a_step_beyond_part_3_is_its_first_step_with_the_notice():
    at = AppTest.from_file("../app.py", default_timeout=300)
    at.query_params.update({"part": "3", "step": "13"})
    at.run()
    at.switch_page("pages/lesson.py").run()
    assert at.header[0].value == f"1. {STEPS[0].title}" and "steps are 1 to 12" in at.warning[0].value
