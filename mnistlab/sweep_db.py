"""Sweeps and their finished trials in the app's database (`db`: SQLite by default, PostgreSQL when
MNISTLAB_DB names one): a sweep killed mid-way loses nothing, and the same sweep started again finds
what it has. Who saved a sweep is kept beside it, so a visitor's list shows their own.

A sweep is its settings (its id is their hash), so two visitors who start the same grid share one
sweep and its trials; each of them owns it (`sweep_owners`). The sweeps file of earlier versions
(`sweeps.sqlite` in the models folder) is imported once, read from a copy and left as it was; its
sweeps belong to everyone (`BEFORE_OWNERS`), as every saved sweep did then.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    func,
    select,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite as sqlite_dialect

from mnistlab import db, model_files
from mnistlab.errors import ConfigError
from mnistlab.sweep import SweepSettings

OLD_FILE = "sweeps.sqlite"  # where sweeps were kept before they moved into the app's database
# Owners that are not a visitor (a visitor's id is 32 hex digits, so none can be either):
BEFORE_OWNERS = "before owners"  # saved before sweeps had owners: everyone's, as then
COMMAND_LINE = "command line"    # run with `python -m mnistlab sweep` by the server's operator
SHARED = (BEFORE_OWNERS, COMMAND_LINE)  # the sweeps Explore lists to every visitor

SWEEPS = Table(
    "sweeps", db.METADATA,
    Column("id", String(64), primary_key=True),
    Column("settings", Text, nullable=False),
    Column("label", Text, nullable=False),
    Column("created", Float, nullable=False))
TRIALS = Table(
    "sweep_trials", db.METADATA,
    Column("sweep", String(64), primary_key=True),
    Column("key", Text, primary_key=True),
    Column("record", Text, nullable=False),
    Column("finished", Float, nullable=False, index=True))
OWNERS = Table(
    "sweep_owners", db.METADATA,
    Column("sweep", String(64), ForeignKey("sweeps.id"), primary_key=True),
    Column("owner", String(64), primary_key=True, index=True),
    Column("class_code", String(64), nullable=True, index=True),
    Column("added", Float, nullable=False))
IMPORTS = Table(  # each old sweeps file imported, as it was then: a file that changed is read again
    "sweep_imports", db.METADATA,
    Column("source", Text, primary_key=True),
    Column("size", Integer, nullable=False),
    Column("modified", Float, nullable=False),
    Column("sweeps", Integer, nullable=False),
    Column("trials", Integer, nullable=False),
    Column("imported", Float, nullable=False))


# What a record written before a setting could vary lacks, as its key says it (a key holds a newer
# setting only where it is not its default): so a resumed sweep's old and new trials of one config
# are one row of its table, not two.
FILLED_FROM_KEY = {"weight_decay": ("config", "weight_decay", 0.0),
                   "label_noise": ("config", "label_noise", 0.0),
                   "train_images": ("config", "train_images", None),
                   "batch_norm": ("arch", "batch_norm", False)}


def _as_saved_now(record: dict, settings: dict) -> dict:
    """A trial record as this version writes it. Before the training settings were one config, a
    sweep's training-set size was the sweep's own and not in its trials' keys; it is now a training
    setting like any other, so it joins the key where the sweep had one. Settings added since the
    record was written (weight decay, label noise, dropout, batch norm) are filled in from its key."""
    n = settings.get("train_images")
    key = json.loads(record["key"])
    if n and "train_images" not in key.get("config", {}):
        key["config"]["train_images"] = n
        record = {**record, "key": json.dumps(key, sort_keys=True), "train_images": n}
    missing = {name: key.get(part, {}).get(field, default)
               for name, (part, field, default) in FILLED_FROM_KEY.items() if name not in record}
    if "dropout" not in record:
        ps = key.get("arch", {}).get("dropout", [0.0])
        missing["dropout"] = ps[0] if len(set(ps)) == 1 else ps
    return {**record, **missing} if missing else record


def old_file(folder=None) -> Path:
    """The sweeps file of earlier versions in `folder` (the models folder unless given)."""
    return Path(folder if folder is not None else model_files.models_dir()) / OLD_FILE


def _where(location) -> tuple[str, list[Path]]:
    """The database URL and the old sweeps files to import, for what `SweepDatabase` was given: nothing
    (the app's database; the models folder's old file), a URL (that database; the same), a folder (the
    database file in it; its old file) or an old sweeps file (the database beside it; that file)."""
    if location is None or "://" in str(location):
        return db.url(location), [old_file()]
    path = Path(location).expanduser()
    if path.suffix == ".sqlite" and path.name != db.FILE_NAME:
        return db.url(str(path.parent / db.FILE_NAME)), [path]
    if path.suffix == ".sqlite":
        return db.url(str(path)), [old_file(path.parent)]
    path.mkdir(parents=True, exist_ok=True)
    return db.url(str(path)), [old_file(path)]


def _insert(connection, table: Table):
    """INSERT with ON CONFLICT for this connection's dialect (both speak it, each in its own class)."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite_dialect
    return dialect.insert(table)


