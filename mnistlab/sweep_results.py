"""A sweep's finished trials as a table: one row per config (its seeds' mean and spread), best first,
with the Pareto front of accuracy against parameters marked.

Choosing happens on validation: rows are ranked, the front is drawn and "best" is picked by
validation accuracy; test accuracy stands beside it for the final report and never chooses. Trials
trained before there was a validation split have none: they are listed after the others, unranked.
"""

from __future__ import annotations

import json
import math
import statistics

from mnistlab.train_config import TrainConfig

# The training settings a sweep can vary (their field's `sweep`), and each one's default: what a
# record written before the setting existed was trained with.
SWEPT = {f.name: f.default for f in TrainConfig.swept()}
# What makes a config (everything but its seed); a sweep's stored records are read as this version
# writes them (`sweep_db`), so settings added since (weight decay, dropout...) have their values.
CONFIG_FIELDS = ("network", "hidden", "activations", "activation", "depth", "width", "parameters",
                 "weight_std", "init", "lr", "epochs", *SWEPT, "dropout", "batch_norm", "convs", "family",
                 "macs")
CHOOSE_BY = "validation_accuracy"
# Settings a sweep may vary beside the network's shape, init and learning rate: what a column or an
# axis is called, the field in a row, and how a value reads (a training setting's: its field's label
# and text).
SETTINGS = (("convolutions", "convs", str),
            ("dropout", "dropout", lambda v: f"{v:g}"),
            ("batch norm", "batch_norm", lambda v: "on" if v else "off"),
            *((f.metadata["label"].lower(), f.name, f.metadata["text"]) for f in TrainConfig.swept()))


def setting_value(row: dict, name: str):
    """A row's value of one of SETTINGS, comparable and sortable (dropout that differs by layer: the
    largest; a training setting the row lacks: its default)."""
    value = row.get(name)
    if name == "batch_norm":
        return bool(value)
    if name == "dropout" and isinstance(value, list):
        return max(value, default=0.0)
    if name == "convs":
        return value or "none"  # a record from before convolutions: an MLP
    if value is None:
        return SWEPT.get(name, 0.0)
    return value


def varied(rows: list[dict]) -> list[tuple]:
    """The SETTINGS whose values differ between `rows`: the ones worth a column."""
    return [s for s in SETTINGS if len({setting_value(r, s[1]) for r in rows}) > 1]


def config_key(record: dict) -> str:
    return json.dumps([record.get(k, SWEPT.get(k)) for k in CONFIG_FIELDS])


def _mean(members: list[dict], key: str) -> float | None:
    values = [m.get(key) for m in members]
    return statistics.fmean(values) if values and None not in values else None


def summarize(records: list[dict]) -> list[dict]:
    """One row per config: the mean training, validation and test accuracy over its seeds, the spread
    of validation's and of test's (standard deviation, min, max), the best validation epoch, mean
    seconds; best first by validation. Marks the Pareto front ("pareto") and the best row ("best")."""
    by_config: dict[str, list[dict]] = {}
    for r in records:
        by_config.setdefault(config_key(r), []).append(r)
    rows = []
    for members in by_config.values():
        acc = [m["test_accuracy"] for m in members]
        row = {k: members[0].get(k, SWEPT.get(k)) for k in CONFIG_FIELDS}
        row["family"] = row["family"] or "MLP"  # records from before convolutions are MLPs
        row.update(seeds=len(members), test_accuracy=statistics.fmean(acc),
                   accuracy_std=statistics.stdev(acc) if len(acc) > 1 else 0.0,  # test's spread
                   accuracy_min=min(acc), accuracy_max=max(acc),
                   train_accuracy=_mean(members, "train_accuracy"),
                   validation_accuracy=_mean(members, "validation_accuracy"),
                   best_validation_accuracy=_mean(members, "best_validation_accuracy"),
                   seconds=statistics.fmean(m["seconds"] for m in members),
                   # what was measured: the wall time of the stack each trial trained in (old records
                   # without "stacked" trained alone)
                   stacked=max(m.get("stacked", 1) for m in members),
                   stack_seconds=statistics.fmean(m["seconds"] * m.get("stacked", 1) for m in members))
        validation = [m.get("validation_accuracy") for m in members]
        if row["validation_accuracy"] is not None:
            row.update(validation_std=statistics.stdev(validation) if len(validation) > 1 else 0.0,
                       validation_min=min(validation), validation_max=max(validation))
        epochs = [m.get("best_epoch") for m in members]
        row["best_epoch"] = statistics.median_low(epochs) if None not in epochs else None
        rows.append(row)
    chosen = [r for r in rows if r[CHOOSE_BY] is not None]
    unranked = [r for r in rows if r[CHOOSE_BY] is None]
    chosen.sort(key=lambda r: (-r[CHOOSE_BY], r["parameters"]))
    unranked.sort(key=lambda r: r["parameters"])
    mark_pareto(chosen)
    for r in unranked:
        r["pareto"] = False
    for r in rows:
        r["best"] = False
    if chosen:
        chosen[0]["best"] = True
    return chosen + unranked


def mark_pareto(rows: list[dict], cost: str = "parameters", value: str = CHOOSE_BY) -> list[dict]:
    """Set each row's "pareto": True when no other row is at least as good for at most the same cost
    (fewer parameters and higher validation accuracy): the front of what each budget can buy."""
    best = -math.inf
    front = set()
    for i in sorted(range(len(rows)), key=lambda i: (rows[i][cost], -rows[i][value])):
        if rows[i][value] > best:
            front.add(i)
            best = rows[i][value]
    for i, r in enumerate(rows):
        r["pareto"] = i in front
    return rows
