"""Each layer's learning dynamics, recorded as a network trains on real MNIST: the numbers must say
what is true of these networks (saturated sigmoids, dead ReLUs, loss at init), and cost nothing in
what is learned."""

import json
import math
import pickle
import statistics

import numpy as np
import pytest
import torch

from mnistlab import __main__ as cli
from mnistlab import data, dynamics, network, plots, runs, train, train_config, training_plots
from mnistlab import splits as splits_module
from mnistlab.train_config import TrainConfig


@pytest.fixture(scope="module")
def splits(train_split, test_split):
    return train_split, test_split


def first_images(split: data.Split, n: int) -> data.Split:
    """The first n images of a real MNIST split: a short run that still learns from real digits."""
    return split.first(n)


def recorded(splits, arch, init=network.Init(), images=None, **config) -> runs.Run:
    """A run on `images` training images (default: all 50,000 that do not validate), its dynamics
    probed on validation images."""
    train_split, test_split = splits
    return runs.run(network.Network(arch, init, 0),
                    TrainConfig(**{"epochs": 1, "train_images": images, **config}),
                    train_split, test_split, record_dynamics=True)


SIGMOID = network.Architecture((256,), ("sigmoid",))
RELU = network.Architecture((128, 64), ("relu", "relu"))


def test_the_loss_at_init_of_a_default_network_is_that_of_ten_equal_guesses(splits):
    run = recorded(splits, network.Architecture(), images=6400)
    d = run.dynamics
    assert d.steps[0] == 0 and d.rows()[0]["step"] == 0
    assert abs(d.init_loss - 2.303) < 0.1
    assert dynamics.EXPECTED_INIT_LOSS == pytest.approx(math.log(10))


def test_a_sigmoid_network_with_std_1_starts_mostly_saturated_and_its_fc1_learns_less(splits):
    wide = recorded(splits, SIGMOID, network.Init(weight_std=1.0), images=12_800)
    default = recorded(splits, SIGMOID, images=12_800)
    assert wide.dynamics.first("sigmoid1", "saturated") > 0.5  # on the probe batch, at step 0
    assert default.dynamics.first("sigmoid1", "saturated") < 0.1

    def fc1_update(run):
        return statistics.median(run.dynamics.column("fc1", "update_ratio_log10"))

    assert fc1_update(wide) < fc1_update(default) - 0.5  # more than 3 times smaller relative updates


def test_relu_with_sgd_at_a_large_learning_rate_ends_with_far_more_dead_units(splits):
    def dead_at_end(lr):
        run = recorded(splits, RELU, optimizer="sgd", lr=lr, images=19_200)  # 300 steps of 64
        return statistics.mean(run.dynamics.last(n, "dead") for n in ("relu1", "relu2"))

    small, large = dead_at_end(0.01), dead_at_end(0.3)
    assert large > 0.5 and large > 3 * small


def test_the_replays_last_frame_is_the_trained_network(splits):
    run = recorded(splits, RELU, images=12_800, epochs=2, batch_size=128)
    d = run.dynamics
    steps = [s.step for s in d.snapshots]
    assert steps[0] == 0 and steps[-1] == run.history.steps == 200
    assert {100, 200} <= set(steps) and len([s for s in steps if 0 < s < 100]) >= 3  # early in epoch 1
    last = d.snapshots[-1]
    assert torch.equal(last.templates, run.state["fc1.weight"][:dynamics.TEMPLATE_UNITS])
    for name in d.layers:
        w = run.state[f"{name}.weight"].flatten()
        lo, hi, counts = last.histograms[name]
        assert (lo, hi) == (w.min().item(), w.max().item())
        assert torch.equal(counts, torch.histc(w, dynamics.HISTOGRAM_BINS, lo, hi).to(torch.int32))
    _, validation = splits_module.training_splits(splits[0], run.config)  # the probe split
    digits = validation.normalized(d.replay_digits)
    assert validation.labels[d.replay_digits].tolist() == list(range(10))
    assert torch.equal(data.normalize(d.replay_images), digits)  # kept with the run, for the page
    assert torch.allclose(last.probabilities, network.probabilities(run.model(), digits), atol=1e-6)

    fig = training_plots.replay(d, digits)
    assert len(fig.frames) == len(steps) and fig.layout.sliders[0].steps[-1].label == "2.00"
    trained = training_plots._diverging_png(plots._tile(plots._per_unit(
        run.state["fc1.weight"][:dynamics.TEMPLATE_UNITS].numpy().reshape(-1, 28, 28)), 8, gap=3))
    assert fig.frames[-1].data[0].source == trained
    assert fig.layout.updatemenus[0].buttons[0].label == "▶ Play"


