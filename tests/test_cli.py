"""`python -m mnistlab train|eval`: a model trained, saved and evaluated; bad arguments told in one line."""

import json
import os
import re
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
    out = trained.stdout.splitlines()
    assert out[1].startswith("train accuracy: ") and "(on the 1,000 images it learned from)" in out[1]
    assert out[2].startswith("validation accuracy: ") and "1,000 images; lowest validation loss at epoch 1" \
        in out[2]
    assert out[3].startswith("test accuracy: ") and "held out, not used to choose" in out[3]
    assert re.fullmatch(r"trained in (\d+ ms|\d+\.\d s)", out[0]), out[0]  # never "0.0 s"
    assert f"saved to {tmp_path / 'smoke.safetensors'}" in trained.stdout
    saved = model_files.load("smoke", tmp_path)
    assert saved.arch.label() == "784-64-10 tanh" and saved.seed == 3 and saved.normalization == "none"

    evaluated = _cli("eval", "smoke", models=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    lines = evaluated.stdout.splitlines()
    assert lines[0].startswith("smoke: 784-64-10 tanh, trained with adam lr 0.001")
    assert lines[0].endswith("inputs [0, 1], first 1,000 images, 1,000 validate")
    assert lines[1].startswith("test loss: ") and lines[2].startswith("test accuracy: ")
    assert lines[2].endswith("(held out, not used to choose)") and lines[3] == "per-class test accuracy:"
    assert [line.split(":")[0].strip() for line in lines[4:14]] == [str(d) for d in range(10)]
    assert lines[14].startswith("when trained: validation accuracy ") and \
        lines[14].endswith(", lowest validation loss at epoch 1")  # what the file says of its training


# `python -m mnistlab ARGS` run as the interpreter runs it (runpy, `__main__`), in one process for all
# the cases: what reaches stderr, and the exit code (SystemExit's, or 1 with the traceback an uncaught
# exception prints). The interpreter starts and imports once, not once per case.
AS_MAIN = """import contextlib, io, json, runpy, sys, traceback
results = []
for args in json.loads(sys.argv[1]):
    sys.argv, err, code = ["mnistlab", *args], io.StringIO(), 0
    with contextlib.redirect_stderr(err):
        try:
            runpy.run_module("mnistlab", run_name="__main__", alter_sys=True)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        except BaseException:
            traceback.print_exc()
            code = 1
    results.append((code, err.getvalue()))
print(json.dumps(results))
"""


def test_bad_arguments_exit_with_one_line_and_no_traceback(tmp_path):
    cases = [(["train", "--epochs", "1000000"], 1, "Epochs must be a whole number"),
             (["train", "--batch-size"], 2, "expected one argument"),
             (["eval", "missing"], 1, "No model named 'missing'")]
    ran = subprocess.run([sys.executable, "-c", AS_MAIN, json.dumps([args for args, _, _ in cases])],
                         cwd=ROOT, env={**os.environ, "MNISTLAB_MODELS": str(tmp_path)}, capture_output=True,
                         text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr
    results = json.loads(ran.stdout.splitlines()[-1])
    for (args, code, says), (exit_code, stderr) in zip(cases, results, strict=True):
        assert exit_code == code, (args, stderr)
        assert stderr.count("\n") == 1 and says in stderr and "Traceback" not in stderr, (args, stderr)


@pytest.mark.parametrize("args, says", [
    (["train", "--hidden", "0"], "Hidden layer 1 size must be from 1 to 2,048"),
    (["train", "--hidden", "1000000000"], "Hidden layer 1 size must be from 1 to 2,048"),
    (["train", "--hidden", "abc"], "whole number"),
    (["train", "--hidden", ","], "single commas"),
    (["train", "--conv", "8:5,pool,16:5,pool,16:5"],
     "Layer 5: a 5×5 kernel does not fit the 4×4 maps after layer 4"),
    (["train", "--conv", "8:5,16:5,16:3,8:3", "--hidden", ""],
     "Layer 7: a 3×3 kernel does not fit the 1×1 maps after layer 6"),
    (["train", "--conv", "8x5"], "channels:kernel or channels:kernel:padding"),
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
    (["train", "--validation", "500"], "Validation images must be a whole number from 1,000 to 20,000"),
    (["train", "--validation", "70000"], "Validation images must be a whole number from 1,000 to 20,000"),
    (["train", "--train-images", "55000"], "Training images must be a whole number from 1 to 50,000"),
    (["train", "--train-images", "-3"], "Training images must be a whole number from 1 to 50,000"),
    (["train", "--label-noise", "1.5"], "Label noise must be a number from 0 and at most 1"),
    (["train", "--label-noise", "lots"], "Label noise must be a number from 0 and at most 1"),
    (["train", "--weight-decay", "-0.1"], "Weight decay must be a number from 0 and at most 1"),
    (["train", "--weight-decay", "inf"], "Weight decay must be a number from 0 and at most 1"),
    (["train", "--optimizer", "adagrad"], "Optimizer must be one of adam, adamw, sgd"),
    (["train", "--early-stop", "21"], "Early stopping must be a whole number from 1 to 20"),
    (["train", "--early-stop", "1.5"], "Early stopping must be a whole number from 1 to 20"),
    (["train", "--evaluations", "0"], "Validation checks per epoch must be a whole number from 1 to 10"),
    (["train", "--split-seed", "x"], "Seed"),
    (["sweep", "--weight-decay", "0,2"], "Weight decay must be a number from 0 and at most 1"),
    (["sweep", "--train-images", "50,100"], "Training images must be a whole number from 100 to 50,000"),
    (["sweep", "--label-noise", "0,,0.1"], "Label noises: values are separated by single commas"),
    (["sweep", "--validation", "999"], "Validation images must be a whole number from 1,000 to 20,000"),
    (["train", "--dropout", "1.5"], "Dropout for hidden layer 1 must be a number from 0 (none) to 0.9; "
     "got '1.5'"),
    (["train", "--dropout", "x"], "Dropout for hidden layer 1 must be a number from 0 (none) to 0.9; "
     "got 'x'"),
    (["train", "--hidden", "8,8", "--dropout", "0.1,0.2,0.3"],
     "Give one dropout probability per hidden layer, or one for all: 2 layers but 3 probabilities."),
    (["sweep", "--dropout", "0,1.5"], "Dropouts must be numbers from 0 (none) to 0.9, e.g. "
     "0,0.2,0.5; got '1.5'"),
    (["sweep", "--dropout", "x"], "Dropouts must be numbers from 0 (none) to 0.9, e.g. "
     "0,0.2,0.5; got 'x'"),
    (["sweep", "--batch-norm", "maybe"], "Batch norm must be off, on, or off,on to compare both; "
     "got 'maybe'"),
    (["train", "--threads", "0"], "Threads must be a whole number from 1 to"),
    (["eval", "x", "--threads", "many"], "Threads must be a whole number from 1 to"),
    (["eval", "../secret"], "A model name is"),
])
def test_each_bad_argument_is_refused_with_its_reason(args, says, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("MNISTLAB_MODELS", str(tmp_path))
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("mnistlab: error: ") and says in err and err.count("\n") == 1


@pytest.mark.parametrize("args", [[], ["fly"], ["train", "--epochs"], ["train", "--nope"], ["eval"],
                                  ["train", "--conv", "8:5", "--pool", "max"]])
def test_malformed_commands_exit_2_with_one_line(args, capsys):
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("mnistlab") and err.endswith("(see --help)\n") and err.count("\n") == 1


def test_train_with_a_small_noisy_set_weight_decay_and_early_stopping_writes_its_validation_history(tmp_path):
    history = tmp_path / "run.json"
    trained = _cli("train", "--hidden", "32", "--train-images", "300", "--label-noise", "0.2", "--epochs",
                   "6", "--weight-decay", "0.0005", "--optimizer", "adamw", "--early-stop", "2",
                   "--validation", "2000", "--history", str(history), models=tmp_path)
    assert trained.returncode == 0, trained.stderr
    assert "adamw lr 0.001, weight decay 0.0005" in trained.stderr
    assert "300 training images, 2,000 validation" in trained.stderr
    assert "(on the 300 images it learned from, 20% of their labels changed)" in trained.stdout
    accuracy, wrong = re.search(r"test accuracy: ([\d.]+)%.*, ([\d,]+) of 10,000 wrong\)",
                                trained.stdout).groups()
    assert wrong == f"{round(10_000 - float(accuracy) * 100):,}"  # one number format: "2,549 of 10,000"
    h = json.loads(history.read_text())
    assert h["training"]["train_images"] == 300 and h["training"]["early_stop"] == 2
    epochs = len(h["epoch_ends"])
    assert len(h["loss"]) == epochs * 5  # 300 images in batches of 64: 5 steps an epoch
    v = h["validation"]
    assert v["step"][:4] == [1, 2, 4, 5] and v["images"][:4] == [250, 250, 250, 2000]  # 4 checks an epoch
    assert len(v["epoch_loss"]) == epochs
    assert h["best_epoch"] == v["epoch_loss"].index(min(v["epoch_loss"])) + 1
    assert h["kept_epoch"] == h["best_epoch"]
    assert h["validation_loss"] == pytest.approx(min(v["epoch_loss"]), rel=1e-6)  # the kept weights' loss
    assert h["early_stopped"] == (epochs < 6) and (epochs == 6 or epochs - h["best_epoch"] == 2)
    assert {"train_accuracy", "validation_accuracy", "test_accuracy"} <= set(h)


def test_train_with_dropout_and_batch_norm_reports_each_split_and_writes_them_to_its_history(tmp_path):
    history = tmp_path / "run.json"
    trained = _cli("train", "--hidden", "32,16", "--dropout", "0.5,0.2", "--batch-norm", "--dry-run",
                   "--history", str(history), models=tmp_path)
    assert trained.returncode == 0, trained.stderr
    assert "Training 784-32-16-10 relu, dropout 0.5/0.2, batch norm (25,914 parameters" in trained.stderr
    out = trained.stdout.splitlines()
    assert [line.split(":")[0] for line in out[1:4]] == ["train accuracy", "validation accuracy",
                                                         "test accuracy"]
    h = json.loads(history.read_text())
    assert h["architecture"] == {"hidden": [32, 16], "activations": ["relu", "relu"], "dropout": [0.5, 0.2],
                                 "batch_norm": True}
    assert len(h["loss"]) == len(h["accuracy"]) == 16  # each step's: 1,000 images in batches of 64
    assert len(h["validation"]["accuracy"]) == len(h["validation"]["step"]) == 4  # each check's


def test_help_answers_without_importing_torch():
    """`mnistlab --help` took 6.7 s, torch imported before the arguments were read."""
    done = subprocess.run([sys.executable, "-c", "import runpy, sys, time; start = time.perf_counter()\n"
                           "try: runpy.run_module('mnistlab', run_name='__main__')\n"
                           "except SystemExit: pass\n"
                           "print('torch' in sys.modules, time.perf_counter() - start)", "--help"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    *usage, last = done.stdout.splitlines()
    assert "usage: mnistlab" in usage[0] and "sweep" in "".join(usage)
    imported, seconds = last.split()
    assert imported == "False" and float(seconds) < 1


@pytest.mark.parametrize("argv", [["train", "--help"], ["sweep", "--help"], ["eval", "--help"],
                                  ["school", "--help"], ["train", "--nope"], ["sweep", "--pool", "2"],
                                  ["train", "--epochs", "x"], ["train", "--hidden", "64,x"],
                                  ["train", "--conv", "8:30"], ["sweep", "--depth", "9"],
                                  ["sweep", "--weight-decay", "0,2"]])
def test_a_command_s_help_and_argument_errors_answer_without_importing_torch(argv):
    """`train --help` and `sweep --help` took 2.2 s, torch imported to make their flags; an argument
    that does not hold is told before torch is imported too (it needs no data)."""
    probe = ("import runpy, sys\ntry: runpy.run_module('mnistlab', run_name='__main__')\n"
             "except SystemExit: pass\nprint('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe, *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    said = done.stdout + done.stderr
    assert ("usage: " in said) if "--help" in argv else ("error: " in said), said
    assert done.stdout.split()[-1] == "False", said


@pytest.mark.parametrize("command", ["train", "sweep"])
def test_help_names_what_each_flag_takes_and_each_default_once(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse's line breaks aside
    assert "CONFIG_" not in text and "AXIS_" not in text
    if command == "train":  # sweep's --lr is an axis, and it has no early stopping
        assert "--lr LR" in text and "--early-stop EARLY_STOP" in text
    assert "--batch-size BATCH_SIZE" in text and "--train-images TRAIN_IMAGES" in text
    assert text.count("(default: all that do not validate)") == 1
    assert not re.search(r"\(default[^()]*\)[;,]?( several, comma-separated, to compare)? \(default", text)
    assert "(default 0.0)" not in text  # label noise and weight decay: "(default 0)"


def test_a_cnn_trains_saves_and_evaluates_from_the_command_line(capsys, tmp_path, monkeypatch):
    """--conv with the pools it adds, --hidden "" for no hidden layer: the report names the network
    with its convolutions, and eval scores the file it saved."""
    monkeypatch.setenv("MNISTLAB_MODELS", str(tmp_path))
    assert main(["train", "--conv", "4:5,8:3:1", "--hidden", "", "--dry-run", "--out", "cnn"]) == 0
    out = capsys.readouterr()
    assert "Training conv 4:5 → pool → conv 8:3:1 → pool → 288-10 relu (3,290 parameters" in out.err
    assert "saved to" in out.out
    assert main(["eval", "cnn"]) == 0
    report = capsys.readouterr().out
    assert report.startswith("cnn: conv 4:5 → pool → conv 8:3:1 → pool → 288-10 relu, trained")
