"""Sweep settings, their trials, the Pareto front, mean and spread over seeds, and the trials kept in
SQLite."""

import json
import sqlite3

import pytest

from mnistlab import data, jobs, network, stacked, sweep, sweep_db, sweep_plots, sweep_results, sweep_run
from mnistlab.errors import ConfigError
from mnistlab.train_config import TrainConfig


def test_the_grid_is_every_combination_with_each_seed():
    s = sweep.SweepSettings.of(depths="1,2", widths="16,64", activations="relu,sigmoid", seeds=2)
    trials = s.trials()
    assert s.n_configs == 8 and s.n_trials == len(trials) == 16
    assert {t.arch.label() for t in trials} == {
        "784-16-10 relu", "784-64-10 relu", "784-16-16-10 relu", "784-64-64-10 relu", "784-16-10 sigmoid",
        "784-64-10 sigmoid", "784-16-16-10 sigmoid", "784-64-64-10 sigmoid"}
    assert sorted({t.seed for t in trials}) == [0, 1]
    assert len({t.config for t in trials}) == 1  # every trial reads the same batches
    assert len({t.key for t in trials}) == 16


def test_a_deeper_network_uses_its_width_as_the_rule_says():
    assert sweep.widths_for(64, 3, "same") == (64, 64, 64)
    assert sweep.widths_for(64, 3, "halving") == (64, 32, 16)
    assert sweep.widths_for(2, 4, "halving") == (2, 1, 1, 1)
    s = sweep.SweepSettings.of(depths="3", widths="256", width_rule="halving", activations="tanh")
    assert [t.arch.hidden for t in s.trials()] == [(256, 128, 64)]


def test_a_random_sample_is_the_same_sample_for_the_same_settings():
    s = sweep.SweepSettings.of(depths="1,2,3", widths="16,32,64,128", activations="relu,tanh", sample=5,
                               seeds=2)
    assert s.grid_size == 24 and s.n_configs == 5 and s.n_trials == 10
    again = sweep.SweepSettings.of(**s.to_dict())
    assert [t.key for t in s.trials()] == [t.key for t in again.trials()] and again.id == s.id
    other = sweep.SweepSettings.of(**{**s.to_dict(), "sample_seed": 1})
    assert {t.key for t in other.trials()} != {t.key for t in s.trials()}


@pytest.mark.parametrize("kwargs, message", [
    (dict(widths=""), "Widths: give at least one value."),
    (dict(widths="16,,32"), "Widths: values are separated by single commas"),
    (dict(widths="16,4096"), "A width must be a whole number from 1 to 2,048; got '4096'."),
    (dict(depths="-1"), "Hidden layers must be a whole number from 0 to 4"),
    (dict(depths="5"), "Hidden layers must be a whole number from 0 to 4"),
    (dict(convs="8:5,16:5;;none"), "separated by single ';'"),
    (dict(convs="8:5,pool,16:5,pool,16:5"), "Layer 5: a 5×5 kernel does not fit the 4×4 maps after layer 4"),
    (dict(convs="none;4:3;8:3;16:3;32:3"), "at most 4 convolution stacks"),
    (dict(convs="32:3:1,64:3:1", depths="0,1", widths="16,64", epochs=2),
     "cost as much as 421 MLP trial-epochs"),
    (dict(activations="relu,gelu"), "Activations must be among sigmoid, tanh, relu; got 'gelu'."),
    (dict(inits=["0.3"]), "Init must be 'default' or a normal std on Build's scale"),
    (dict(lrs="0"), "Learning rate must be a number above 0 and at most 10"),
    (dict(seeds=6), "Seeds per config must be a whole number from 1 to 5; got 6."),
    (dict(epochs=6), "Epochs per trial must be a whole number from 1 to 5; got 6."),
    (dict(width_rule="double"), "Width rule must be one of same, halving; got 'double'."),
    (dict(widths="8,16,32,64,128,256,512,1024", depths="1,2,3,4", activations="relu,tanh,sigmoid", seeds=3),
     "This sweep has 288 trials; a sweep may have at most 200 on this server."),
    (dict(widths="8,16,32,64,128,256,512,1024", depths="1,2,3,4", activations="relu,tanh,sigmoid", epochs=5),
     "This sweep trains 96 trials × 5 epochs = 480 trial-epochs; at most 400 are allowed on this server."),
    (dict(widths="2048", depths="4"), "parameters; at most 5,000,000 are allowed"),
])
def test_bad_or_too_large_settings_are_refused_with_what_is_allowed(kwargs, message):
    with pytest.raises(ConfigError) as e:
        sweep.SweepSettings.of(**kwargs)
    assert message in str(e.value)


