"""The Train page on generalization, through AppTest on real MNIST: every accuracy names its split, a
small training set overfits where everyone can see it, the curves show validation dashed beside
training, and a bad setting is explained where it was chosen."""

import numpy as np
import pytest
from test_app_pages import figure_with
from test_train_page import metric, ok, open_train, use_network

from mnistlab import network, runs, train_config

pytestmark = pytest.mark.usefixtures("navigation_mode")  # see tests/conftest.py
TEST_ACCURACY = "Test accuracy (held out, not used to choose)"


def small_training_set(at, images=1000, validation=1000, epochs=6, batch=64, early_stop=None):
    """784-512-512-10 on a small training set: it learns its images far better than new ones."""
    use_network(at, "512,512", "relu")
    at.selectbox(key="tr_train_images").set_value(images)
    at.number_input(key="tr_validation").set_value(validation)
    at.selectbox(key="tr_early_stop").set_value(early_stop)
    at.slider(key="tr_epochs").set_value(epochs)
    at.select_slider(key="tr_batch").set_value(batch)
    return ok(at.run())


def train_and_wait(at) -> runs.Run:
    ok(at.button(key="tr_train").click().run())
    assert at.session_state["train_job"].wait(300)
    ok(at.run())
    assert "train_job" not in at.session_state
    return at.session_state["runs"][-1]


def test_a_small_training_set_overfits_and_every_accuracy_names_its_split():
    at = open_train()
    assert "**50,000 training images**" in at.caption[0].value  # all but the 10,000 that validate
    assert "**10,000 validation images**" in at.caption[0].value
    at = small_training_set(at)
    assert "**1,000 training images**" in at.caption[0].value  # the caption says what it will train on
    assert "**1,000 validation images**" in at.caption[0].value
    run = train_and_wait(at)
    assert (run.config.train_images, run.config.validation) == (1000, 1000)
    learned, checked = run.train_evaluation.accuracy, run.validation.accuracy
    assert learned > checked + 0.05  # overfitting: 1,000 images learned far better than new ones
    assert metric(at, "Training accuracy") == f"{learned:.2%}"
    assert metric(at, "Validation accuracy") == f"{checked:.2%}"
    gap = metric(at, "Gap (training − validation)")
    assert gap == f"{100 * (learned - checked):+.1f} points" and gap.startswith("+")
    assert metric(at, TEST_ACCURACY) == f"{run.accuracy:.2%}"
    assert metric(at, "Best epoch") == str(run.best_epoch)
    assert metric(at, "Test mistakes of 10,000") == f"{run.evaluation.n_misclassified:,}"

    table = at.dataframe[0].value
    assert list(table.columns[:5]) == ["run", "train accuracy", "validation accuracy", "test accuracy",
                                       "best epoch"]
    assert "kept epoch" not in table.columns  # no run stopped early
    row = table.iloc[0]
    assert (row["train accuracy"], row["validation accuracy"], row["test accuracy"], row["best epoch"]) == \
        pytest.approx((learned, checked, run.accuracy, run.best_epoch))
    assert at.selectbox(key="tr_show").value.endswith(f"test accuracy {run.accuracy:.1%}")
    assert figure_with(at, "True digit (rows) and prediction (columns), on the 10,000 test images")
    assert figure_with(at, "test mistakes: true → predicted")
    assert list(at.dataframe[-1].value.index) == ["test accuracy"]  # per digit, on the test set