def test_recording_changes_nothing_that_is_trained(splits):
    train_split = first_images(splits[0], 6400)
    config = TrainConfig(epochs=1)
    plain, watched = network.build(RELU, seed=3), network.build(RELU, seed=3)
    a = train.train(plain, config, train_split)
    b = train.train(watched, config, train_split, recorder=dynamics.Recorder(splits[1]))
    assert a.loss == b.loss
    assert all(torch.equal(plain.state_dict()[k], watched.state_dict()[k]) for k in plain.state_dict())


def test_progress_reports_carry_the_new_rows_for_a_live_page(splits):
    reports = []
    recorder = dynamics.Recorder(splits[1])
    model = network.build(RELU)
    train.train(model, TrainConfig(epochs=2), first_images(splits[0], 6400), callback=reports.append,
                recorder=recorder)
    d = recorder.result
    assert [r for p in reports for r in p.dynamics] == d.rows()
    live = dynamics.live_series(reports)
    assert live["fc1", "update_ratio_log10"] == d.series("fc1", "update_ratio_log10")
    assert live["relu2", "dead"] == d.series("relu2", "dead")
    assert live["probe", "loss"][1][0] == d.init_loss
    fig = training_plots.layer_dynamics({"live": live})
    assert {t.name for t in fig.data} == {"fc1", "fc2", "output", "relu1 (dead)", "relu2 (dead)"}
    assert len(fig.data) == 3 * 2 + 2  # two ratios per Linear layer, a share per hidden activation


def test_a_diverging_run_is_explained_in_plain_words(splits):
    lr10 = recorded(splits, RELU, optimizer="sgd", lr=10, batch_size=4096)
    verdict = dynamics.diagnosis(lr10.dynamics, lr10.history.loss, lr10.accuracy, lr10.config.lr)
    assert lr10.accuracy < 0.15 and "chance accuracy" in verdict
    assert "learning rate (10) is too high" in verdict

    saturated = recorded(splits, network.Architecture((128, 64), ("sigmoid", "sigmoid")),
                         network.Init(weight_std=10), batch_size=4096)
    verdict = dynamics.diagnosis(saturated.dynamics, saturated.history.loss, saturated.accuracy)
    assert "saturated from the start" in verdict and "init's std is too large" in verdict

    healthy = recorded(splits, RELU, images=6400)
    assert dynamics.diagnosis(healthy.dynamics, healthy.history.loss, healthy.accuracy) is None
    nan_loss = healthy.history.loss[:5] + [math.nan]
    assert "stopped being a finite number at step 6" in dynamics.diagnosis(None, nan_loss, 0.5)


def test_a_runs_dynamics_stay_within_the_stated_memory_bound(splits):
    # The longest run allowed: 20 epochs of batch 1 would be 1.2 million steps; rows stay capped.
    assert len(dynamics.record_steps(20 * 60_000)) <= dynamics.MAX_ROWS
    assert len(dynamics.snapshot_steps(938, 20)) == 1 + len(dynamics.FIRST_EPOCH_SNAPSHOTS) + 20
    worst = dynamics.memory_bound(network.MAX_HIDDEN_LAYERS + 1, train_config.MAX_EPOCHS)
    assert worst < 1.6e6  # the README's Limits: under 1.6 MB per run
    run = recorded(splits, RELU, images=12_800, epochs=3)
    assert 0 < run.dynamics.nbytes() <= dynamics.memory_bound(3, 3)
    copy = pickle.loads(pickle.dumps(run))  # a Run crosses Ray and sits in a session as a plain value
    assert copy.dynamics.rows() == run.dynamics.rows()