def test_the_pareto_front_holds_the_best_validation_accuracy_for_each_budget():
    rows = [{"parameters": p, "validation_accuracy": a, "test_accuracy": 1 - a} for p, a in
            [(100, 0.80), (200, 0.90), (300, 0.85), (400, 0.95), (500, 0.95), (50, 0.70)]]
    front = [(r["parameters"], r["validation_accuracy"]) for r in sweep_results.mark_pareto(rows)
             if r["pareto"]]
    assert sorted(front) == [(50, 0.70), (100, 0.80), (200, 0.90), (400, 0.95)]  # test never counts


def _record(trial, accuracy, validation=None):
    validation = accuracy if validation is None else validation
    return trial.record(stacked.Trained(accuracy, 0.3, [accuracy] * 10, 0.4, 2.0, 2,
                                              train_accuracy=0.99, validation_accuracy=validation,
                                              validation_loss=0.2, best_epoch=1,
                                              best_validation_accuracy=validation), "local")


def test_several_seeds_give_each_config_its_mean_and_spread():
    s = sweep.SweepSettings.of(depths="1", widths="16,32", activations="relu", seeds=3)
    accuracy = {16: [0.90, 0.92, 0.94], 32: [0.95, 0.95, 0.95]}
    records = [_record(t, accuracy[t.arch.hidden[0]][t.seed]) for t in s.trials()]
    rows = sweep_results.summarize(records)
    assert [r["network"] for r in rows] == ["784-32-10 relu", "784-16-10 relu"]  # best first
    assert rows[1]["test_accuracy"] == pytest.approx(0.92) and rows[1]["accuracy_std"] == pytest.approx(0.02)
    assert (rows[1]["accuracy_min"], rows[1]["accuracy_max"], rows[1]["seeds"]) == (0.90, 0.94, 3)
    assert rows[1]["validation_std"] == pytest.approx(0.02) and rows[1]["validation_min"] == 0.90
    assert rows[0]["accuracy_std"] == 0 and rows[0]["pareto"] and rows[1]["pareto"]


def test_sweeps_rank_mark_the_front_and_choose_the_best_by_validation_never_by_test():
    s = sweep.SweepSettings.of(depths="1", widths="16,32,64", activations="relu")
    # the 64-wide network is best on test, the 16-wide on validation: validation chooses
    scores = {16: (0.90, 0.97), 32: (0.91, 0.95), 64: (0.99, 0.93)}  # (test, validation)
    rows = sweep_results.summarize([_record(t, *scores[t.arch.hidden[0]]) for t in s.trials()])
    assert [r["width"] for r in rows] == [16, 32, 64]
    assert [r["best"] for r in rows] == [True, False, False]
    assert [r["pareto"] for r in rows] == [True, False, False]  # more parameters, no better on validation
    assert rows[2]["test_accuracy"] == 0.99  # shown beside it


def test_trials_trained_before_validation_are_listed_after_the_others_and_never_chosen():
    s = sweep.SweepSettings.of(depths="1", widths="16,32", activations="relu")
    old, new = s.trials()
    legacy = {k: v for k, v in _record(old, 0.99).items() if "validation" not in k and k != "best_epoch"}
    rows = sweep_results.summarize([legacy, _record(new, 0.90)])
    assert [r["width"] for r in rows] == [32, 16] and rows[0]["best"] and not rows[1]["best"]
    assert rows[1]["validation_accuracy"] is None and not rows[1]["pareto"]


