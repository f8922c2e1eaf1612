"""The Class page through Streamlit's AppTest, on real MNIST: a teacher makes a class and sets its
challenge, students join and submit real small networks (a Train run, a model file), refusals are told
beside the button, the teacher's board, removing, closing (the final order and each rank's move), and
one class never shows another's."""

import re

import pytest
from streamlit.testing.v1 import AppTest

import class_ui
from mnistlab import class_activity, db, model_files
from mnistlab.class_view import Seat
from mnistlab.classes import ClassStore

APP = "../app.py"
pytestmark = pytest.mark.usefixtures("navigation_mode", "fresh_caches")
TIMEOUT = 60


@pytest.fixture(autouse=True)
def database(tmp_path, monkeypatch):
    """A fresh app database for each test (the SQLite file in its own models folder)."""
    monkeypatch.setenv("MNISTLAB_MODELS", str(tmp_path))
    monkeypatch.delenv(db.ENV, raising=False)
    yield
    db.dispose_all()


@pytest.fixture(scope="module")
def runs(class_models, test_split):
    """The class models as Train runs (what a session's runs list holds)."""
    return {name: model_files.as_run(saved, test_split) for name, saved in class_models.items()
            if name != "fashion"}


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def open_class(role: str = "a student", runs=()) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    if runs:
        at.session_state["runs"] = list(runs)
    at.switch_page("pages/classroom.py").run()
    ok(at)
    if role != "a student":
        ok(at.radio(key="cl_role").set_value(role).run())
    return at


def press(at: AppTest, key: str) -> AppTest:
    return ok(at.button(key=key).click().run())


def make_class(name="Year 10 B", budget=50_000, families=("mlp",), limit=5,
               ladder=0.0) -> tuple[AppTest, str, str]:
    """A teacher's page with a class made and its challenge set; its code and key."""
    at = open_class("the teacher")
    at.text_input(key="cl_name").set_value(name)
    press(at, "cl_create")
    code, key = at.session_state["cl_teacher"]
    assert key in [c.value for c in at.code]  # the key, shown once
    assert code in "".join(h.proto.body for h in at.get("html") if hasattr(h, "proto"))  # the big code
    at.number_input(key="cl_r_budget").set_value(float(budget))
    at.multiselect(key="cl_r_families").set_value(list(families))
    at.number_input(key="cl_r_limit").set_value(float(limit))
    at.number_input(key="cl_r_ladder").set_value(ladder)
    press(at, "cl_r_set")
    assert not at.error, [e.value for e in at.error]
    assert "The challenge is set." in [s.value for s in at.success]
    return at, code, key


def join(code: str, handle: str, runs=()) -> AppTest:
    at = open_class(runs=runs)
    at.text_input(key="cl_code").set_value(code.lower())  # typed in lower case: read as the code
    at.text_input(key="cl_handle").set_value(handle)
    press(at, "cl_join")
    assert not at.error, [e.value for e in at.error]
    return at


def submit_run(at: AppTest, label_part: str | None = None) -> AppTest:
    if label_part is not None:
        label = next(o for o in at.selectbox(key="cl_run").options if label_part in o)
        at.selectbox(key="cl_run").set_value(label)
    return press(at, "cl_submit_class_run")


