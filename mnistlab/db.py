"""The app's database: one SQLite file in the models folder by default (nothing to install), or the
server that MNISTLAB_DB names as an SQLAlchemy URL (`postgresql+psycopg://user:pw@host/db`), shared by
every replica of a school's servers.

Tables are declared on `METADATA` by the modules that own them (classes, sweeps) and made with
`ready(engine)`. One engine per URL per process: its pool serves Streamlit's threads.
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

from sqlalchemy import Engine, MetaData, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from mnistlab.errors import ConfigError

ENV = "MNISTLAB_DB"
FILE_NAME = "mnistlab.sqlite"
METADATA = MetaData()
SUPPORTED = ("sqlite", "postgresql")

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def url(value: str | None = None) -> str:
    """The database URL: `value`, else $MNISTLAB_DB, else the SQLite file in the models folder. A
    bare path (or a folder) means an SQLite file there."""
    text = (value if value is not None else os.environ.get(ENV, "")).strip()
    if not text:
        return f"sqlite:///{_models_dir() / FILE_NAME}"
    if "://" not in text:
        path = Path(text).expanduser()
        return f"sqlite:///{path / FILE_NAME if path.is_dir() else path}"
    try:
        parsed = make_url(text)
    except (ArgumentError, ValueError):
        raise ConfigError(f"{ENV} must be an SQLAlchemy database URL such as "
                          f"postgresql+psycopg://user:password@host/database or a file path; "
                          f"got {redacted(text)!r}.") from None
    if parsed.get_backend_name() not in SUPPORTED:
        raise ConfigError(f"{ENV} names a {parsed.get_backend_name()} database; MNIST Lab runs on "
                          f"SQLite (the default) or PostgreSQL.")
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        text = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return text


def url_text() -> str:
    """What $MNISTLAB_DB says, as set (a cache key: the database it names may change in tests)."""
    return os.environ.get(ENV, "") + "|" + str(_models_dir())


def _models_dir() -> Path:
    """The models folder (`model_files.models_dir`), imported here: model_files imports torch, which
    a school's --help and the bench's students should not wait for."""
    from mnistlab import model_files

    return model_files.models_dir()


def redacted(text: str) -> str:
    """A URL as it may be shown or logged: its password replaced by ***."""
    try:
        return make_url(text).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "<not a URL>"


def engine(value: str | None = None) -> Engine:
    """The engine for `url(value)`, made once per process, with its tables ready."""
    key = url(value)
    with _lock:
        if key not in _engines:
            _engines[key] = ready(_make(key))
        return _engines[key]


def _make(key: str) -> Engine:
    if key.startswith("sqlite"):
        database = make_url(key).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        made = create_engine(key, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(made, "connect")
        def _pragmas(connection, _record):  # readers never wait for a writer; foreign keys kept
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return made
    return create_engine(key, pool_pre_ping=True, pool_size=5, max_overflow=10)


SCHEMA_LOCK = 0x6D6E6973  # PostgreSQL advisory lock held while the tables are made ("mnis")


def ready(made: Engine) -> Engine:
    """Makes every table declared on METADATA that the database lacks. Replicas (or processes) that
    start at once on a new database take turns, so none finds a table made after it looked: on
    PostgreSQL behind an advisory lock, on an SQLite file behind a lock on a file beside it."""
    _import_tables()
    if made.dialect.name == "postgresql":
        with made.begin() as c:
            c.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
            METADATA.create_all(c)
        return made
    database = made.url.database
    if not database or database == ":memory:":
        METADATA.create_all(made)
        return made
    with open(f"{database}.schema-lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        METADATA.create_all(made)
    return made


def _import_tables() -> None:
    """The modules that declare tables, imported so that their tables are on METADATA."""
    import importlib

    for name in TABLE_MODULES:
        importlib.import_module(name)


# Modules that declare tables on METADATA (each adds itself here when it is written).
TABLE_MODULES: list[str] = ["mnistlab.classes", "mnistlab.sweep_db", "mnistlab.class_activity"]


def dispose_all() -> None:
    """Closes every engine's connections (tests; a server shutting down)."""
    with _lock:
        for made in _engines.values():
            made.dispose()
        _engines.clear()