def test_a_sweep_varies_weight_decay_training_set_size_and_label_noise():
    s = sweep.SweepSettings.of(depths="1", widths="16", activations="relu", weight_decays="0,0.001",
                               train_sizes="100,1000,all", label_noises="0,0.2")
    assert s.n_trials == 12 and len({t.config for t in s.trials()}) == 12
    assert {(t.config.weight_decay, t.config.train_images, t.config.label_noise) for t in s.trials()} == {
        (w, n, f) for w in (0, 0.001) for n in (100, 1000, None) for f in (0, 0.2)}
    assert "× weight decay 0,0.001 × training images 100,1000,all × label noise 0,0.2" in s.label()
    assert sweep.SweepSettings.from_dict(s.to_dict()) == s and sweep.from_params(sweep.to_params(s)) == s
    one = sweep.SweepSettings.of(depths="1", widths="16", activations="relu", weight_decays="0.01")
    assert one.weight_decays == () and one.base.weight_decay == 0.01  # one value is no axis
    assert one == sweep.SweepSettings.of(depths="1", widths="16", activations="relu", weight_decay=0.01)
    assert sweep.SweepSettings.of().id == sweep.SweepSettings.of(weight_decays="0").id  # defaults: same id


def test_a_setting_a_sweep_varies_has_its_axis_link_and_column_from_its_field():
    """What ARCHITECTURE's worked example promises: the field is all a setting needs to be swept."""
    for f in TrainConfig.swept():
        axis = f.metadata["sweep"]
        assert sweep.SETTING_AXES[axis.axis] == (f.name, axis.title)
        assert sweep.PARAMS[axis.link] == axis.axis
        assert (f.metadata["label"].lower(), f.name, f.metadata["text"]) in sweep_results.SETTINGS
        assert f.name in sweep_results.CONFIG_FIELDS
        values = [v for v in f.metadata["choices"] if v != f.default][:2]
        s = sweep.SweepSettings.of(depths="1", widths="16", activations="relu", **{axis.axis: values})
        assert getattr(s, axis.axis) == tuple(values) and s.n_trials == 2
        assert {getattr(t.config, f.name) for t in s.trials()} == set(values)
        assert sweep.from_params(sweep.to_params(s)) == s and sweep.to_params(s)[axis.link]
        assert f"× {f.metadata['label'].lower()} " in s.label()


def test_the_grid_nests_the_setting_axes_as_sweeps_saved_before_did():
    # the order of TrainConfig's fields: another order would give a saved random sample other trials
    assert list(sweep.SETTING_AXES) == ["weight_decays", "train_sizes", "label_noises"]