def frame(at: AppTest, column: str):
    """The first table that has `column` (the board: "handle" and "rank"; the final board: "final rank";
    own submissions: "shown score"; the teacher's board of students: "training now")."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def has_frame(at: AppTest, column: str) -> bool:
    return any(column in d.value.columns for d in at.dataframe)


def texts(elements) -> str:
    return "\n".join(e.value for e in elements)


# -- a student ------------------------------------------------------------------------------------

def test_a_student_joins_sees_the_rules_and_their_secret_once_then_submits_a_run(runs):
    _, code, _ = make_class(budget=30_000, limit=3, ladder=0.5)
    at = join(code, "ada", runs=[runs["mlp"], runs["mlp2"]])
    seat = Seat.decode(at.session_state[class_ui.SEAT.key])
    assert seat.code == code and seat.handle == "ada"
    assert seat.secret in [c.value for c in at.code]  # shown once, with what it is for
    assert "submit from another browser" in texts(at.success)
    rules = texts(at.markdown)
    for words in ("MNIST", "at most 30,000 parameters", "MLP only", "at most 3 an hour", "Ladder",
                  "0.5 percentage points"):
        assert words in rules
    submit_run(at, "784-16-10")
    receipt = texts(at.success)
    assert "scored" in receipt and "your new best" in receipt and "2 submissions left this hour" in receipt
    ok(at.run())
    assert seat.secret not in [c.value for c in at.code]  # only once
    board = frame(at, "rank")
    assert list(board["handle"]) == ["ada"] and board["parameters"][0] == "12,730"  # as a room reads it
    assert len(frame(at, "shown score")) == 1


def test_refusals_are_told_beside_the_button_and_the_page_stays_usable(runs, class_models, monkeypatch):
    _, code, _ = make_class(budget=50_000, families=("mlp",), limit=2)
    at = join(code, "ben", runs=[runs["big"], runs["cnn"], runs["mlp"]])
    submit_run(at, "784-128-64-10")
    assert "109,386 parameters; this challenge allows at most 50,000" in texts(at.error)
    submit_run(at, "conv")
    assert "This model is a CNN; this challenge allows MLP only" in texts(at.error)
    # a model file: a Fashion-MNIST network, then a pickle (never unpickled: not a model file)
    ok(at.radio(key="cl_source").set_value("A model file").run())
    press(at, "cl_submit_class_file")
    assert "Choose a run or a model file to submit" in texts(at.error)
    for content, message in ((model_files.to_bytes(class_models["fashion"]), "this challenge is on MNIST"),
                             (b"\x80\x04K\x01.", "The uploaded file")):
        monkeypatch.setattr(class_ui, "uploaded", lambda _f, c=content: c)  # AppTest cannot upload
        press(at, "cl_submit_class_file")
        assert message in texts(at.error)
    ok(at.radio(key="cl_source").set_value("A run from Train").run())
    submit_run(at, "784-16-10")
    assert not at.error and "1 submission left this hour" in texts(at.success)
    submit_run(at, "784-16-10")
    submit_run(at, "784-16-10")
    assert "this challenge allows 2 an hour" in texts(at.error)
    assert has_frame(at, "rank")  # still there


def test_bad_codes_handles_and_links_are_told_where_they_were_typed():
    _, code, _ = make_class()
    at = open_class()
    for typed, handle, message in (("ABC", "ada", "A class code is 6 letters and digits"),
                                   ("ABCDEF", "ada", "No class has the code ABCDEF"),
                                   (code, " ", "A handle is 1 to 24 printable characters"),
                                   (code, "x" * 30, "A handle is 1 to 24 printable characters")):
        at.text_input(key="cl_code").set_value(typed)
        at.text_input(key="cl_handle").set_value(handle)
        press(at, "cl_join")
        assert message in texts(at.error)
    at.text_input(key="cl_code").set_value(code)
    at.text_input(key="cl_handle").set_value("Ada")
    press(at, "cl_join")
    assert not at.error
    other = open_class()
    other.text_input(key="cl_code").set_value(code)
    other.text_input(key="cl_handle").set_value("ADA")  # the same handle, whatever its case
    press(other, "cl_join")
    assert "The handle 'ADA' is taken" in texts(other.error)
    linked = AppTest.from_file(APP, default_timeout=TIMEOUT)
    linked.run()
    linked.query_params["class"] = "<script>"
    ok(linked.switch_page("pages/classroom.py").run())
    assert "is not a class code" in texts(linked.warning)


def test_a_secret_brings_a_student_back_in_another_browser_and_a_wrong_one_is_refused(runs):
    _, code, _ = make_class()
    first = join(code, "ada")
    secret = Seat.decode(first.session_state[class_ui.SEAT.key]).secret
    other = open_class(runs=[runs["mlp"]])
    other.text_input(key="cl_code").set_value(code)
    other.text_input(key="cl_handle").set_value("ada")
    other.text_input(key="cl_secret").set_value("not-it")
    press(other, "cl_rejoin")
    assert "do not match a student" in texts(other.error)
    other.text_input(key="cl_secret").set_value(secret)
    press(other, "cl_rejoin")
    submit_run(other)
    assert "your new best" in texts(other.success)
    press(other, "cl_leave")
    assert other.session_state[class_ui.SEAT.key] is None and other.button(key="cl_join")


# -- the teacher ----------------------------------------------------------------------------------

def test_the_teachers_board_shows_students_training_submissions_and_closing_reveals_the_final_order(runs):
    teacher, code, key = make_class()
    ada = join(code, "ada", runs=[runs["mlp"]])
    ben = join(code, "ben", runs=[runs["mlp2"]])
    submit_run(ada)
    submit_run(ben)
    store = ClassStore()
    seat = Seat.decode(ben.session_state[class_ui.SEAT.key])
    class_activity.started(store, code, "ben", seat.secret, "784-32-10 relu, adam lr 0.001")
    press(teacher, "cl_refresh")
    members = frame(teacher, "training now")
    assert list(members["handle"]) == ["ada", "ben"]
    assert members["training now"][0] == "—"
    assert re.fullmatch(r"784-32-10 relu, adam lr 0\.001 \(since \d\d:\d\d UTC\)", members["training now"][1])
    assert list(members["submitted"]) == [1, 1]
    assert members["best validation"][1] == "—"  # nothing finished on Train yet: a dash, not "None"
    chart = teacher.get("plotly_chart")[0].proto.spec
    assert '"ada"' in chart and '"ben"' in chart and "Pareto front" in chart
    board = frame(teacher, "rank")
    assert set(board["handle"]) == {"ada", "ben"}
    # remove ben's submission: a confirmation first
    teacher.selectbox(key="cl_rm_sub").set_value(next(s.id for s in store.submissions(code, key=key)
                                                      if s.handle == "ben"))
    ok(teacher.run())
    assert teacher.button(key="cl_rm_sub_go").disabled
    ok(teacher.checkbox(key="cl_confirm_sub").check().run())
    press(teacher, "cl_rm_sub_go")
    assert list(frame(teacher, "rank")["handle"]) == ["ada"]
    submit_run(ben)  # ben submits again; then the class closes
    press(teacher, "cl_refresh")
    ok(teacher.checkbox(key="cl_confirm_close").check().run())
    press(teacher, "cl_close")
    final = frame(teacher, "final rank")
    assert list(final["final rank"]) == [1, 2]
    assert all(m in ("▲1", "▼1", "=") for m in final["moved"])
    ok(ada.run())
    assert "closed this class" in texts(ada.info) and "private score" in frame(ada, "final rank")
    assert not [b for b in ada.button if b.key == "cl_submit_class_run"]  # no more submissions


def test_a_wrong_key_is_refused_and_the_key_never_reaches_the_address():
    _, code, key = make_class()
    at = open_class("the teacher")
    at.text_input(key="cl_t_code").set_value(code)
    at.text_input(key="cl_key").set_value("wrong")
    press(at, "cl_open")
    assert "That is not the teacher's key" in texts(at.error)
    at.text_input(key="cl_t_code").set_value(code)
    at.text_input(key="cl_key").set_value(key)
    press(at, "cl_open")
    assert at.session_state["cl_teacher"] == (code, key) and at.dataframe is not None
    assert key not in str(dict(at.query_params)) and at.session_state["cl_key"] == ""


def test_one_class_never_shows_another_classes_students_or_submissions(runs):
    teacher_a, code_a, key_a = make_class("Class A")
    teacher_b, code_b, key_b = make_class("Class B")
    ada = join(code_a, "ada", runs=[runs["mlp"]])
    submit_run(ada)
    press(teacher_b, "cl_refresh")
    assert not has_frame(teacher_b, "rank")
    assert "No students yet" in texts(teacher_b.caption)
    ben = join(code_b, "ben")
    assert "No submissions yet" in texts(ben.caption)
    # ada's seat is of class A: her secret opens nothing in class B
    secret = Seat.decode(ada.session_state[class_ui.SEAT.key]).secret
    other = open_class()
    other.text_input(key="cl_code").set_value(code_b)
    other.text_input(key="cl_handle").set_value("ada")
    other.text_input(key="cl_secret").set_value(secret)
    press(other, "cl_rejoin")
    assert "do not match a student of class" in texts(other.error)
    with pytest.raises(Exception, match="That is not the teacher's key"):
        class_activity.activity(ClassStore(), code_b, key_a)


def test_train_offers_submit_to_the_class_beside_the_model_file(runs):
    _, code, key = make_class("Year 10 B")
    at = join(code, "ada")
    at.switch_page("pages/train.py").run()
    ok(at)
    at.text_input(key="tr_hidden").set_value("16")
    at.text_input(key="tr_activation").set_value("relu")
    press(at, "tr_use")
    at.slider(key="tr_epochs").set_value(1)
    at.select_slider(key="tr_batch").set_value(512)
    press(at, "tr_train")
    assert at.session_state["train_job"].wait(120)
    ok(at.run())
    submit = at.button(key="cl_submit_train")
    assert submit.label == "Submit to Year 10 B"
    press(at, "cl_submit_train")
    assert "your new best" in texts(at.success)
    doing = class_activity.activity(ClassStore(), code, key)["ada"]
    assert doing.training is None and doing.validation > 0.8 and doing.parameters == 12_730


def test_a_students_sweep_on_explore_is_saved_in_their_class_and_drawn_on_the_class_map():
    teacher, code, _ = make_class()
    other_teacher, _, _ = make_class("Class B")
    at = join(code, "ada")
    for k, v in dict(depths="0", act="relu", seeds="1", epochs="1", images="1000").items():
        at.query_params[k] = v
    ok(at.switch_page("pages/explore.py").run())
    press(at, "ex_start")
    assert at.session_state["ex_sweep"].wait(180)
    ok(at.run())
    saved = at.session_state["ex_shown"]
    assert set(class_ui.sweeps().owners(saved).values()) == {code}
    ok(teacher.toggle(key="cl_live").set_value(True).run())  # the projector's board reads the class itself
    assert any("architecture map" in c.proto.spec for c in teacher.get("plotly_chart"))
    ok(other_teacher.run())
    assert not any("architecture map" in c.proto.spec for c in other_teacher.get("plotly_chart"))


def test_bad_challenge_settings_are_told_beside_set_and_a_broken_seat_leaves_the_page_usable(runs):
    teacher, code, _ = make_class()
    for field, value, message in (("cl_r_budget", 0.0, "The parameter budget must be a whole number"),
                                  ("cl_r_limit", 2.5, "The submission limit must be a whole number"),
                                  ("cl_r_ladder", 11.0, "The Ladder's step is in percentage points")):
        teacher.number_input(key=field).set_value(value)
        press(teacher, "cl_r_set")
        assert message in texts(teacher.error)
        good = {"cl_r_budget": 50_000.0, "cl_r_limit": 5.0}.get(field, 0.0)
        teacher.number_input(key=field).set_value(good)
    teacher.multiselect(key="cl_r_families").set_value([])
    press(teacher, "cl_r_set")
    assert "The families allowed are mlp, cnn or mlp,cnn" in texts(teacher.error)
    # a seat the browser kept for a class that does not exist (a cookie edited by hand)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state[class_ui.SEAT.key] = Seat("ABCDEF", "ada", "not-a-secret").encode()
    at.run()
    ok(at.switch_page("pages/classroom.py").run())
    assert "No class has the code ABCDEF" in texts(at.error)
    press(at, "cl_leave")
    assert at.button(key="cl_join")  # back to joining


def test_a_browser_that_sends_its_seat_cookie_is_back_in_its_class_and_a_forged_one_is_ignored(monkeypatch):
    from types import SimpleNamespace

    import streamlit

    _, code, _ = make_class()
    first = join(code, "Zoë")  # any printable handle fits the cookie (base64url)
    kept = first.session_state[class_ui.SEAT.key]
    assert any(f"mnistlab_class={kept};" in e.proto.body for e in first.get("html"))  # written by keep()
    for sent, back in ((kept, True), ("x'; alert(1); '", False), (f"{code}.!!.secret", False)):
        monkeypatch.setattr(streamlit, "context", SimpleNamespace(cookies={"mnistlab_class": sent}))
        keys = [b.key for b in open_class().button]
        assert ("cl_leave" in keys) == back and ("cl_join" in keys) != back
