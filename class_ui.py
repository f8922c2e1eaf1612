"""The visitor's class, as every page reaches it: the classes store (one per server), the seat their
browser keeps (code, handle and secret: `SEAT`), submitting a network with its receipt or refusal
shown beside the button (Train and Class both), and the Train activity the teacher's board shows."""

from __future__ import annotations

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

import lab_ui
from mnistlab import class_activity, class_view, db, model_files, sweep_db
from mnistlab.class_view import SEAT_PATTERN, Seat
from mnistlab.classes import ClassInfo, ClassStore
from mnistlab.errors import LabError
from visitor import BrowserValue

SEAT = BrowserValue("class", SEAT_PATTERN)
ss = st.session_state


@st.cache_resource(show_spinner=False)
def _store_at(url: str) -> ClassStore:
    return ClassStore(url)


def store() -> ClassStore:
    """The server's classes, in the app's database."""
    return _store_at(db.url())


@st.cache_resource(show_spinner=False)
def _sweeps_at(url: str) -> sweep_db.SweepDatabase:
    return sweep_db.SweepDatabase(url, old_files=())


def sweeps() -> sweep_db.SweepDatabase:
    """The server's saved sweeps (for a class's architecture map)."""
    return _sweeps_at(db.url())


def seat() -> Seat | None:
    """The class this visitor's browser has joined (None: none, or a cookie no class could have)."""
    return Seat.decode(SEAT.get()) if SEAT.get() else None


def take_seat(new: Seat) -> None:
    SEAT.set(new.encode())


def leave() -> None:
    SEAT.clear()
    ss.pop("cl_own_cache", None)
    for key in [k for k in ss if k.startswith("cl_receipt") or k.startswith("cl_refusal")]:
        del ss[key]


def open_class() -> tuple[Seat, ClassInfo] | None:
    """The visitor's class and what it is, when they are in one (a class that is gone: none)."""
    mine = seat()
    if mine is None:
        return None
    try:
        return mine, store().info(mine.code)
    except (LabError, SQLAlchemyError):  # gone, or the database is down (the Class page says so)
        return None


# -- submitting ----------------------------------------------------------------------------------

def own_submissions(mine: Seat) -> tuple:
    """The student's own submissions, read once a session and again after each submission: each read
    checks their secret, a deliberately slow hash that a rerun of every click would pay on a shared core."""
    cached = ss.get("cl_own_cache")
    if cached is None or cached[0] != mine.encode():
        ss["cl_own_cache"] = (mine.encode(), store().submissions(mine.code, handle=mine.handle,
                                                                 secret=mine.secret))
    return ss["cl_own_cache"][1]


def teacher_data(code: str, key: str) -> tuple:
    """The teacher's members, submissions and Train activity, read (each checking the key, a slow hash)
    when the view opens and on Refresh or an action (`forget_teacher_data`), not on every click."""
    cached = ss.get("cl_t_cache")
    if cached is None or cached[0] != code:
        ss["cl_t_cache"] = (code, store().members(code, key), store().submissions(code, key=key),
                            class_activity.activity(store(), code, key))
    return ss["cl_t_cache"][1:]


def forget_teacher_data() -> None:
    ss.pop("cl_t_cache", None)


def _submit(key: str, saved: model_files.SavedModel | bytes | None) -> None:
    ss.pop(f"cl_receipt_{key}", None)
    ss.pop(f"cl_refusal_{key}", None)
    ss.pop("cl_own_cache", None)
    mine = seat()
    try:
        if mine is None:
            raise LabError("Join a class on the Class page first.")
        if saved is None:
            raise LabError("Choose a run or a model file to submit.")
        if not isinstance(saved, model_files.SavedModel):
            saved = model_files.from_bytes(saved, "The uploaded file")  # never unpickled: safetensors only
        rules = store().challenge(mine.code)
        split = lab_ui.split(False, rules.dataset) if rules else None
        ss[f"cl_receipt_{key}"] = store().submit(mine.code, mine.handle, saved, secret=mine.secret,
                                                 test_split=split)
    except LabError as e:
        ss[f"cl_refusal_{key}"] = str(e)


def submit_button(place, key: str, label: str, what, **kwargs) -> None:
    """A Submit button for `what()` (a SavedModel, a file's bytes, or None), and beside it the receipt
    or the refusal of its last press."""
    place.button(label, key=f"cl_submit_{key}", icon=":material/upload:",
                 on_click=lambda: _submit(key, what()), **kwargs)
    if f"cl_receipt_{key}" in ss:
        place.success(receipt_text(ss[f"cl_receipt_{key}"]), icon=":material/check_circle:")
    if f"cl_refusal_{key}" in ss:
        place.error(ss[f"cl_refusal_{key}"], icon=":material/block:")


def uploaded(f) -> bytes | None:
    """An uploaded file's bytes (read as safetensors only, never unpickled), None for none."""
    return None if f is None else f.getvalue()


def receipt_text(r) -> str:
    best = "your new best" if r.improved else f"your best shown score stays {r.best:.2%}"
    return (f"Submission {r.id} scored **{r.shown:.2%}** on the public part: {best}. "
            f"{r.left} submission{'s' * (r.left != 1)} left this hour.")


def saved_run(run) -> model_files.SavedModel:
    """A Train run as a model file, named as the Model file tab names it."""
    return model_files.SavedModel.from_run(run, model_files.default_name(run.arch, "run"))


# -- what the teacher's board shows of Train ------------------------------------------------------

def training_started(label: str) -> None:
    """Train started `label`: the teacher sees it while the visitor is in a class (nothing if not)."""
    _record(class_activity.started, label)


def training_finished(run) -> None:
    """Train finished `run` (None: it failed): no longer training; its validation accuracy, if best."""
    if run is None:
        _record(class_activity.finished, "", None, 0)
        return
    validation = run.validation.accuracy if run.validation is not None else None
    _record(class_activity.finished, run.label(), validation, run.arch.n_parameters)


def submit_here(run, key: str = "train") -> None:
    """Train's "Submit to <class>" for `run`, while the visitor is in a class with an open challenge."""
    joined = open_class()
    if joined is None:
        return
    mine, info = joined
    if info.challenge is None or info.closed is not None:
        return
    submit_button(st, key, f"Submit to {class_view.plain(info.name)}", lambda: saved_run(run),
                  help=f"Scored on the class's hidden test images: {info.challenge.label()}.")


def _record(what, *args) -> None:
    mine = seat()
    if mine is None:
        return
    try:
        what(store(), mine.code, mine.handle, mine.secret, *args)
    except (LabError, SQLAlchemyError):  # removed, the class gone, the database down: Train works on
        pass
