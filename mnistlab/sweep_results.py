"""A sweep's finished trials as a table: one row per config (its seeds' mean and spread), best
first, with the Pareto front of accuracy against parameters marked."""

from __future__ import annotations

import json
import math
import statistics

CONFIG_FIELDS = ("network", "hidden", "activations", "activation", "depth", "width", "parameters",
                 "weight_std", "init", "lr", "epochs")


def config_key(record: dict) -> str:
    return json.dumps([record[k] for k in CONFIG_FIELDS])


def summarize(records: list[dict]) -> list[dict]:
    """One row per config: the mean test accuracy over its seeds, their spread (standard deviation,
    min, max), mean seconds; best first."""
    by_config: dict[str, list[dict]] = {}
    for r in records:
        by_config.setdefault(config_key(r), []).append(r)
    rows = []
    for members in by_config.values():
        acc = [m["test_accuracy"] for m in members]
        row = {k: members[0][k] for k in CONFIG_FIELDS}
        row.update(seeds=len(members), test_accuracy=statistics.fmean(acc),
                   accuracy_std=statistics.stdev(acc) if len(acc) > 1 else 0.0,
                   accuracy_min=min(acc), accuracy_max=max(acc),
                   seconds=statistics.fmean(m["seconds"] for m in members),
                   # what was measured: the wall time of the stack each trial trained in (old records
                   # without "stacked" trained alone)
                   stacked=max(m.get("stacked", 1) for m in members),
                   stack_seconds=statistics.fmean(m["seconds"] * m.get("stacked", 1) for m in members))
        rows.append(row)
    rows.sort(key=lambda r: (-r["test_accuracy"], r["parameters"]))
    return mark_pareto(rows)


def mark_pareto(rows: list[dict], cost: str = "parameters", value: str = "test_accuracy") -> list[dict]:
    """Set each row's "pareto": True when no other row is at least as good for at most the same cost
    (fewer parameters and higher accuracy): the front of what each budget can buy."""
    best = -math.inf
    front = set()
    for i in sorted(range(len(rows)), key=lambda i: (rows[i][cost], -rows[i][value])):
        if rows[i][value] > best:
            front.add(i)
            best = rows[i][value]
    for i, r in enumerate(rows):
        r["pareto"] = i in front
    return rows


