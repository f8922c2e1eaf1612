"""The lesson's part 2, "Validation and overfitting", on real MNIST: each step prints what its code
prints, and what the step text claims happens (the validation loss turns up, eval mode is
deterministic, early stopping keeps the best epoch, the test set is used once)."""

import numpy as np
import pytest
import torch

from mnistlab import lesson, lesson_networks, lesson_validation
from mnistlab.lesson_step import DEFAULT, LessonValues

PART = 2
STEPS = lesson_validation.STEPS


@pytest.fixture(scope="module")
def run(lesson_part):
    """Part 2's outputs and its namespace after the last step, on one thread as the app's server (run
    once for the session: tests/conftest.py)."""
    outputs = lesson_part(PART)
    return outputs, outputs[-1].namespace


def table(text: str) -> list[tuple[int, float, float, float]]:
    """The per-epoch rows a training step printed: epoch, training loss, validation loss, accuracy."""
    lines = text.splitlines()
    start = lines.index(lesson_validation.HEADER) + 1
    rows = []
    for line in lines[start:]:
        parts = line.split()
        if not parts or not parts[0].isdigit():
            break
        rows.append((int(parts[0]), float(parts[1]), float(parts[2]), float(parts[3].rstrip("%")) / 100))
    return rows


def test_part_2_follows_the_course_order_and_each_step_is_data():
    titles = [s.title for s in STEPS]
    order = ["Training, validation and test sets", "topk", "Right or wrong", "Accuracy",
             "validate every epoch", "Overfitting", "Dropout", "model.eval()", "Train with dropout",
             "With and without dropout",
             "Early stopping", "evaluation mode", "The test set"]
    found = [next(i for i, t in enumerate(titles) if word in t) for word in order]
    assert found == sorted(found), titles
    assert lesson.PARTS[1].label == "Part 2: Validation and overfitting"
    assert lesson.PARTS[0].label == "Part 1: Neural networks in PyTorch"
    assert lesson.PARTS[0].steps is lesson_networks.STEPS and lesson.PARTS[1].steps is STEPS
    notes = " ".join(s.note or "" for s in STEPS)
    for change in ("equals.type(torch.FloatTensor)", "equals.float()", "model.forward(img)", "test set"):
        assert change in notes, change
    code = "\n".join(s.source() for s in STEPS)
    assert "FloatTensor" not in code and "model.forward(" not in code
    assert "nn.Dropout(p=0.2)" in code and "model.eval()" in code and "model.train()" in code


def test_step_1_splits_50000_and_10000_disjoint_and_seeded_and_trains_on_1000(run):
    outputs, ns = run
    assert outputs[0].text == "training 1000 of 50000, validation 10000, test 10000"
    train, valid = set(ns["trainset"].indices), set(ns["validset"].indices)
    assert not train & valid and len(train | valid) == 60000
    assert ns["trainsubset"].indices == range(1000)
    again = lesson.run(DEFAULT, upto=1, part=PART)[-1].namespace
    assert again["validset"].indices == ns["validset"].indices  # the same seed, the same split
    other = lesson.run(LessonValues(seed=3), upto=1, part=PART)[-1].namespace
    assert other["validset"].indices != ns["validset"].indices
    assert "manual_seed(3)" in STEPS[0].source(LessonValues(seed=3))


def test_steps_2_to_5_probabilities_topk_equals_and_accuracy(run):
    outputs, _ = run
    ns = lesson.run(upto=5, part=PART)[-1].namespace
    assert outputs[1].text == "torch.Size([1000, 10])"
    assert torch.allclose(ns["ps"].sum(dim=1), torch.ones(1000))
    assert torch.equal(ns["top_class"][:, 0], ns["ps"].argmax(dim=1))
    assert outputs[2].text == str(ns["top_class"][:10, :]) and outputs[2].text.count("\n") == 9
    assert outputs[3].text.splitlines()[0] == "torch.Size([1000, 1])"
    assert outputs[3].text.splitlines()[-1] == "torch.Size([1000, 1000])"  # the broadcast the view avoids
    share = (ns["top_class"][:, 0] == ns["labels"]).float().mean().item()
    assert outputs[4].text == f"Accuracy on the validation batch: {share:.1%}"
    assert 0.02 < share < 0.25  # untrained: about 1 in 10


def test_step_6_the_validation_loss_turns_up_while_the_training_loss_falls(run):
    outputs, ns = run
    rows = table(outputs[5].text)
    assert [r[0] for r in rows] == list(range(1, lesson_validation.EPOCHS + 1))
    train = [r[1] for r in rows]
    valid = [r[2] for r in rows]
    best = valid.index(min(valid))
    assert 2 <= best < lesson_validation.EPOCHS - 4, f"lowest validation loss at epoch {best + 1}"
    assert valid[-1] > 1.15 * min(valid) and np.mean(valid[-5:]) > 1.1 * min(valid)  # it turned up
    assert train[-1] < 0.1 * train[0] and train[-1] < 0.25 * valid[-1]  # while training loss fell
    assert rows[-1][3] > 0.8  # it did learn: above 80% on validation


