"""`python -m mnistlab sweep`: a table and one JSON record per trial; both engines give the same
accuracies; a sweep killed mid-way loses nothing; bad arguments told in one line."""

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mnistlab import sweep_db
from mnistlab.__main__ import main

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--depth", "1,2", "--hidden", "16,32", "--activation", "relu,sigmoid", "--seeds", "2",
         "--epochs", "1", "--train-images", "3000"]


def _cli(*args, models, **kwargs):
    env = {**os.environ, "MNISTLAB_MODELS": str(models)}
    return subprocess.Popen([sys.executable, "-m", "mnistlab", "sweep", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def _finish(proc, timeout=300):
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return out, err


def _accuracies(path: Path) -> dict:
    return {(tuple(r["hidden"]), r["activation"], r["seed"]): r["test_accuracy"]
            for r in json.loads(path.read_text())}


@pytest.mark.slow
def test_the_local_and_the_ray_engine_give_the_same_trials_the_same_accuracies(tmp_path):
    # Both at once: each trial trains on one thread, so sharing the cores changes no accuracy
    started = (_cli(*SMALL, "--json", str(tmp_path / "local.json"), models=tmp_path / "a"),
               _cli(*SMALL, "--engine", "ray", "--json", str(tmp_path / "ray.json"), models=tmp_path / "b"))
    local, ray = map(_finish, started)
    records = json.loads((tmp_path / "ray.json").read_text())
    assert len(records) == 16 and {r["engine"] for r in records} == {"ray"}
    assert all({"hidden", "activations", "parameters", "seed", "epochs", "test_accuracy", "seconds"} <= set(r)
               for r in records)
    assert _accuracies(tmp_path / "local.json") == _accuracies(tmp_path / "ray.json")
    accuracies = list(_accuracies(tmp_path / "local.json").values())
    assert sum(accuracies) / len(accuracies) > 0.5  # 47 steps each: far above chance (10%), far from done
    for out, err in (local, ray):
        lines = out.splitlines()
        assert "network" in lines[0] and "validation" in lines[0] and "test" in lines[0]
        assert lines[2].startswith("* ")  # the best network is on the Pareto front
        assert "16 of 16 trained" in err
    assert "on the ray engine" in ray[1]
    assert f"on the local engine ({os.cpu_count()} at once)" in local[1]  # a stack on each core


def test_a_sweep_over_training_set_sizes_and_weight_decay_ranks_by_validation_and_records_all(tmp_path):
    out, err = _finish(_cli("--depth", "1", "--hidden", "32", "--activation", "relu", "--epochs", "2",
                            "--train-images", "300,3000", "--weight-decay", "0,0.01", "--label-noise", "0.1",
                            "--json", str(tmp_path / "s.json"), models=tmp_path))
    records = json.loads((tmp_path / "s.json").read_text())
    assert len(records) == 4 and "4 of 4 trained" in err
    for r in records:
        assert {"train_accuracy", "validation_accuracy", "best_epoch", "best_validation_accuracy",
                "test_accuracy", "weight_decay", "train_images", "label_noise", "validation", "split_seed",
                "optimizer", "early_stop"} <= set(r)
        assert r["label_noise"] == 0.1 and r["best_epoch"] in (1, 2) and r["validation"] == 10_000
    small = [r for r in records if r["train_images"] == 300]
    large = [r for r in records if r["train_images"] == 3000]
    # 300 images are learned far better than they generalize; 3,000 generalize better
    assert min(r["validation_accuracy"] for r in large) > max(r["validation_accuracy"] for r in small)
    lines = out.splitlines()
    assert "weight decay" in lines[0] and "train images" in lines[0] and "validation" in lines[0]
    ranked = [float(line.split("%")[1].split()[-1]) for line in lines[2:6]]  # the validation column
    assert ranked == sorted(ranked, reverse=True) and lines[2].startswith("* ")
    assert "Ranked by validation accuracy; test (held out) is shown, never used to choose." in out


def test_a_sweep_over_dropout_and_batch_norm_writes_both_in_its_records(tmp_path):
    out, err = _finish(_cli("--depth", "1", "--hidden", "16", "--activation", "relu", "--epochs", "1",
                            "--train-images", "1000", "--dropout", "0,0.5", "--batch-norm", "off,on",
                            "--json", str(tmp_path / "s.json"), models=tmp_path))
    records = json.loads((tmp_path / "s.json").read_text())
    assert "× dropout 0,0.5 × batch norm off,on" in err and "4 of 4 trained" in err
    assert {(r["dropout"], r["batch_norm"]) for r in records} == {(p, bn) for p in (0, 0.5)
                                                                  for bn in (False, True)}
    lines = out.splitlines()
    assert any(line.startswith("* ") for line in lines[2:6])
    assert any("784-16-10 relu, dropout 0.5, batch norm " in line for line in lines[2:6])  # wide enough
    ranked = [float(line.split("%")[1].split()[-1]) for line in lines[2:6]]  # the validation column
    assert ranked == sorted(ranked, reverse=True)
    one = _finish(_cli("--depth", "1", "--hidden", "16", "--activation", "relu", "--epochs", "1",
                       "--train-images", "1000", "--batch-norm", "--json", str(tmp_path / "bn.json"),
                       models=tmp_path))
    assert [r["batch_norm"] for r in json.loads((tmp_path / "bn.json").read_text())] == [True]  # alone: on
    assert "× batch norm on" in one[1]


def test_a_sweep_of_both_families_records_each_trials_family_parameters_and_multiply_adds(tmp_path):
    """--conv "none;4:5": an MLP and a CNN of each depth, the CNN trained alone (not stacked); with
    depth 0, a CNN straight from its last pool to the output beside softmax regression."""
    out, err = _finish(_cli("--conv", "none;4:5", "--depth", "0,1", "--hidden", "16", "--activation", "relu",
                            "--epochs", "1", "--train-images", "3000", "--json", str(tmp_path / "s.json"),
                            models=tmp_path))
    records = {r["network"]: r for r in json.loads((tmp_path / "s.json").read_text())}
    assert "convolutions none; 4:5,pool × 0,1 layers" in err and "4 of 4 trained" in err
    assert set(records) == {"784-10", "784-16-10 relu", "conv 4:5 → pool → 576-10 relu",
                            "conv 4:5 → pool → 576-16-10 relu"}
    cnn = records["conv 4:5 → pool → 576-10 relu"]
    assert (cnn["family"], cnn["convs"], cnn["parameters"], cnn["macs"], cnn["stacked"]) == \
        ("CNN", "4:5,pool", 104 + 5_770, 4 * 24 * 24 * 25 + 5_760, 1)
    assert records["784-10"]["family"] == "MLP" and records["784-10"]["width"] is None
    assert all(r["validation_accuracy"] > 0.4 for r in records.values())  # 47 steps: well above 10%


def test_a_sweep_killed_mid_way_then_started_again_trains_only_what_was_missing(tmp_path):
    args = ["--depth", "1", "--hidden", "8,16,24,32,48,64", "--activation", "relu", "--epochs", "1",
            "--train-images", "12000", "--json", str(tmp_path / "out.json")]
    proc = _cli(*args, models=tmp_path)
    db = tmp_path / "mnistlab.sqlite"  # the app's database, in the models folder
    finished = 0
    deadline = time.monotonic() + 240
    while finished == 0 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
        if db.exists():
            try:
                with sqlite3.connect(db) as c:
                    finished = c.execute("SELECT COUNT(*) FROM sweep_trials").fetchone()[0]
            except sqlite3.OperationalError:  # the tables are being created
                pass
    proc.send_signal(signal.SIGKILL)  # no clean-up of any kind
    proc.wait()
    with sqlite3.connect(db) as c:
        before = dict(c.execute("SELECT key, record FROM sweep_trials").fetchall())
    assert 1 <= len(before) < 6, "the sweep should have been killed mid-way"

    out, err = _finish(_cli(*args, models=tmp_path))
    assert f"{len(before)} of 6 trials were trained before; training the {6 - len(before)} missing" in err
    sweep_id = re.search(r"^Sweep (\w+): ", err, re.M).group(1)
    assert f"on the app: /explore?sweep={sweep_id}" in err  # the operator's link to it
    assert sweep_db.SweepDatabase(tmp_path, old_files=()).owners(sweep_id) == {sweep_db.COMMAND_LINE: None}
    records = json.loads((tmp_path / "out.json").read_text())
    assert len(records) == 6 and len({tuple(r["hidden"]) for r in records}) == 6
    kept = [json.loads(r) for r in before.values()]
    assert all(any(r["finished"] == k["finished"] and r["hidden"] == k["hidden"] for r in records)
               for k in kept)


@pytest.mark.parametrize("args, message", [
    (["--hidden", "16,abc"], "mnistlab: error: A width must be a whole number from 1 to 2,048; got 'abc'."),
    (["--seeds", "9"], "mnistlab: error: Seeds per config must be a whole number from 1 to 5; got '9'."),
    (["--depth", "5"], "mnistlab: error: Hidden layers must be a whole number from 0 to 4; got '5'."),
    (["--engine", "spark"], "mnistlab: error: Engine must be local or ray; got 'spark'."),
    (["--init", "default,0.3"], "mnistlab: error: Init must be 'default' or a normal std on Build's scale"),
    (["--hidden", "8,16,32,64,128,256,512", "--depth", "1,2,3,4", "--activation", "relu,tanh,sigmoid",
      "--seeds", "3"], "mnistlab: error: This sweep has 252 trials; a sweep may have at most 200"),
    (["--threads", "0"], "mnistlab: error: Threads must be a whole number from 1 to"),
    (["--json", "/no/such/folder/x.json"],
     "mnistlab: error: --json: the folder /no/such/folder does not exist."),
])
def test_bad_arguments_get_one_line_errors(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("MNISTLAB_MODELS", str(tmp_path))
    assert main(["sweep", *args]) == 1
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1
