"""Sweeps and their finished trials in one SQLite file under the models folder: a sweep killed
mid-way loses nothing, and the same sweep started again finds what it has."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

from mnistlab import model_files
from mnistlab.errors import ConfigError
from mnistlab.sweep import SweepSettings

DB_NAME = "sweeps.sqlite"


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


def db_path(folder=None) -> Path:
    return Path(folder) if folder is not None and Path(folder).suffix == ".sqlite" else \
        (Path(folder) if folder is not None else model_files.models_dir()) / DB_NAME


class SweepDatabase:
    """Sweeps and their finished trials in one SQLite file (WAL: readers never wait for a writer),
    one row per trial, committed as each finishes."""

    def __init__(self, path=None):
        self.path = db_path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS sweeps (id TEXT PRIMARY KEY, "
                             "settings TEXT NOT NULL, "
                             "label TEXT NOT NULL, created REAL NOT NULL)")
            self._db.execute("CREATE TABLE IF NOT EXISTS trials (sweep TEXT NOT NULL, key TEXT NOT NULL, "
                             "record TEXT NOT NULL, finished REAL NOT NULL, PRIMARY KEY (sweep, key))")

    def __repr__(self) -> str:
        return f"SweepDatabase({str(self.path)!r})"

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add_sweep(self, settings: SweepSettings) -> str:
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO sweeps VALUES (?, ?, ?, ?)",
                             (settings.id, json.dumps(settings.to_dict()), settings.label(), time.time()))
        return settings.id

    def add_trial(self, sweep_id: str, record: dict) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO trials VALUES (?, ?, ?, ?)",
                             (sweep_id, record["key"], json.dumps(record), record["finished"]))

    def records(self, sweep_id: str) -> list[dict]:
        with self._lock:
            rows = self._db.execute("SELECT record FROM trials WHERE sweep = ? ORDER BY finished",
                                    (sweep_id,)).fetchall()
            saved = self._db.execute("SELECT settings FROM sweeps WHERE id = ?", (sweep_id,)).fetchone()
        settings = json.loads(saved[0]) if saved else {}
        return [_as_saved_now(json.loads(r[0]), settings) for r in rows]

    def settings(self, sweep_id: str) -> SweepSettings:
        with self._lock:
            row = self._db.execute("SELECT settings FROM sweeps WHERE id = ?", (sweep_id,)).fetchone()
        if row is None:
            raise ConfigError(f"No saved sweep {sweep_id!r} in {self.path}.")
        return SweepSettings.from_dict(json.loads(row[0]))

    def sweeps(self) -> list[dict]:
        """Every saved sweep, newest first: id, label, created, how many trials are finished."""
        with self._lock:
            rows = self._db.execute(
                "SELECT s.id, s.label, s.created, COUNT(t.key) FROM sweeps s LEFT JOIN trials t "
                "ON t.sweep = s.id GROUP BY s.id ORDER BY s.created DESC").fetchall()
        return [{"id": i, "label": label, "created": created, "finished": n} for i, label, created, n in rows]