def test_the_curves_draw_validation_dashed_from_the_runs_history_with_the_best_epoch_marked():
    at = small_training_set(open_train())
    run = train_and_wait(at)
    h = run.history
    fig = figure_with(at, "Training curves")
    assert [a["text"] for a in fig["layout"]["annotations"][:2]] == ["loss", "accuracy"]
    assert [t["name"] for t in fig["data"] if t.get("legendgroup") == "key"] == ["training (solid)",
                                                                                  "validation (dashed)"]
    label = at.multiselect(key="tr_compare").value[-1]
    mine = [t for t in fig["data"] if t.get("legendgroup") == label]
    solid = [t for t in mine if t["mode"] == "lines"]
    dashed = [t for t in mine if t.get("line", {}).get("dash") == "dash"]
    assert len(solid) == len(dashed) == 2 and solid[0]["line"]["color"] == dashed[0]["line"]["color"]
    assert solid[0]["line"].get("dash") in (None, "solid")
    x, loss, accuracy = h.validation_curve()
    # several checks an epoch (the default 4), the last of each on every validation image
    assert len(x) == 4 * run.config.epochs and x[3::4] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert np.allclose(dashed[0]["x"], x) and np.allclose(dashed[0]["y"], loss)
    assert np.allclose(dashed[1]["y"], accuracy)
    assert np.allclose(dashed[0]["y"][3::4], [e[0] for e in h.epoch_validation_loss])
    # the best epoch: a star on each panel where validation loss was lowest, and named above it
    stars = [t for t in mine if t.get("marker", {}).get("symbol") == "star"]
    best = run.best_epoch
    assert [(list(t["x"]), list(t["y"])) for t in stars] == [
        ([best], [pytest.approx(h.epoch_validation_loss[best - 1][0])]),
        ([best], [pytest.approx(h.epoch_validation_accuracy[best - 1][0])])]
    assert f"best: epoch {best}" in [a["text"] for a in fig["layout"]["annotations"]]


def test_validation_is_drawn_live_while_it_trains():
    at = small_training_set(open_train(), epochs=20, batch=8)  # 2,500 steps: time to look
    ok(at.button(key="tr_train").click().run())
    job = at.session_state["train_job"]
    while not any(p.validation for p in job.reports) and not job.done:
        job.wait(0.2)
    ok(at.run())
    live = figure_with(at, "While it trains")
    key = "validation (dashed)"
    dashed = [t for t in live["data"] if t.get("line", {}).get("dash") == "dash" and t["name"] != key]
    reported = [c for p in job.reports for c in p.validation]
    assert dashed and 0 < len(dashed[0]["y"]) <= len(reported)
    assert np.allclose(dashed[0]["y"], [c.loss for c in reported[:len(dashed[0]["y"])]])
    assert "validation accuracy" in live["layout"]["title"]["text"]
    ok(at.button(key="tr_stop").click().run())
    assert job.wait(60)
    ok(at.run())


def test_a_bad_setting_is_explained_where_it_was_chosen_and_the_page_still_trains():
    at = open_train()
    use_network(at, "16", "relu")
    at.selectbox(key="tr_train_images").set_value(100)
    at.select_slider(key="tr_batch").set_value(256)
    ok(at.run())
    assert "Batch size must be at most the 100 training images; got 256." in at.error[0].value
    assert at.button(key="tr_train").disabled
    at.select_slider(key="tr_batch").set_value(32)
    at.select_slider(key="tr_label_noise").set_value(0.2)
    ok(at.run())
    assert not at.error and not at.button(key="tr_train").disabled
    caption = at.caption[0].value
    assert "**100 training images**" in caption and "20 of their labels (20%)" in caption
    at.slider(key="tr_epochs").set_value(2)
    run = train_and_wait(at)
    assert (run.config.train_images, run.config.label_noise, run.config.batch_size) == (100, 0.2, 32)
    assert metric(at, TEST_ACCURACY) == f"{run.accuracy:.2%}"


def test_weight_decay_explains_l2_against_adamw():
    at = open_train()
    assert train_config.WEIGHT_DECAY_TEXT in at.radio(key="tr_optimizer").help
    at.select_slider(key="tr_weight_decay").set_value(0.01)
    at.radio(key="tr_optimizer").set_value("adamw")
    ok(at.run())
    assert any(c.value == train_config.WEIGHT_DECAY_TEXT for c in at.caption)
    assert train_config.WEIGHT_DECAY_TEXT in at.select_slider(key="tr_weight_decay").help


