"""`python -m mnistlab train|eval`: a model trained, saved and evaluated; bad arguments told in one line."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mnistlab import model_files
from mnistlab.__main__ import main

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args, models):
    env = {**os.environ, "MNISTLAB_MODELS": str(models)}
    return subprocess.run([sys.executable, "-m", "mnistlab", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_train_saves_a_model_that_eval_reports_on(tmp_path):
    trained = _cli("train", "--hidden", "64", "--activation", "tanh", "--dry-run", "--seed", "3",
                   "--normalize", "none", "--out", "smoke", models=tmp_path)
    assert trained.returncode == 0, trained.stderr
    assert "Training 784-64-10 tanh" in trained.stderr and "epoch 1/1 [" in trained.stderr
    assert "test accuracy: " in trained.stdout
    assert f"saved to {tmp_path / 'smoke.safetensors'}" in trained.stdout
    saved = model_files.load("smoke", tmp_path)
    assert saved.arch.label() == "784-64-10 tanh" and saved.seed == 3 and saved.normalization == "none"

    evaluated = _cli("eval", "smoke", models=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    lines = evaluated.stdout.splitlines()
    assert lines[0].startswith("smoke: 784-64-10 tanh, trained with adam lr 0.001")
    assert lines[0].endswith("inputs [0, 1]")
    assert lines[1].startswith("test loss: ") and lines[2].startswith("test accuracy: ")
    assert lines[3] == "per-class accuracy:" and [line.split(":")[0].strip() for line in lines[4:]] == \
        [str(d) for d in range(10)]


def test_bad_arguments_exit_with_one_line_and_no_traceback(tmp_path):
    for args, code, says in [(["train", "--epochs", "1000000"], 1, "Epochs must be a whole number"),
                             (["train", "--batch-size"], 2, "expected one argument"),
                             (["eval", "missing"], 1, "No model named 'missing'")]:
        result = _cli(*args, models=tmp_path)
        assert result.returncode == code
        assert result.stderr.count("\n") == 1 and says in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("args, says", [
    (["train", "--hidden", "0"], "Hidden layer 1 size must be from 1 to 2048"),
    (["train", "--hidden", "1000000000"], "Hidden layer 1 size must be from 1 to 2048"),
    (["train", "--hidden", "abc"], "whole number"),
    (["train", "--hidden", ""], "at least one hidden layer"),
    (["train", "--hidden", "10,,10"], "single commas"),
    (["train", "--hidden", ",".join(["8"] * 30)], "At most 8 hidden layers"),
    (["train", "--activation", "swish"], "activation must be one of"),
    (["train", "--lr", "0"], "Learning rate"), (["train", "--lr", "-1"], "Learning rate"),
    (["train", "--lr", "nan"], "Learning rate"), (["train", "--batch-size", "0"], "Batch size"),
    (["train", "--batch-size", "10000000"], "Batch size"), (["train", "--epochs", "0"], "Epochs"),
    (["train", "--optimizer", "rmsprop"], "Optimizer"), (["train", "--seed", "-5"], "Seed"),
    (["train", "--weight-std", "0"], "Weight std"), (["train", "--weight-std", "inf"], "Weight std"),
    (["train", "--device", "tpu"], "Device must be"), (["train", "--out", "../../etc/x"], "A model name is"),
    (["train", "--normalize", "max"], "Input normalization must be one of lesson, mnist, fashion, none"),
    (["train", "--threads", "0"], "Threads must be a whole number from 1 to"),
    (["eval", "x", "--threads", "many"], "Threads must be a whole number from 1 to"),
    (["eval", "../secret"], "A model name is"),
])
def test_each_bad_argument_is_refused_with_its_reason(args, says, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("MNISTLAB_MODELS", str(tmp_path))
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("mnistlab: error: ") and says in err and err.count("\n") == 1


@pytest.mark.parametrize("args", [[], ["fly"], ["train", "--epochs"], ["train", "--nope"], ["eval"]])
def test_malformed_commands_exit_2_with_one_line(args, capsys):
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("mnistlab") and err.endswith("(see --help)\n") and err.count("\n") == 1
