"""`python -m mnistlab class ...`: a teacher and students from the command line, each mistake told in
one line on stderr with a non-zero exit, and a submitting process killed mid-way losing nothing it
acknowledged. On SQLite and on PostgreSQL (`db_url`)."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mnistlab import class_cli, model_files
from mnistlab.__main__ import main
from mnistlab.classes import ClassStore

ROOT = Path(__file__).resolve().parents[1]


def cli(capsys, *argv) -> tuple[int, str, str]:
    """The exit status, stdout and stderr of `mnistlab class ARGV...`."""
    status = main(["class", *map(str, argv)])
    out, err = capsys.readouterr()
    return status, out, err


def told(capsys, *argv, status=1) -> str:
    """The one line a refused command prints on stderr."""
    got, out, err = cli(capsys, *argv)
    assert got == status and out == "" and err.count("\n") == 1, (got, out, err)
    assert err.startswith("mnistlab: error: ") and "Traceback" not in err
    return err


@pytest.fixture
def files(tmp_path, class_models):
    paths = {}
    for name, saved in class_models.items():
        paths[name] = tmp_path / f"{name}.safetensors"
        paths[name].write_bytes(model_files.to_bytes(saved))
    return paths


def created(capsys, url) -> tuple[str, str]:
    status, out, err = cli(capsys, "create", "Year 10 B", "--db", url)
    assert status == 0 and "shown only now" in err
    code = re.search(r"code ([A-Z0-9]{6})$", out, re.M).group(1)
    key = re.search(r"^teacher's key: (\S+)$", out, re.M).group(1)
    return code, key


def test_a_class_from_the_command_line(db_url, capsys, files, monkeypatch):
    code, key = created(capsys, db_url)
    status, out, _ = cli(capsys, "challenge", code, "--key", key, "--budget", "50000", "--dataset", "mnist",
                         "--limit", "3", "--families", "mlp,cnn", "--ends", "90", "--ladder", "0.5",
                         "--db", db_url)
    assert status == 0 and out.startswith("challenge set: MNIST, at most 50,000 parameters, MLP or CNN, "
                                          "3 submissions an hour, ends ")
    status, out, err = cli(capsys, "submit", code, "--handle", "ada", files["mlp"], "--db", db_url)
    secret = re.search(r"^'ada' joined; your secret: (\S+)$", out, re.M).group(1)
    assert status == 0 and "shown only now" in err
    first = re.search(r"^submission (\d+): public score (\d+\.\d\d)%", out, re.M)
    monkeypatch.setenv("MNISTLAB_DB", db_url)  # the database named by the environment instead of --db
    status, out, _ = cli(capsys, "submit", code, "--handle", "ADA", files["cnn"], "--secret", secret)
    assert status == 0 and re.match(r"submission \d+: public score \d+\.\d\d%.*; 1 more this hour$", out)
    status, out, _ = cli(capsys, "board", code)
    assert status == 0 and "ada" in out and "private scores are shown when the class is closed" in out
    status, out, _ = cli(capsys, "members", code, "--key", key)
    assert status == 0 and re.match(r"ada +joined \d{4}-\d\d-\d\d \d\d:\d\d +2 submissions +best ", out)
    status, out, _ = cli(capsys, "submissions", code, "--key", key)
    number, shown = first.groups()  # the Ladder's score, and the exact one the teacher sees
    assert status == 0 and re.search(rf"^ +{number}  \d{{4}}-.* ada +public \d+\.\d\d% \(shown {shown}%\)  "
                                     r"784-16-10 relu \(12,730 parameters\)$", out, re.M)
    status, out, _ = cli(capsys, "remove", code, "--key", key, "--submission", first.group(1))
    assert status == 0 and out == f"removed submission {first.group(1)} from the board\n"
    monkeypatch.setenv(class_cli.KEY_ENV, key)  # the key from the environment, out of `ps`
    status, out, _ = cli(capsys, "close", code)
    assert status == 0 and "closed" in out
    status, out, _ = cli(capsys, "board", code, "--key", key)
    assert status == 0 and re.search(r"^ +1 +— +\d+\.\d\d% +1  ada ", out, re.M)
    assert "final order by the private score" in out


def test_each_mistake_is_one_line_and_a_non_zero_exit(db_url, capsys, files, monkeypatch):
    monkeypatch.delenv(class_cli.KEY_ENV, raising=False)
    code, key = created(capsys, db_url)
    db = ("--db", db_url)
    assert "has no challenge yet" in told(capsys, "submit", code, "--handle", "ada", files["mlp"], *db)
    assert cli(capsys, "challenge", code, "--key", key, "--limit", "1", *db)[0] == 0
    assert "That is not the teacher's key of class" in told(capsys, "close", code, "--key", "nope", *db)
    assert "needs the teacher's key: --key KEY or $MNISTLAB_CLASS_KEY" in told(capsys, "close", code, *db)
    assert "No class has the code ZZZZZZ" in told(capsys, "board", "zzzzzz", *db)
    assert "A class code is 6 letters and digits" in told(capsys, "board", "K7", *db)
    assert "This model has 109,386 parameters; this challenge allows at most 50,000" in told(
        capsys, "submit", code, "--handle", "ada", files["big"], *db)
    assert "This model is a CNN; this challenge allows MLP only" in told(
        capsys, "submit", code, "--handle", "ada", files["cnn"], *db)
    status, out, _ = cli(capsys, "submit", code, "--handle", "ada", files["mlp"], *db)
    secret = re.search(r"your secret: (\S+)", out).group(1)
    assert "this challenge allows 1 an hour" in told(
        capsys, "submit", code, "--handle", "ada", files["mlp"], "--secret", secret, *db)
    assert "do not match a student" in told(
        capsys, "submit", code, "--handle", "ada", files["mlp"], "--secret", "guess", *db)
    assert "A handle is 1 to 24 printable characters" in told(
        capsys, "submit", code, "--handle", "x" * 30, files["mlp"], *db)
    assert "No model file 'nothing.safetensors'" in told(
        capsys, "submit", code, "--handle", "bob", "nothing.safetensors", *db)
    junk = files["mlp"].with_name("junk.safetensors")
    junk.write_bytes(b"\x80\x04junk")
    assert "looks like a PyTorch pickle" in told(capsys, "submit", code, "--handle", "bob", junk, *db)
    assert "--ends is an ISO time" in told(capsys, "challenge", code, "--key", key, "--ends", "soon", *db)
    assert "The Ladder's step is in percentage points" in told(
        capsys, "challenge", code, "--key", key, "--ladder", "50", *db)
    assert "has no submission '99'" in told(capsys, "remove", code, "--key", key, "--submission", "99", *db)
    with pytest.raises(SystemExit) as e:  # argparse's own: one line too
        main(["class", "remove", code, "--key", key, *db])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "one of the arguments --handle --submission is required" in err
    escaped = told(capsys, "submit", code, "--handle", "bad\nline", files["mlp"], *db)
    assert "'bad\\nline'" in escaped  # a newline typed into a handle is shown escaped, on one line


@pytest.mark.parametrize("argv", [[], ["fly"], ["submit", "K7MQ2P"], ["board"],
                                  ["remove", "K7MQ2P", "--handle", "ada", "--submission", "1"]])
def test_malformed_class_commands_exit_2_with_one_line(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(["class", *argv])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith("mnistlab class") and err.endswith("(see --help)\n")
    assert err.count("\n") == 1 and "class_command" not in err


def test_class_help_imports_neither_torch_nor_sqlalchemy():
    probe = ("import sys; from mnistlab.__main__ import _parser; _parser('class'); "
             "print('torch' in sys.modules, 'sqlalchemy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


DRIVER = """
import sys
from mnistlab.__main__ import main
code, secret, path, url = sys.argv[1:]
while True:
    main(["class", "submit", code, "--handle", "ada", path, "--secret", secret, "--db", url])
