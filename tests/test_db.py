"""Where the app keeps its data: the SQLite file by default, the server MNISTLAB_DB names otherwise,
with a message for a URL it cannot use that never shows the URL's password."""

import re

import pytest
from sqlalchemy import text

from mnistlab import db
from mnistlab.errors import ConfigError


def test_default_is_an_sqlite_file_in_the_models_folder(monkeypatch, tmp_path):
    monkeypatch.delenv(db.ENV, raising=False)
    monkeypatch.setenv("MNISTLAB_MODELS", str(tmp_path))
    assert db.url() == f"sqlite:///{tmp_path / db.FILE_NAME}"
    assert db.url(str(tmp_path)) == f"sqlite:///{tmp_path / db.FILE_NAME}"  # a folder: the file in it
    monkeypatch.setenv(db.ENV, "postgresql://teacher:pw@school/lab")
    assert db.url() == "postgresql+psycopg://teacher:pw@school/lab"  # psycopg 3, the driver installed


@pytest.mark.parametrize("value, told", [
    ("mysql://u:secret@h/db", "names a mysql database; MNIST Lab runs on SQLite (the default) or PostgreSQL"),
    ("postgresql+psycopg://u:secret@h:notaport/db", "must be an SQLAlchemy database URL"),
])
def test_a_url_it_cannot_use_is_told_without_its_password(value, told):
    with pytest.raises(ConfigError, match=re.escape(told)) as e:
        db.url(value)
    assert "secret" not in str(e.value)


def test_one_engine_serves_sqlite_and_postgresql_alike(db_url):
    made = db.engine(db_url)
    assert db.engine(db_url) is made  # one per process
    with made.begin() as c:
        c.execute(text("CREATE TABLE probe (n INTEGER)"))
        c.execute(text("INSERT INTO probe VALUES (7)"))
    with made.connect() as c:
        assert c.execute(text("SELECT n FROM probe")).scalar() == 7


def test_servers_starting_at_once_on_a_new_database_all_make_it_ready(db_url, tmp_path):
    """Replicas starting together on an empty database each make the tables: none may fail on a
    table another made meanwhile (it did on PostgreSQL: two CREATE TABLE sweeps at once)."""
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    root = Path(__file__).parents[1]
    # Each process imports, says so, and waits for the instant to start; once all four have imported,
    # they are given one instant shortly ahead, and all make the tables at once.
    code = ("import sys, time; from mnistlab import db, classes, sweep_db, class_activity; "
            "print('ready', flush=True); go = float(sys.stdin.readline()); "
            "time.sleep(max(0, go - time.time())); db.engine(sys.argv[1])")
    procs = [subprocess.Popen([sys.executable, "-c", code, db_url], cwd=root, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(root)}) for _ in range(4)]
    for p in procs:
        assert p.stdout.readline() == "ready\n", p.stderr.read()
    go = time.time() + 0.5
    for p in procs:
        p.stdin.write(f"{go}\n")
        p.stdin.close()
    errors = [p.stderr.read() for p in procs if p.wait(120) != 0]
    assert not errors, errors[0]
    with db.engine(db_url).connect() as c:
        assert c.execute(text("SELECT count(*) FROM sweeps")).scalar() == 0