class SweepDatabase:
    """Sweeps, their finished trials (one row each, committed as each finishes) and who saved each, in
    the app's database. Any number of threads and processes may write at once.

    `SweepDatabase()` is the app's database; also a URL, a folder (its `mnistlab.sqlite`), or an old
    `sweeps.sqlite` file (the database beside it, with that file imported). `old_files` names the old
    files to import instead (none: `()`)."""

    def __init__(self, location=None, old_files: Iterable | None = None):
        self.url, found = _where(location)
        self.engine = db.engine(self.url)
        for path in found if old_files is None else old_files:
            self.import_file(path)

    @property
    def where(self) -> str:
        """The database, as it may be shown (no password)."""
        return db.redacted(self.url)

    def __repr__(self) -> str:
        return f"SweepDatabase({self.where!r})"

    def close(self) -> None:
        """Nothing to close: the engine and its pool are the process's (`db.engine`)."""

    # -- writing ---------------------------------------------------------------------------------

    def add_sweep(self, settings: SweepSettings, owner: str | None = None,
                  class_code: str | None = None) -> str:
        """Saves the sweep if it is new, and makes `owner` (a visitor's id, `COMMAND_LINE`) one of its
        owners, in `class_code`'s class if given. Without an owner it opens by its link only."""
        now = time.time()
        with self.engine.begin() as c:
            c.execute(_insert(c, SWEEPS).values(id=settings.id, settings=json.dumps(settings.to_dict()),
                                                label=settings.label(), created=now)
                      .on_conflict_do_nothing())
            if owner is not None:
                self._own(c, settings.id, owner, class_code, now)
        return settings.id

    @staticmethod
    def _own(c, sweep_id: str, owner: str, class_code: str | None, now: float) -> None:
        row = dict(sweep=sweep_id, owner=owner, class_code=class_code, added=now)
        stmt = _insert(c, OWNERS).values(**row)
        if class_code is None:  # starting it again outside a class keeps the class it was saved in
            c.execute(stmt.on_conflict_do_nothing())
        else:
            c.execute(stmt.on_conflict_do_update(index_elements=["sweep", "owner"],
                                                 set_={"class_code": class_code}))

    def add_trial(self, sweep_id: str, record: dict) -> None:
        """One finished trial, committed at once (a trial trained again replaces its row)."""
        row = dict(sweep=sweep_id, key=record["key"], record=json.dumps(record), finished=record["finished"])
        with self.engine.begin() as c:
            stmt = _insert(c, TRIALS).values(**row)
            c.execute(stmt.on_conflict_do_update(index_elements=["sweep", "key"],
                                                 set_={"record": stmt.excluded.record,
                                                       "finished": stmt.excluded.finished}))

    # -- reading ---------------------------------------------------------------------------------

    def records(self, sweep_id: str) -> list[dict]:
        with self.engine.connect() as c:
            rows = c.execute(select(TRIALS.c.record).where(TRIALS.c.sweep == sweep_id)
                             .order_by(TRIALS.c.finished, TRIALS.c.key)).scalars().all()
            saved = c.execute(select(SWEEPS.c.settings).where(SWEEPS.c.id == sweep_id)).scalar()
        settings = json.loads(saved) if saved else {}
        return [_as_saved_now(json.loads(r), settings) for r in rows]

    def settings(self, sweep_id: str) -> SweepSettings:
        with self.engine.connect() as c:
            saved = c.execute(select(SWEEPS.c.settings).where(SWEEPS.c.id == sweep_id)).scalar()
        if saved is None:
            raise ConfigError(f"No saved sweep {sweep_id!r} in {self.where}.")
        return SweepSettings.from_dict(json.loads(saved))

    def __contains__(self, sweep_id: str) -> bool:
        """Whether a sweep of this id is saved (whoever saved it: a link opens it for anyone)."""
        with self.engine.connect() as c:
            return c.execute(select(SWEEPS.c.id).where(SWEEPS.c.id == sweep_id)).first() is not None

    def sweeps(self, owner: str | Iterable[str] | None = None, class_code: str | None = None) -> list[dict]:
        """Saved sweeps, newest first: id, label, created, how many trials are finished. Every one, or
        those `owner` saved (or any of several owners, e.g. `SHARED`), those saved in `class_code`'s
        class, or with both, those that owner saved in that class."""
        finished = (select(TRIALS.c.sweep, func.count().label("n")).group_by(TRIALS.c.sweep)
                    .subquery())
        query = (select(SWEEPS.c.id, SWEEPS.c.label, SWEEPS.c.created,
                        func.coalesce(finished.c.n, 0))
                 .outerjoin(finished, finished.c.sweep == SWEEPS.c.id)
                 .order_by(SWEEPS.c.created.desc(), SWEEPS.c.id))
        if owner is not None or class_code is not None:
            owned = select(OWNERS.c.sweep)
            if owner is not None:
                owners = [owner] if isinstance(owner, str) else list(owner)
                owned = owned.where(OWNERS.c.owner.in_(owners))
            if class_code is not None:
                owned = owned.where(OWNERS.c.class_code == class_code)
            query = query.where(SWEEPS.c.id.in_(owned))
        with self.engine.connect() as c:
            rows = c.execute(query).all()
        return [{"id": i, "label": label, "created": created, "finished": n} for i, label, created, n in rows]

    def owners(self, sweep_id: str) -> dict[str, str | None]:
        """Who owns a sweep: each owner and the class they saved it in (None: no class)."""
        with self.engine.connect() as c:
            rows = c.execute(select(OWNERS.c.owner, OWNERS.c.class_code)
                             .where(OWNERS.c.sweep == sweep_id)).all()
        return dict(rows)

    # -- the sweeps file of earlier versions -------------------------------------------------------

    def import_file(self, path) -> tuple[int, int]:
        """Imports an old sweeps file's sweeps (owned by `BEFORE_OWNERS`) and trials, once: rows already
        here are kept as they are, and a file unchanged since its last import is not read again. The
        file is read from a copy (with its write-ahead log), so it stays exactly as it was. Returns how
        many sweeps and trials were new here."""
        path = Path(path).expanduser().resolve()
        if not path.is_file():
            return 0, 0
        stat = path.stat()
        wal = path.with_name(path.name + "-wal")
        size = stat.st_size + (wal.stat().st_size if wal.is_file() else 0)
        modified = max(stat.st_mtime, wal.stat().st_mtime if wal.is_file() else 0.0)
        with self.engine.connect() as c:
            seen = c.execute(select(IMPORTS.c.size, IMPORTS.c.modified)
                             .where(IMPORTS.c.source == str(path))).first()
        if seen is not None and tuple(seen) == (size, modified):
            return 0, 0
        sweeps, trials = _read_old_file(path, wal)
        now = time.time()
        with self.engine.begin() as c:  # all of it or nothing: an import cut short runs again whole
            new_sweeps = new_trials = 0
            for sweep_id, settings, label, created in sweeps:
                new_sweeps += len(c.execute(_insert(c, SWEEPS).values(
                    id=sweep_id, settings=settings, label=label, created=created)
                    .on_conflict_do_nothing().returning(SWEEPS.c.id)).all())
                self._own(c, sweep_id, BEFORE_OWNERS, None, now)
            for sweep_id, key, record, finished in trials:
                new_trials += len(c.execute(_insert(c, TRIALS).values(
                    sweep=sweep_id, key=key, record=record, finished=finished)
                    .on_conflict_do_nothing().returning(TRIALS.c.key)).all())
            row = dict(source=str(path), size=size, modified=modified, sweeps=len(sweeps),
                       trials=len(trials), imported=now)
            stmt = _insert(c, IMPORTS).values(**row)
            c.execute(stmt.on_conflict_do_update(index_elements=["source"],
                                                 set_={k: v for k, v in row.items() if k != "source"}))
        return new_sweeps, new_trials


def _read_old_file(path: Path, wal: Path) -> tuple[list[tuple], list[tuple]]:
    """An old sweeps file's sweeps and trials rows, read from a copy in a temporary folder: opening the
    file itself would make SQLite write beside it (its -shm) or fold its log into it."""
    with tempfile.TemporaryDirectory(prefix="mnistlab-old-sweeps-") as folder:
        copy = Path(folder) / OLD_FILE
        shutil.copyfile(path, copy)
        if wal.is_file():
            shutil.copyfile(wal, Path(folder) / (OLD_FILE + "-wal"))
        old = sqlite3.connect(copy)
        try:
            tables = {r[0] for r in old.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not {"sweeps", "trials"} <= tables:
                raise ConfigError(f"{path} is not a sweeps file of MNIST Lab (it has no sweeps and trials "
                                  f"tables).")
            sweeps = old.execute("SELECT id, settings, label, created FROM sweeps").fetchall()
            trials = old.execute("SELECT sweep, key, record, finished FROM trials").fetchall()
        finally:
            old.close()
    return sweeps, trials
