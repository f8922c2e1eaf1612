"""A sweep over dropout and batch norm beside the network's shape: its trials and stacks, its saved
form and link, what each record says, and the capacity picture of training against validation."""

import json

import pytest

from mnistlab import stacked, sweep, sweep_db, sweep_plots, sweep_results, sweep_run
from mnistlab.errors import ConfigError

SMALL = dict(depths="1", widths="16", activations="relu,tanh")


def _trained(test, validation, train=0.99):
    return stacked.Trained(test, 0.3, [test] * 10, 0.4, 2.0, 2, train_accuracy=train,
                                 validation_accuracy=validation, validation_loss=0.2, best_epoch=1,
                                 best_validation_accuracy=validation)


def test_dropout_and_batch_norm_axes_give_every_network_each_value():
    s = sweep.SweepSettings.of(**SMALL, dropouts="0,0.5", batch_norms="off,on")
    assert s.n_trials == 8 and s.grid_size == 8
    archs = {(t.arch.activations[0], t.arch.dropout, t.arch.batch_norm) for t in s.trials()}
    assert archs == {(a, (p,), bn) for a in ("relu", "tanh") for p in (0.0, 0.5) for bn in (False, True)}
    assert "× dropout 0,0.5 × batch norm off,on" in s.label()
    assert sweep.SweepSettings.from_dict(s.to_dict()) == s and sweep.from_params(sweep.to_params(s)) == s
    assert sweep.to_params(s)["drop"] == "0,0.5" and sweep.to_params(s)["bn"] == "off,on"
    # dropout 0 without batch norm is the network every sweep trained before: the same keys, the same id
    plain = sweep.SweepSettings.of(**SMALL)
    assert sweep.SweepSettings.of(**SMALL, dropouts="0", batch_norms="off").id == plain.id
    assert "dropouts" not in plain.to_dict() and "drop" not in sweep.to_params(plain)
    old_keys = {t.key for t in plain.trials()}
    assert {t.key for t in s.trials() if t.arch.dropout == (0.0,) and not t.arch.batch_norm} == old_keys
    assert len({t.key for t in s.trials()}) == 8


def test_a_stack_holds_one_dropout_and_batch_norm_and_activations_share_it():
    s = sweep.SweepSettings.of(depths="1", widths="16", activations="relu,tanh,sigmoid", dropouts="0,0.2",
                               batch_norms="off,on", seeds=2)
    groups = stacked.stacks(s.trials())
    assert len(groups) == 4  # one per (dropout, batch norm): the 3 activations × 2 seeds train together
    for g in groups:
        assert len(g) == 6 and len({(t.arch.dropout, t.arch.batch_norm) for t in g}) == 1


@pytest.mark.parametrize("kwargs, message", [
    (dict(dropouts="0,1.5"), "Dropouts must be numbers from 0 (none) to 0.9, e.g. 0,0.2,0.5; got '1.5'."),
    (dict(dropouts="x"), "Dropouts must be numbers from 0 (none) to 0.9, e.g. 0,0.2,0.5; got 'x'."),
    (dict(dropouts=""), "Dropouts: give at least one value."),
    (dict(batch_norms="maybe"), "Batch norm must be off, on, or off,on to compare both; got 'maybe'."),
])
def test_bad_dropouts_or_batch_norm_are_refused_with_what_is_allowed(kwargs, message):
    with pytest.raises(ConfigError) as e:
        sweep.SweepSettings.of(**SMALL, **kwargs)
    assert str(e.value) == message


def test_the_estimate_counts_each_value_and_what_dropout_and_batch_norm_cost(monkeypatch):
    monkeypatch.setitem(sweep_run._pace, "at", float("inf"))
    monkeypatch.setitem(sweep_run._pace, "factor", 1.0)
    plain = sweep.SweepSettings.of(**SMALL).trials()
    dropped = sweep.SweepSettings.of(**SMALL, dropouts="0.5").trials()
    normed = sweep.SweepSettings.of(**SMALL, batch_norms="on").trials()
    both = sweep.SweepSettings.of(**SMALL, dropouts="0,0.5", batch_norms="off,on").trials()
    one = sweep_run.stack_seconds(plain)
    assert sweep_run.stack_seconds(dropped) > one and sweep_run.stack_seconds(normed) > one
    # four stacks instead of one, on one slot: about four times as long
    assert sweep_run.estimate_seconds(both) > 3.5 * (sweep_run.estimate_seconds(plain) - sweep_run.START_S)