def test_the_cli_writes_the_curves_and_each_layers_dynamics(tmp_path, capsys):
    path = tmp_path / "history.json"
    assert cli.main(["train", "--dry-run", "--hidden", "32,16", "--activation", "relu,sigmoid",
                     "--history", str(path)]) == 0
    assert "loss at step 0" in capsys.readouterr().out
    h = json.loads(path.read_text())
    assert len(h["loss"]) == h["steps_per_epoch"] == 16  # one epoch of 1,000 images, batch 64
    rows = h["dynamics"]["rows"]
    assert rows[0]["step"] == 0 and abs(h["dynamics"]["init_loss"] - 2.303) < 0.1
    assert set(rows[0]) == {"step", "epoch", "loss", "fc1", "fc2", "output", "relu1", "sigmoid2"}
    assert set(rows[0]["fc1"]) == {"update_ratio_log10", "grad_ratio_log10"}
    assert set(rows[0]["relu1"]) == {"dead"} and set(rows[0]["sigmoid2"]) == {"saturated"}
    assert cli.main(["train", "--dry-run", "--history", str(tmp_path / "missing" / "h.json")]) == 1
    assert "--history needs a file name in an existing folder" in capsys.readouterr().err


# -- the Train page (AppTest), on the run it trains ----------------------------------------------------

@pytest.mark.usefixtures("navigation_mode")
def test_the_train_page_shows_a_runs_dynamics_its_replay_a_scale_toggle_and_compares_two():
    from streamlit.testing.v1 import AppTest
    from test_app_pages import figure_with

    at = AppTest.from_file("../app.py", default_timeout=60)
    at.run()
    at.switch_page("pages/train.py").run()
    at.text_input(key="tr_hidden").set_value("32")
    at.button(key="tr_use").click().run()
    at.select_slider(key="tr_batch").set_value(256)
    at.slider(key="tr_epochs").set_value(1)
    at.button(key="tr_train").click().run()
    assert at.session_state["train_job"].wait(120)
    at.run()
    assert not at.exception
    run = at.session_state["runs"][-1]
    assert run.dynamics is not None and run.dynamics.steps[0] == 0
    assert any(m.value.startswith("Loss at step 0 on the probe images: **2.3") for m in at.markdown)
    dyn = figure_with(at, "Each layer over training")
    assert {t["name"] for t in dyn["data"]} == {"fc1", "output", "relu1 (dead)"}
    replay = figure_with(at, "Replay")
    assert len(replay["frames"]) == len(run.dynamics.snapshots)
    assert not at.error  # a run that learned gets no diagnosis

    per_unit = np.asarray(figure_with(at, "fc1 weights after training")["data"][0]["z"], dtype=float)
    assert np.nanmax(np.abs(per_unit)) == pytest.approx(1)
    at.toggle(key="tr_shared_scale").set_value(True).run()
    shared = np.asarray(figure_with(at, "fc1 weights after training")["data"][0]["z"], dtype=float)
    assert np.allclose(shared[:28, :28], run.state["fc1.weight"][0].reshape(28, 28).numpy(), atol=1e-6)
    # A second network on the same batches: the two runs' dynamics overlaid, a line style per run.
    at.text_input(key="tr_activation").set_value("sigmoid")
    at.button(key="tr_use").click().run()
    at.button(key="tr_train").click().run()
    assert at.session_state["train_job"].wait(120)
    at.run()
    compared = figure_with(at, "a line style per run")
    styles = {t["name"].split(" · ")[0]: t["line"]["dash"] for t in compared["data"]}
    assert styles == {"Run 1": "solid", "Run 2": "dash"}
    assert {t["name"] for t in compared["data"]} >= {"Run 1 · relu1 (dead)", "Run 2 · sigmoid1 (saturated)"}