def test_step_7_draws_training_solid_and_validation_dashed_and_names_the_lowest_epoch(run):
    outputs, _ = run
    rows = table(outputs[5].text)
    fig = outputs[6].figure
    assert [t.name for t in fig.data] == ["training", "validation"]
    assert fig.data[0].line.dash is None and fig.data[1].line.dash == "dash"
    assert np.allclose(fig.data[1].y, [r[2] for r in rows], atol=5e-4)
    best = min(rows, key=lambda r: r[2])
    assert outputs[6].text.splitlines()[0] == f"Lowest validation loss: {best[2]:.3f}, at epoch {best[0]}"


def test_step_9_eval_mode_makes_two_predictions_of_one_image_identical(run):
    outputs, ns = run
    assert outputs[8].text.splitlines() == ["True", "False", "False", "True", "True"]
    model, img = ns["Classifier"](), ns["validbatches"][0][0][:1]  # the dropout network
    with torch.no_grad():
        assert not torch.equal(model(img), model(img))
        model.eval()
        assert torch.equal(model(img), model(img))


def test_steps_10_and_11_dropout_narrows_the_gap_between_training_and_validation(run):
    outputs, ns = run
    plain, dropout = table(outputs[5].text), table(outputs[9].text)
    assert [r[0] for r in dropout] == list(range(1, lesson_validation.EPOCHS + 1))
    gap = lambda rows: np.mean([r[2] - r[1] for r in rows[-5:]])  # noqa: E731
    assert gap(dropout) < 0.7 * gap(plain)
    fig = outputs[10].figure
    assert [t.line.dash for t in fig.data] == [None, "dash", None, "dash"]
    colors = [t.line.color for t in fig.data]
    assert colors[0] == colors[1] != colors[2] == colors[3]  # a colour per run
    assert np.allclose(fig.data[3].y, [r[2] for r in dropout], atol=5e-4)


def test_step_12_early_stopping_keeps_the_best_epochs_weights(run):
    outputs, ns = run
    text = outputs[11].text
    rows = table(text)
    best = min(rows, key=lambda r: r[2])
    assert text.splitlines()[-1] == f"Keeping epoch {best[0]}'s weights: validation loss {best[2]:.3f}"
    if rows[-1][0] - best[0] == lesson_validation.PATIENCE:
        assert "No lower validation loss for 5 epochs: stopping" in text
    assert ns["best_epoch"] == best[0]
    loss, _ = ns["validation_pass"](ns["model"])  # the kept weights, measured again
    assert loss == pytest.approx(ns["best_loss"], abs=1e-6)


def test_step_13_predicts_in_eval_mode_and_draws_the_probability_bars(run):
    outputs, ns = run
    fig = outputs[12].figure
    model = ns["model"].eval()  # bars equal to the eval-mode prediction: with dropout on they would not be
    img = ns["validbatches"][0][0][0]
    with torch.no_grad():
        ps = torch.exp(model(img.view(1, 784)))
        assert torch.equal(model(img.view(1, 784)), model(img.view(1, 784)))
    assert np.allclose(np.asarray(fig.data[1].x), ps[0].numpy(), atol=1e-6)
    assert np.array_equal(np.asarray(fig.data[0].z, dtype=np.float32), img[0].numpy())
    assert outputs[12].text.startswith("tensor([[")


def test_step_14_reports_the_test_accuracy_once_labelled_as_held_out(run):
    outputs, ns = run
    lines = outputs[13].text.splitlines()
    assert lines[0].startswith("Validation accuracy (chose the epoch): ")
    assert lines[1].startswith("Test accuracy (held out, not used to choose): ")
    accuracy = float(lines[1].split(": ")[1].rstrip("%")) / 100
    assert 0.8 < accuracy < 0.95  # 1,000 training images: well short of the full set's 97-98%
    code = "\n".join(s.source() for s in STEPS[:-1])
    assert "testset" in STEPS[0].source() and "testloader" not in code  # nothing before it reads the test set


@pytest.mark.parametrize("value, expected", [(None, (1, None)), ("", (1, None)), ("1", (1, None)),
                                             ("2", (2, None)), (["1", "2"], (2, None))])
def test_a_missing_part_is_part_1_so_old_links_keep_their_step(value, expected):
    assert lesson.parse_part(value) == expected


@pytest.mark.parametrize("value", ["0", "4", "x", "2.0", "9" * 300])
def test_a_bad_part_is_part_1_with_a_notice_naming_the_parts(value):
    part, notice = lesson.parse_part(value)
    assert part == 1 and "parts are 1 to 3" in notice and len(notice) < 200


def test_a_step_beyond_part_2_is_refused_by_its_own_count():
    n = len(STEPS)
    assert lesson.parse_step(str(n), n) == (n, None)
    assert f"steps are 1 to {n}" in lesson.parse_step(str(n + 1), n)[1]


def test_part_2_reads_only_the_seed():
    changed = LessonValues(n_hidden=64, hidden=(32, 16), seed=5, std=0.1, index=3)
    assert lesson.PARTS[1].values(changed) == LessonValues(seed=5)
    assert all(s.source(changed) == s.source(LessonValues(seed=5)) for s in STEPS)