@pytest.mark.parametrize("kwargs, message", [
    (dict(weight_decays="0,-1"), "Weight decay must be a number from 0 and at most 1"),
    (dict(train_sizes="100,50001"), "Training images must be a whole number from 100 to 50,000"),
    (dict(train_sizes="10"), "Training images must be a whole number from 100 to 50,000"),
    (dict(train_images=99), "Training images must be a whole number from 100 to 50,000"),
    (dict(label_noises="0,2"), "Label noise must be a number from 0 and at most 1"),
    (dict(early_stop=2), "early stopping is for a single run"),
])
def test_bad_axes_over_training_settings_are_refused_with_what_is_allowed(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        sweep.SweepSettings.of(**kwargs)


def test_each_finished_trial_is_one_row_in_the_apps_database_under_the_models_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("MNISTLAB_MODELS", str(tmp_path))
    monkeypatch.delenv("MNISTLAB_DB", raising=False)
    s = sweep.SweepSettings.of(depths="1", widths="16", activations="relu,tanh")
    store = sweep_db.SweepDatabase()
    assert store.url == f"sqlite:///{tmp_path / 'mnistlab.sqlite'}"
    store.add_sweep(s)
    for t in s.trials():
        store.add_trial(s.id, _record(t, 0.9))
    with sqlite3.connect(tmp_path / "mnistlab.sqlite") as db:  # what another process reads
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        rows = db.execute("SELECT record FROM sweep_trials WHERE sweep = ? ORDER BY finished",
                          (s.id,)).fetchall()
    assert [json.loads(r[0])["activations"] for r in rows] == [["relu"], ["tanh"]]
    assert store.sweeps()[0] == {"id": s.id, "label": s.label(), "created": store.sweeps()[0]["created"],
                                 "finished": 2}
    assert store.settings(s.id) == s
    with pytest.raises(ConfigError, match="No saved sweep 'nope'"):
        store.settings("nope")


def test_a_stopped_sweep_keeps_what_finished_and_the_same_sweep_again_trains_only_the_rest(tmp_path):
    train_split, test_split = data.load_split(True), data.load_split(False)
    s = sweep.SweepSettings.of(depths="1", widths="16,24,32", activations="relu", train_images=3000)
    store = sweep_db.SweepDatabase(tmp_path)
    engine, queue = jobs.LocalEngine(), jobs.Queue(1)
    first = sweep_run.Sweep(s, train_split, test_split, store, queue=queue, engine=engine)
    first.on_trial = lambda record: first.stop()  # stop once the first trial is in
    assert first.start().wait(120) and first.error is None and first.stop_reason == "stopped"
    kept = store.records(s.id)
    assert len(kept) == 1
    again = sweep_run.Sweep(s, train_split, test_split, store, queue=queue, engine=engine)
    trained = tuple(kept[0]["hidden"])
    assert again.resumed == 1 and {t.arch.hidden for t in again.missing} == {(16,), (24,), (32,)} - {trained}
    assert again.start().wait(120) and again.error is None
    records = store.records(s.id)
    assert len(records) == 3 and records[0] == kept[0]  # the first one kept, not trained again
    assert again.progress().text() == "3 of 3 trained"


def test_every_slot_gets_a_stack_where_there_are_enough_trials_and_the_longest_go_first():
    one_shape = sweep.SweepSettings.of(depths="1", widths="64", activations="relu,tanh", seeds=4).trials()
    assert [len(g) for g in sweep_run.plan(one_shape, slots=1)] == [8]  # one stack
    halves = sweep_run.plan(one_shape, slots=4)  # e.g. a 4-core CLI or a Ray cluster: a stack for each
    assert [len(g) for g in halves] == [2, 2, 2, 2]
    assert sorted(t.key for g in halves for t in g) == sorted(t.key for t in one_shape)
    assert len(sweep_run.plan(one_shape[:3], slots=4)) == 3  # never more stacks than trials
    mixed = sweep.SweepSettings.of(depths="1", widths="16,256", activations="relu").trials()
    assert [g[0].arch.hidden for g in sweep_run.plan(mixed)] == [(256,), (16,)]


def test_a_sweep_on_two_cores_trains_its_stacks_at_once_to_the_very_results_of_one_core(tmp_path):
    import torch

    train_split, test_split = data.load_split(True), data.load_split(False)
    s = sweep.SweepSettings.of(depths="1,2", widths="16,32", activations="relu,sigmoid", seeds=2,
                            train_images=3000)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread per training, as the app and the CLI train
    try:
        results, most_at_once = [], []
        for slots in (1, 2):
            store = sweep_db.SweepDatabase(tmp_path / str(slots))
            queue = jobs.Queue(slots)
            run = sweep_run.Sweep(s, train_split, test_split, store, queue=queue,
                                  engine=jobs.LocalEngine(slots))
            run.start()
            seen = [queue.running]
            while not run.wait(0.01):
                seen.append(queue.running)
            assert run.error is None
            results.append({r["key"]: (r["test_accuracy"], r["test_loss"]) for r in run.records})
            most_at_once.append(max(seen))
            store.close()
    finally:
        torch.set_num_threads(threads)
    assert len(results[0]) == s.n_trials == 16
    assert results[0] == results[1]  # each training on its own core: the same arithmetic
    assert most_at_once == [1, 2]  # four stacks (depth × width), two training at once


def test_a_link_gives_the_settings_and_back():
    s = sweep.SweepSettings.of(depths="1,3", widths="32,128", width_rule="halving", activations="tanh",
                            inits=[None, 0.1], lrs="0.001,0.01", seeds=2, epochs=2, sample=3)
    params = sweep.to_params(s)
    assert params["init"] == "default,0.1" and params["rule"] == "halving"
    assert sweep.from_params(params) == s
    assert sweep.from_params({"unrelated": "1"}) is None
    with pytest.raises(ConfigError, match="Epochs per trial"):
        sweep.from_params({"epochs": "50"})


def test_records_name_what_a_user_compares(tmp_path):
    t = sweep.SweepSettings.of(depths="2", widths="64", activations="sigmoid", inits=[0.1]).trials()[0]
    r = _record(t, 0.93)
    assert (r["hidden"], r["activations"], r["parameters"], r["seed"], r["epochs"]) == \
        ([64, 64], ["sigmoid", "sigmoid"], network.Architecture((64, 64), "sigmoid").n_parameters, 0, 1)
    assert r["test_accuracy"] == 0.93 and r["seconds"] == 2.0 and r["init"] == "normal(std=0.1)"


def test_a_sweep_whose_visitor_is_gone_stops(tmp_path):
    import gc

    train_split, test_split = data.load_split(True), data.load_split(False)
    s = sweep.SweepSettings.of(depths="1", widths="16,24,32,48", activations="relu", epochs=5,
                            train_images=20000)
    owner = jobs.Owner()  # kept in the visitor's session state
    run = sweep_run.Sweep(s, train_split, test_split, sweep_db.SweepDatabase(tmp_path), owner=owner,
                      queue=jobs.Queue(1), engine=jobs.LocalEngine()).start()
    del owner  # the session was dropped
    gc.collect()
    assert run.wait(60) and run.stop_reason == "abandoned" and len(run.records) < 4


def test_the_estimate_counts_the_sweeps_start_and_this_machines_pace(monkeypatch):
    trials = sweep.SweepSettings.of(depths="1", widths="16", activations="relu,sigmoid").trials()
    modelled = sum(sweep_run.stack_seconds(g) for g in sweep_run.plan(trials))
    monkeypatch.setitem(sweep_run._pace, "at", float("inf"))  # as if just measured
    monkeypatch.setitem(sweep_run._pace, "factor", 2.0)  # a busy server: twice the model's time
    assert sweep_run.estimate_seconds(trials) == pytest.approx(sweep_run.START_S + 2 * modelled)


def test_the_pace_is_measured_on_this_machine():
    sweep_run._pace["at"] = float("-inf")
    assert 0.5 <= sweep_run.pace() < 100


def test_the_time_chart_shows_what_was_measured_a_stacks_time(tmp_path):
    records = [{"key": str(i), "network": f"784-{w}-10 relu", "hidden": [w], "activations": ["relu"],
                "activation": "relu", "depth": 1, "width": w, "parameters": 795 * w, "weight_std": None,
                "init": "default", "lr": 0.001, "epochs": 1, "test_accuracy": 0.9, "validation_accuracy": 0.9,
                "seconds": 1.5, "stacked": k} for i, (w, k) in enumerate([(16, 4), (64, 2)])]
    rows = sweep_results.summarize(records)
    fig = sweep_plots.accuracy_vs_time(rows)
    xs = sorted(x for trace in fig.data if trace.mode == "markers" for x in trace.x)
    assert xs == [3.0, 6.0]  # each stack's wall time, not the 1.5 s share each network was given
    hover = " ".join(h for trace in fig.data if trace.hovertext for h in trace.hovertext)
    assert "a stack of 4 networks at once: the stack took 6.0 s" in hover


def test_a_link_with_several_bad_values_gives_a_notice_for_each_and_keeps_the_good_ones():
    link = {"depths": "9", "widths": "abc", "epochs": "99", "act": "tanh"}
    settings, notices, refused = sweep.from_link(link)
    assert settings == sweep.SweepSettings.of(activations="tanh")
    assert refused == ["depths", "widths", "epochs"]
    assert [n.split(" was not used: ")[0] for n in notices] == [
        "Link value depths='9'", "Link value widths='abc'", "Link value epochs='99'"]
    assert all(n.endswith(" Using the default.") for n in notices)
    assert sweep.from_link({"unrelated": "1"}) == (None, [], [])


def test_a_link_whose_values_are_good_alone_but_too_many_together_says_so():
    params = {"depths": "1,2,3,4", "widths": "16,64,256,512", "lr": "0.1,0.01,0.001", "seeds": "5"}
    settings, notices, refused = sweep.from_link(params)
    assert settings is None and refused == ["depths", "widths", "lr", "seeds"]
    assert notices == [f"The link's sweep settings were not used together: This sweep has 480 trials; a "
                       f"sweep may have at most {sweep.MAX_TRIALS} on this server. Choose fewer values, "
                       f"fewer seeds, or a random sample. Using the page's defaults."]