def test_early_stopping_says_when_it_stopped_and_which_epochs_weights_it_kept():
    at = small_training_set(open_train(), epochs=20, early_stop=2)
    assert "training stops after 2 epochs without a lower validation loss" in at.caption[0].value
    run = train_and_wait(at)
    h = run.history
    assert h.patience_ran_out and h.kept_epoch == run.best_epoch and len(h.epoch_ends) == h.kept_epoch + 2
    note = f"stopped after epoch {len(h.epoch_ends)} (2 epochs without a lower validation loss), " \
           f"kept epoch {h.kept_epoch}'s weights."
    assert any(note in i.value for i in at.info)
    row = at.dataframe[0].value.iloc[0]
    assert row["kept epoch"] == h.kept_epoch and f"stopped after epoch {len(h.epoch_ends)}" in row["training"]
    assert any(f"These are epoch {h.kept_epoch}'s weights" in m.value for m in at.markdown)  # Model file


def errors_beside(at, label: str) -> list[str]:
    """The errors in the innermost column holding the field labelled `label`."""
    columns = [c for c in at.columns if any(getattr(w, "label", None) == label for w in c.children.values())]
    assert columns, f"no column holds {label!r}"
    return [e.value for e in columns[-1].error]


WAITS = " Train waits until it is fixed."
HIDDEN = "A generalization setting is refused: open Generalization settings to see which." + WAITS


def test_a_refused_number_is_told_beside_its_field_and_train_waits_until_it_is_fixed():
    at = open_train()
    use_network(at, "16", "relu")
    for typed in (500, 99999, 2.5):
        at.number_input(key="tr_validation").set_value(typed)
        ok(at.run())
        assert errors_beside(at, "Validation images") == [
            f"Validation images must be a whole number from 1,000 to 20,000; got {typed!r}.{WAITS}"]
        assert at.number_input(key="tr_validation").value == typed  # kept as typed, not cut or replaced
        assert at.button(key="tr_train").disabled
        # its section may be closed: where to look is said outside it too
        assert HIDDEN in [e.value for e in at.error]
    at.number_input(key="tr_seed").set_value(-1)
    at.number_input(key="tr_split_seed").set_value(1e12)
    ok(at.run())
    assert errors_beside(at, "Batch-order seed") == [
        f"Seed must be a whole number from 0 to {network.MAX_SEED:,}; got -1.{WAITS}"]
    assert errors_beside(at, "Split seed") == [
        f"Seed must be a whole number from 0 to {network.MAX_SEED:,}; got 1000000000000.{WAITS}"]
    ok(at.radio(key="tr_optimizer").set_value("sgd").run())
    at.number_input(key="tr_momentum").set_value(1.5)
    ok(at.run())
    assert errors_beside(at, "Momentum") == [
        f"Momentum must be a number from 0 and at most 0.999; got 1.5.{WAITS}"]
    assert len(at.error) == 5 and at.button(key="tr_train").disabled  # each told once, beside its field
    ok(at.radio(key="tr_optimizer").set_value("adam").run())  # momentum is SGD's alone: not read now
    assert at.number_input(key="tr_momentum").disabled and not errors_beside(at, "Momentum")
    assert len(at.error) == 4
    ok(at.radio(key="tr_optimizer").set_value("sgd").run())  # read again: refused again
    assert errors_beside(at, "Momentum") == [
        f"Momentum must be a number from 0 and at most 0.999; got 1.5.{WAITS}"]

    at.number_input(key="tr_validation").set_value(2000)
    at.number_input(key="tr_seed").set_value(3)
    at.number_input(key="tr_split_seed").set_value(1e3)  # "1e3" is a thousand, not 1
    at.number_input(key="tr_momentum").set_value(0.5)
    ok(at.run())
    assert not at.error and not at.button(key="tr_train").disabled
    assert at.number_input(key="tr_momentum").proto.default == 0.9  # a field redrawn from its default
    at.slider(key="tr_epochs").set_value(1)
    at.select_slider(key="tr_batch").set_value(256)
    run = train_and_wait(at)
    c = run.config
    assert (c.validation, c.batch_seed, c.split_seed, c.momentum) == (2000, 3, 1000, 0.5)