def test_a_small_sweep_over_dropout_and_batch_norm_records_both_and_ranks_by_validation(
        tmp_path, train_split, test_split):
    s = sweep.SweepSettings.of(depths="1", widths="16", activations="relu", dropouts="0,0.5",
                               batch_norms="off,on", train_images=1000)
    store = sweep_db.SweepDatabase(tmp_path)
    run = sweep_run.Sweep(s, train_split, test_split, store).start()
    assert run.wait(180) and run.error is None
    records = store.records(run.id)
    assert {(r["dropout"], r["batch_norm"]) for r in records} == {(p, bn) for p in (0.0, 0.5)
                                                                  for bn in (False, True)}
    for r in records:
        assert r["train_images"] == 1000 and 0.2 < r["validation_accuracy"] < 1
        assert ("dropout 0.5" in r["network"]) == (r["dropout"] == 0.5)
        assert ("batch norm" in r["network"]) == r["batch_norm"]
    rows = sweep_results.summarize(records)
    assert len(rows) == 4 and {(r["dropout"], r["batch_norm"]) for r in rows} == \
        {(r["dropout"], r["batch_norm"]) for r in records}
    ranked = [r["validation_accuracy"] for r in rows]
    assert ranked == sorted(ranked, reverse=True) and rows[0]["best"]
    assert [name for _, name, _ in sweep_results.varied(rows)] == ["dropout", "batch_norm"]
    store.close()


def test_validation_chooses_between_dropouts_even_where_test_would_choose_the_other():
    s = sweep.SweepSettings.of(depths="1", widths="64", activations="relu", dropouts="0,0.5")
    plain, dropped = s.trials()
    records = [plain.record(_trained(test=0.97, validation=0.93), "local"),  # best on test
               dropped.record(_trained(test=0.95, validation=0.96), "local")]  # best on validation
    rows = sweep_results.summarize(records)
    assert [r["dropout"] for r in rows] == [0.5, 0.0] and rows[0]["best"] and not rows[1]["best"]
    assert [r["pareto"] for r in rows] == [True, False]  # same parameters, lower validation
    fig = sweep_plots.accuracy_vs_parameters(rows)
    assert "validation" in fig.layout.yaxis.title.text
    front = [t for t in fig.data if t.name == "Pareto front"][0]
    assert list(front.y) == [96.0]


def test_a_record_saved_before_dropout_existed_is_one_config_with_a_new_seed_of_it(tmp_path):
    s = sweep.SweepSettings.of(depths="1", widths="16", activations="relu", seeds=2)
    first, second = s.trials()
    old = {k: v for k, v in first.record(_trained(0.9, 0.9), "local").items()
           if k not in ("dropout", "batch_norm", "weight_decay", "label_noise")}
    store = sweep_db.SweepDatabase(tmp_path)
    store.add_sweep(s)
    store.add_trial(s.id, old)
    store.add_trial(s.id, second.record(_trained(0.92, 0.92), "local"))
    records = store.records(s.id)
    assert [(r["dropout"], r["batch_norm"], r["weight_decay"], r["label_noise"]) for r in records] == \
        [(0.0, False, 0.0, 0.0)] * 2
    rows = sweep_results.summarize(records)
    assert len(rows) == 1 and rows[0]["seeds"] == 2
    store.close()


def _row(width, images, train, validation):
    params = 795 * width
    return {"network": f"784-{width}-10 relu", "hidden": [width], "activations": ["relu"],
            "activation": "relu", "depth": 1, "width": width, "parameters": params, "weight_std": None,
            "init": "default", "lr": 0.001, "epochs": 1, "train_images": images, "train_accuracy": train,
            "validation_accuracy": validation, "test_accuracy": validation, "seeds": 1}


def test_the_capacity_picture_draws_training_solid_and_validation_dashed_per_training_set_size():
    rows = [_row(16, 300, 0.95, 0.80), _row(256, 300, 1.00, 0.82),
            _row(16, None, 0.93, 0.92), _row(256, None, 0.98, 0.96),
            {**_row(256, None, 0.99, 0.90), "lr": 0.01},  # another config of that size: validation drops it
            {**_row(16, 300, 0.5, 0.5), "activation": "tanh"}]  # another activation: not drawn
    fig = sweep_plots.capacity(rows, depth=1, activation="relu")
    by_name = {t.name: t for t in fig.data}
    assert list(by_name) == ["training, 300 training images", "validation, 300 training images",
                             "training, all training images", "validation, all training images"]
    assert list(by_name["training, 300 training images"].y) == [95.0, 100.0]
    assert list(by_name["validation, 300 training images"].y) == [80.0, 82.0]
    assert list(by_name["training, all training images"].y) == [93.0, 98.0]
    assert list(by_name["validation, all training images"].x) == [795 * 16, 795 * 256]
    assert {t.line.dash for t in fig.data if t.name.startswith("training")} == {"solid"}
    assert {t.line.dash for t in fig.data if t.name.startswith("validation")} == {"dash"}
    assert fig.layout.xaxis.type == "log" and "validation dashed" in fig.layout.yaxis.title.text
    assert "gap +18.0 points" in by_name["training, 300 training images"].hovertext[1]


def test_records_written_as_json_say_dropout_and_batch_norm():
    s = sweep.SweepSettings.of(depths="2", widths="32", activations="relu", dropouts="0.2", batch_norms="on")
    (t,) = s.trials()
    r = t.record(_trained(0.9, 0.9), "local")
    assert r["dropout"] == 0.2 and r["batch_norm"] is True
    assert json.loads(json.dumps(r))["network"] == "784-32-32-10 relu, dropout 0.2, batch norm"
