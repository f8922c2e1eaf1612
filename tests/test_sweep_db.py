"""Saved sweeps in the app's database, the same cases on SQLite and on a real PostgreSQL server: who
owns which, the sweeps file of earlier versions imported once and left as it was, and many writers
at once."""

import json
import shutil
import sqlite3
import threading
from pathlib import Path

import pytest

from mnistlab import stacked, sweep, sweep_db, sweep_run
from mnistlab.errors import ConfigError

FIXTURES = Path(__file__).parent / "fixtures"
LEGACY = json.loads((FIXTURES / "legacy.json").read_text())["sweep_db"]
BEFORE = json.loads((FIXTURES / "before-layers.json").read_text())["sweep_db"]
ANN, BEN = "a" * 32, "b" * 32  # two visitors' ids


def small(widths="16", activations="relu,tanh") -> sweep.SweepSettings:
    return sweep.SweepSettings.of(depths="1", widths=widths, activations=activations)


def record(trial, accuracy=0.9, finished=1.0) -> dict:
    trained = stacked.Trained(accuracy, 0.3, [accuracy] * 10, 0.4, 2.0, 2)
    return {**trial.record(trained, "local"), "finished": finished}


@pytest.fixture
def store(db_url):
    return sweep_db.SweepDatabase(db_url, old_files=())


def test_a_sweep_and_its_trials_read_back_as_they_were_written(store):
    s = small()
    assert store.add_sweep(s) == s.id and s.id in store and "nope" not in store
    first, second = s.trials()
    store.add_trial(s.id, record(second, 0.8, finished=2.0))
    store.add_trial(s.id, record(first, 0.9, finished=1.0))
    store.add_trial(s.id, record(first, 0.95, finished=3.0))  # trained again: the row replaced
    assert [(r["activations"], r["test_accuracy"]) for r in store.records(s.id)] == \
        [(["tanh"], 0.8), (["relu"], 0.95)]  # in the order they finished
    assert store.settings(s.id) == s
    assert store.sweeps() == [{"id": s.id, "label": s.label(), "created": store.sweeps()[0]["created"],
                               "finished": 2}]
    with pytest.raises(ConfigError, match="No saved sweep 'nope' in "):
        store.settings("nope")


def test_each_visitor_lists_only_the_sweeps_they_started_and_a_class_lists_its_members(store):
    ann, ben, both = small("16"), small("32"), small("64")
    store.add_sweep(ann, ANN)
    store.add_sweep(ben, BEN, class_code="MATH7")
    store.add_sweep(both, ANN)
    store.add_sweep(both, BEN, class_code="MATH7")  # the same settings: one sweep, two owners
    store.add_sweep(small("128"))  # no owner: it opens by its link only
    assert {s["id"] for s in store.sweeps(owner=ANN)} == {ann.id, both.id}
    assert {s["id"] for s in store.sweeps(owner=BEN)} == {ben.id, both.id}
    assert store.sweeps(owner="c" * 32) == []
    assert {s["id"] for s in store.sweeps(class_code="MATH7")} == {ben.id, both.id}
    assert {s["id"] for s in store.sweeps(owner=ANN, class_code="MATH7")} == set()
    assert len(store.sweeps()) == 4  # every one: the operator's view
    assert store.owners(both.id) == {ANN: None, BEN: "MATH7"}
    store.add_sweep(both, ANN, class_code="MATH7")  # started again in a class: now in it
    store.add_sweep(both, ANN)  # and again outside it: still in it
    assert store.owners(both.id)[ANN] == "MATH7"


def test_a_sweep_run_on_the_command_line_belongs_to_the_operator_and_is_listed_to_everyone(store):
    s = small()
    store.add_sweep(s, sweep_db.COMMAND_LINE)
    assert [x["id"] for x in store.sweeps(owner=sweep_db.SHARED)] == [s.id]
    assert store.sweeps(owner=ANN) == []


@pytest.mark.parametrize("old", [LEGACY | {"file": "legacy-sweeps.sqlite"}, BEFORE],
                         ids=["legacy", "before-layers"])
def test_an_old_sweeps_file_is_imported_once_with_the_same_ids_settings_and_records(db_url, tmp_path, old):
    path = tmp_path / "sweeps.sqlite"
    shutil.copy(FIXTURES / old["file"], path)
    store = sweep_db.SweepDatabase(db_url, old_files=[path])
    settings = store.settings(old["id"])
    assert settings.id == old["id"] and settings.to_dict() == old["settings"]
    records = store.records(old["id"])
    assert [r["key"] for r in records] == [settings.trials()[0].key]  # the one it had finished
    if "records" in old:  # the fixture says what its record read as then
        assert [{k: r[k] for k in then} for r, then in zip(records, old["records"])] == old["records"]
    assert store.owners(old["id"]) == {sweep_db.BEFORE_OWNERS: None}
    assert [s["id"] for s in store.sweeps(owner=sweep_db.SHARED)] == [old["id"]]  # everyone's, as then

    assert store.import_file(path) == (0, 0)  # unchanged: not read again
    sweep_db.SweepDatabase(db_url, old_files=[path])  # another server process starting
    with sqlite3.connect(path) as c:  # an older server still running writes one more trial
        other = settings.trials()[1].key
        c.execute("INSERT INTO trials VALUES (?, ?, ?, ?)", (old["id"], other, json.dumps(
            {**records[0], "key": other}), 2e9))
    assert store.import_file(path) == (0, 1)  # only what is new
    assert len(store.records(old["id"])) == 2 and len(store.sweeps()) == 1
    assert store.owners(old["id"]) == {sweep_db.BEFORE_OWNERS: None}


