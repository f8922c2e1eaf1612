"""What each student of a class is doing on Train, for the teacher's board: what they are training
now, and their best validation accuracy so far with that network's parameters.

One row per student of a class, written when a training starts or finishes on Train while the
student is in the class (their handle and secret checked), read only with the teacher's key. Every
query names its class: no class reads another's rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Column, Float, Integer, String, Table, Text, UniqueConstraint, insert, select, update
from sqlalchemy.exc import IntegrityError

from mnistlab import db
from mnistlab.classes import CODE_LENGTH, MAX_HANDLE, ClassStore, check_code, check_handle

MAX_LABEL = 200
# A training still "now" this long after it started was left: its browser closed, the job stopped with
# its owner, and no finish was written. Twice a run's time limit (jobs.MAX_RUN_SECONDS, 5 minutes),
# for the time a run may wait in the queue first.
STALE_AFTER_S = 600

class_activity = Table(
    "class_activity", db.METADATA,
    Column("id", Integer, primary_key=True),
    Column("class_code", String(CODE_LENGTH), nullable=False, index=True),
    Column("handle_key", String(4 * MAX_HANDLE), nullable=False),  # casefolded, as classes compares
    Column("training", Text),  # the training running now; None between trainings
    Column("last", Text),  # the training last finished
    Column("validation", Float),  # best validation accuracy of a finished training
    Column("parameters", Integer),  # that network's parameters
    Column("updated", Float, nullable=False),  # Unix seconds
    UniqueConstraint("class_code", "handle_key"),
)


@dataclass(frozen=True)
class Activity:
    handle_key: str
    training: str | None  # what is training now
    last: str | None
    validation: float | None  # best validation accuracy so far
    parameters: int | None
    updated: datetime


def _write(store: ClassStore, code: str, handle_key: str, values: dict, best=None) -> None:
    """Updates (or makes) the student's row; `best` (validation, parameters) replaces a lower best."""
    now = store.clock()
    with store.engine.begin() as c:
        where = (class_activity.c.class_code == code, class_activity.c.handle_key == handle_key)
        row = c.execute(select(class_activity).where(*where)).first()
        if best is not None and (row is None or row.validation is None or best[0] > row.validation):
            values = {**values, "validation": best[0], "parameters": best[1]}
        if row is not None:
            c.execute(update(class_activity).where(*where).values(updated=now, **values))
            return
        try:
            with c.begin_nested():
                c.execute(insert(class_activity).values(class_code=code, handle_key=handle_key, updated=now,
                                                        **values))
        except IntegrityError:  # the same student's other tab wrote first
            c.execute(update(class_activity).where(*where).values(updated=now, **values))


def started(store: ClassStore, code, handle, secret, label: str) -> None:
    """`handle` (whose `secret` it must be) started training `label` on Train."""
    code, handle_key = _member(store, code, handle, secret)
    _write(store, code, handle_key, {"training": str(label)[:MAX_LABEL]})


def finished(store: ClassStore, code, handle, secret, label: str, validation: float | None,
             parameters: int) -> None:
    """`handle`'s training `label` finished with `validation` accuracy (None: no validation split)."""
    code, handle_key = _member(store, code, handle, secret)
    best = (float(validation), int(parameters)) if validation is not None else None
    _write(store, code, handle_key, {"training": None, "last": str(label)[:MAX_LABEL]}, best)


def _member(store: ClassStore, code, handle, secret) -> tuple[str, str]:
    """The class code and handle as stored, once the secret is checked (a ClassError if not)."""
    store.check_student(code, handle, secret)
    return check_code(code), check_handle(handle)[1]


def activity(store: ClassStore, code, key) -> dict[str, Activity]:
    """Each student's activity by casefolded handle: the teacher's (`key` checked)."""
    store.check_key(code, key)
    with store.engine.connect() as c:
        rows = c.execute(select(class_activity).where(class_activity.c.class_code == check_code(code))).all()
    stale = store.clock() - STALE_AFTER_S
    return {r.handle_key: Activity(r.handle_key, r.training if r.updated > stale else None, r.last,
                                   r.validation, r.parameters, datetime.fromtimestamp(r.updated, UTC))
            for r in rows}