"""


def test_a_submitting_process_killed_midway_loses_nothing_it_acknowledged(db_url, files, test_split):
    store = ClassStore(db_url)
    made = store.create("Year 10 B")
    store.set_challenge(made.code, made.key, class_cli_challenge())
    secret = store.join(made.code, "ada")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-c", DRIVER, made.code, secret, str(files["mlp"]), db_url],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    deadline = time.monotonic() + 180
    try:
        while sum(line.startswith("submission ") for line in lines) < 4 and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
        time.sleep(0.05)  # somewhere in the next submission
    finally:
        process.send_signal(signal.SIGKILL)
        rest, err = process.communicate(timeout=60)
    lines += rest.splitlines()
    acknowledged = {int(m.group(1)) for m in map(re.compile(r"submission (\d+):").match, lines) if m}
    assert len(acknowledged) >= 4, (lines, err)
    stored = {s.id for s in store.submissions(made.code, made.key)}
    assert acknowledged <= stored
    assert len(stored) - len(acknowledged) <= 1  # at most the one being told when it was killed
    # and the database goes on as before
    receipt = store.submit(made.code, "ada", files["mlp"].read_bytes(), secret, test_split)
    assert receipt.id > max(stored)
    assert store.board(made.code).standings[0].submissions == len(stored) + 1


def class_cli_challenge():
    from mnistlab.challenge import Challenge

    return Challenge(limit=1000, seed=3)