def test_the_old_file_is_left_exactly_as_it_was(tmp_path, db_url):
    models = tmp_path / "models"
    models.mkdir()
    path = models / "sweeps.sqlite"
    shutil.copy(FIXTURES / "legacy-sweeps.sqlite", path)
    before = path.read_bytes(), path.stat().st_mtime_ns
    sweep_db.SweepDatabase(db_url, old_files=[path])
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before
    assert [p.name for p in models.iterdir()] == ["sweeps.sqlite"]  # no -wal, no -shm beside it


def test_a_sweep_killed_before_the_move_resumes_after_it_with_its_finished_trials(db_url, tmp_path,
                                                                                   test_split):
    path = tmp_path / "sweeps.sqlite"
    shutil.copy(FIXTURES / "legacy-sweeps.sqlite", path)
    store = sweep_db.SweepDatabase(db_url, old_files=[path])
    settings = store.settings(LEGACY["id"])
    again = sweep_run.Sweep(settings, test_split, test_split, store, saved_for=ANN)
    assert again.resumed == 1 and len(again.missing) == LEGACY["n_trials"] - 1
    assert LEGACY["finished_key"] not in {t.key for t in again.missing}
    assert store.owners(LEGACY["id"]) == {sweep_db.BEFORE_OWNERS: None, ANN: None}  # hers too now
    assert [s["id"] for s in store.sweeps(owner=ANN)] == [LEGACY["id"]]


def test_an_old_file_in_a_folder_is_found_and_a_file_that_is_not_one_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("MNISTLAB_DB", raising=False)
    shutil.copy(FIXTURES / "legacy-sweeps.sqlite", tmp_path / "sweeps.sqlite")
    store = sweep_db.SweepDatabase(tmp_path)  # the models folder, as the CLI and the app open it
    assert store.url == f"sqlite:///{tmp_path / 'mnistlab.sqlite'}"
    assert [s["id"] for s in store.sweeps()] == [LEGACY["id"]]
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).close()
    with pytest.raises(ConfigError, match="is not a sweeps file of MNIST Lab"):
        store.import_file(other)


def test_many_threads_write_trials_and_import_the_old_file_at_once_and_nothing_is_lost_or_doubled(
        db_url, tmp_path):
    path = tmp_path / "sweeps.sqlite"
    shutil.copy(FIXTURES / "legacy-sweeps.sqlite", path)
    s = sweep.SweepSettings.of(depths="1", widths="8,16,24,32", activations="relu,tanh,sigmoid", seeds=2)
    trials = s.trials()
    errors = []

    def server(n):  # each thread: a server process starting (its import), then its share of trials
        try:
            store = sweep_db.SweepDatabase(db_url, old_files=[path])
            store.add_sweep(s, f"{n:032x}")
            for t in trials[n::4]:
                store.add_trial(s.id, record(t, finished=float(n)))
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=server, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    store = sweep_db.SweepDatabase(db_url, old_files=())
    assert len(store.records(s.id)) == len(trials) == 24
    assert len(store.owners(s.id)) == 4
    assert len(store.records(LEGACY["id"])) == 1 and len(store.sweeps()) == 2


WRITER = """
import sys
from mnistlab import sweep, sweep_db
from tests.test_sweep_db import record
url, old, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = sweep.SweepSettings.of(depths="1", widths="8,16,24,32", activations="relu,tanh,sigmoid", seeds=2)
store = sweep_db.SweepDatabase(url, old_files=[old])
store.add_sweep(s, f"{n:032x}")
for t in s.trials()[n::2]:
    store.add_trial(s.id, record(t, finished=float(n)))
"""


def test_two_processes_write_one_sweep_at_once_and_each_trial_is_kept_once(db_url, tmp_path):
    import os
    import subprocess
    import sys

    path = tmp_path / "sweeps.sqlite"
    shutil.copy(FIXTURES / "legacy-sweeps.sqlite", path)
    root = Path(__file__).parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, db_url, str(path), str(n)], cwd=root, env=env,
                              stderr=subprocess.PIPE, text=True) for n in range(2)]
    for p in procs:
        assert p.wait(300) == 0, p.stderr.read()
    store = sweep_db.SweepDatabase(db_url, old_files=())
    s = sweep.SweepSettings.of(depths="1", widths="8,16,24,32", activations="relu,tanh,sigmoid", seeds=2)
    assert len(store.records(s.id)) == 24 and set(store.owners(s.id)) == {f"{n:032x}" for n in range(2)}
    assert len(store.records(LEGACY["id"])) == 1
