"""Class: a teacher's class with one challenge, and its board. A student joins with the class code and
a handle, and submits a network trained on Train (or a model file); the teacher makes the class, sets
the challenge, and watches the class's board, chart and architecture map on the projector.

`?class=K7MQ2P` fills in a class code to join. The teacher's key lives in this session only.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, time, timedelta

import streamlit as st

import class_ui
import lab_ui
from mnistlab import challenge as challenges
from mnistlab import class_plots, class_view, model_files, sweep_plots, sweep_results
from mnistlab.challenge import Challenge
from mnistlab.class_view import Seat
from mnistlab.classes import check_code
from mnistlab.dataset import DATASETS
from mnistlab.errors import LabError

lab_ui.entry_guard()

ss = st.session_state
CODE_PARAM = "class"
LIVE_S = 15  # the teacher's board, read again this often when asked to
BIG_CODE = ("<div class='lab-class-code' style='font: 700 clamp(44px, 5.5vw, 120px)/1.1 ui-monospace, "
            "monospace; letter-spacing: 0.12em; color: #111'>{code}</div>")
PERCENT = ("public score", "private score", "shown score", "best validation", "best score")
WHOLE = ("parameters", "its size")
NOT_YET = "—"  # a student with no training or no submission yet


def big_code(code: str) -> None:
    """The class code, large enough to read from the back of a room (six letters of ALPHABET only)."""
    st.html(BIG_CODE.format(code=check_code(code)))


def _cell(name: str, value):
    if name in PERCENT:
        return NOT_YET if value is None else f"{value:.2f}%"
    if name in WHOLE:
        return NOT_YET if value is None else f"{value:,}"
    return value


def table(rows: list[dict], key: str) -> None:
    """Scores as percentages and sizes with thousands separators, a dash where there is none yet (not
    "None"); the long "training now" column wraps at a medium width so the table fits at 1280 px."""
    shown = [{name: _cell(name, value) for name, value in row.items()} for row in rows]
    config = {name: st.column_config.TextColumn(name) for name in (*PERCENT, *WHOLE)}
    config["training now"] = st.column_config.TextColumn("training now", width="medium")
    st.dataframe(shown, hide_index=True, width="stretch", column_config=config, key=key)


# -- a student ------------------------------------------------------------------------------------

def join() -> None:
    ss.pop("cl_join_error", None)
    try:
        code = check_code(ss.get("cl_code", ""))
        secret = class_ui.store().join(code, ss.get("cl_handle", ""))
        class_ui.take_seat(Seat(code, _shown_handle(ss.get("cl_handle", "")), secret))
        ss["cl_new_secret"] = secret
    except LabError as e:
        ss["cl_join_error"] = str(e)


def rejoin() -> None:
    """Back into a class from another browser, with the secret shown when the handle joined."""
    ss.pop("cl_rejoin_error", None)
    try:
        code, secret = check_code(ss.get("cl_code", "")), "".join(ss.get("cl_secret", "").split())
        handle = class_ui.store().check_student(code, ss.get("cl_handle", ""), secret)  # as it joined
        class_ui.take_seat(Seat(code, handle, secret))
    except LabError as e:
        ss["cl_rejoin_error"] = str(e)


def _shown_handle(handle: str) -> str:
    from mnistlab.classes import check_handle

    return check_handle(handle)[0]


def join_form() -> None:
    linked = st.query_params.get(CODE_PARAM)
    if linked is not None and "cl_code" not in ss:
        ss["cl_code"] = linked[:40]
    st.subheader("Join a class")
    st.caption("Your teacher gives you the class code. Choose a handle: a name the board shows (no e-mail, "
               "no password).")
    c = st.columns([1, 1, 2])
    c[0].text_input("Class code", key="cl_code", max_chars=40, placeholder="K7MQ2P")
    c[1].text_input("Your handle", key="cl_handle", max_chars=60, placeholder="e.g. ada")
    c[0].button("Join", key="cl_join", type="primary", icon=":material/login:", on_click=join)
    if "cl_join_error" in ss:
        st.error(ss["cl_join_error"], icon=":material/error:")
    elif linked is not None and ss.get("cl_code") == linked[:40]:
        try:
            check_code(linked)
        except LabError as e:
            st.warning(f"The link's class={linked[:40]!r} is not a class code: {e}",
                       icon=":material/link_off:")
    with st.expander("Joined already, in another browser?"):
        st.text_input("Your secret", key="cl_secret", type="password", max_chars=120,
                      help="The secret shown when you joined: with the class code and your handle above, it "
                           "lets you submit from this browser too.")
        st.button("Continue in this browser", key="cl_rejoin", on_click=rejoin)
        if "cl_rejoin_error" in ss:
            st.error(ss["cl_rejoin_error"], icon=":material/error:")


def runs_to_submit() -> dict:
    return {lab_ui.run_label(i, r): r for i, r in enumerate(ss.get("runs", []), 1)}


def student(mine: Seat) -> None:
    store = class_ui.store()
    try:
        info = store.info(mine.code)
        own = class_ui.own_submissions(mine)
    except LabError as e:
        st.error(f"{e} Leave this class to join another.", icon=":material/error:")
        st.button("Leave the class", key="cl_leave", on_click=class_ui.leave)
        return
    st.header(class_view.plain(info.name))
    st.caption(f"Class {info.code} · you are **{class_view.plain(mine.handle)}** · {info.members} "
               f"student{'s' * (info.members != 1)}")
    if "cl_new_secret" in ss:
        st.success(f"You joined as **{class_view.plain(mine.handle)}**. Your secret is below, shown only "
                   f"now: this browser keeps it, and with it (and the class code and your handle) you can "
                   f"submit from another browser. Write it down.", icon=":material/key:")
        st.code(ss.pop("cl_new_secret"), language=None)
    if info.closed:
        st.info(f"The teacher closed this class on {info.closed:%Y-%m-%d %H:%M} UTC: the board below "
                f"shows the final order.", icon=":material/lock:")
    rules = info.challenge
    rules_col, submit_col = st.columns([1.3, 1], gap="large")
    with rules_col:
        if rules is None:
            st.info("The teacher has not set the challenge yet.", icon=":material/hourglass_empty:")
        else:
            st.subheader("The challenge")
            st.markdown("\n".join(f"- {line}" for line in class_view.rules(rules)))
    with submit_col:
        if rules is not None and info.closed is None:
            submit_form()
    board = store.board(mine.code)
    st.subheader("Final board" if board.closed else "Board")
    if board.standings:
        table(class_view.board_rows(board), "cl_board")
    else:
        st.caption("No submissions yet.")
    st.subheader("Your submissions")
    if own:
        table(class_view.submission_rows(own), "cl_own")
    else:
        st.caption("None yet.")
    st.button("Leave the class", key="cl_leave", icon=":material/logout:", on_click=class_ui.leave,
              help="This browser forgets the class; your submissions stay. Your secret brings you back.")


def submit_form() -> None:
    st.subheader("Submit")
    runs = runs_to_submit()
    source = st.radio("What to submit", ["A run from Train", "A model file"], key="cl_source",
                      horizontal=True)
    if source == "A run from Train":
        if not runs:
            st.caption("No runs in this session yet: train a network on Train, then submit it here (or from "
                       "Train's Model file tab).")
            st.page_link("pages/train.py", label="Train", icon=":material/model_training:")
            return
        labels = list(runs)
        st.selectbox("Run", labels, index=len(labels) - 1, key="cl_run")
        class_ui.submit_button(st, "class_run", "Submit this run",
                               lambda: class_ui.saved_run(runs[ss["cl_run"]]) if ss.get("cl_run") in runs
                               else None, type="primary")
    else:
        st.file_uploader("A .safetensors model file saved by MNIST Lab", type=["safetensors"],
                         key="cl_upload", max_upload_size=math.ceil(model_files.MAX_FILE_BYTES / 2**20))
        class_ui.submit_button(st, "class_file", "Submit this file",
                               lambda: class_ui.uploaded(ss.get("cl_upload")), type="primary")


# -- the teacher --------------------------------------------------------------------------------------

def create() -> None:
    ss.pop("cl_create_error", None)
    try:
        made = class_ui.store().create(ss.get("cl_name", ""))
        ss["cl_teacher"] = (made.code, made.key)
        ss["cl_new_key"] = made.key
        class_ui.forget_teacher_data()
    except LabError as e:
        ss["cl_create_error"] = str(e)


def open_teacher() -> None:
    ss.pop("cl_open_error", None)
    try:
        code, key = check_code(ss.get("cl_t_code", "")), ss.get("cl_key", "").strip()
        class_ui.store().check_key(code, key)
        ss["cl_teacher"] = (code, key)
        class_ui.forget_teacher_data()
    except LabError as e:
        ss["cl_open_error"] = str(e)
    ss["cl_key"] = ""  # the typed key leaves the field; it is kept only as this session's


def teacher_login() -> None:
    make_col, open_col = st.columns(2, gap="large")
    with make_col:
        st.subheader("Make a class")
        st.text_input("Class name", key="cl_name", max_chars=120, placeholder="Year 10 B")
        st.button("Make the class", key="cl_create", type="primary", icon=":material/add:", on_click=create)
        if "cl_create_error" in ss:
            st.error(ss["cl_create_error"], icon=":material/error:")
    with open_col:
        st.subheader("Open your class")
        st.text_input("Class code", key="cl_t_code", max_chars=40, placeholder="K7MQ2P")
        st.text_input("Teacher's key", key="cl_key", type="password", max_chars=120,
                      help="Shown once when the class was made. Kept in this browser tab only, never in the "
                           "address.")
        st.button("Open the teacher's view", key="cl_open", icon=":material/lock_open:",
                  on_click=open_teacher)
        if "cl_open_error" in ss:
            st.error(ss["cl_open_error"], icon=":material/error:")


def set_challenge(code: str, key: str) -> None:
    ss.pop("cl_rules_error", None)
    try:
        ends = None
        if ss.get("cl_r_ends_on"):
            ends = datetime.combine(ss["cl_r_end_date"], ss["cl_r_end_time"], tzinfo=UTC)
        ladder = lab_ui.typed(ss.get("cl_r_ladder", 0.0))
        rules = Challenge(ss["cl_r_dataset"], lab_ui.typed(ss["cl_r_budget"]), ss["cl_r_families"] or "",
                          lab_ui.typed(ss["cl_r_limit"]), ends, ladder or None)
        class_ui.store().set_challenge(code, key, rules)
        ss["cl_rules_saved"] = True
    except LabError as e:
        ss["cl_rules_error"] = str(e)


def challenge_form(code: str, key: str, rules: Challenge | None) -> None:
    """The challenge's settings, filled with the class's current ones."""
    current = rules or Challenge()
    ss.setdefault("cl_r_dataset", current.dataset)
    ss.setdefault("cl_r_budget", float(current.budget))
    ss.setdefault("cl_r_families", list(current.families))
    ss.setdefault("cl_r_limit", float(current.limit))
    ss.setdefault("cl_r_ladder", float(current.ladder or 0))
    ss.setdefault("cl_r_ends_on", current.ends is not None)
    later = current.ends or (datetime.now(UTC) + timedelta(days=7)).replace(minute=0, second=0, microsecond=0)
    ss.setdefault("cl_r_end_date", later.date())
    ss.setdefault("cl_r_end_time", later.time().replace(tzinfo=None) if later else time(17))
    c = st.columns(3)
    c[0].selectbox("Data set", list(DATASETS), key="cl_r_dataset", format_func=lambda n: DATASETS[n].title)
    c[1].number_input("Parameter budget", key="cl_r_budget", step=1000.0, format="%g",
                      help=f"The most parameters a network may have (1 to {challenges.MAX_BUDGET:,}).")
    c[2].multiselect("Families allowed", list(challenges.FAMILIES), key="cl_r_families",
                     format_func=str.upper)
    c = st.columns(3)
    c[0].number_input("Submissions an hour, each", key="cl_r_limit", step=1.0, format="%g")
    c[1].number_input("Ladder step (points; 0: off)", key="cl_r_ladder", step=0.5, format="%g",
                      help="A student's shown score changes only when it beats their best by this many "
                           "percentage points: probing the board gains nothing.")
    c[2].checkbox("It ends at a set time (UTC)", key="cl_r_ends_on")
    if ss["cl_r_ends_on"]:
        c[2].date_input("End date", key="cl_r_end_date")
        c[2].time_input("End time (UTC)", key="cl_r_end_time")
    st.button("Set the challenge" if rules is None else "Change the challenge", key="cl_r_set",
              type="primary", on_click=set_challenge, args=(code, key))


def challenge_outcome() -> None:
    """What "Set the challenge" did, under the expander: it closes once a challenge is set, and the
    browser may redraw it closed, which would hide a message inside it."""
    if "cl_rules_error" in ss:
        st.error(ss["cl_rules_error"], icon=":material/error:")
    elif ss.pop("cl_rules_saved", False):
        st.success("The challenge is set.", icon=":material/check:")


def teacher_action(what: str, code: str, key: str, *args) -> None:
    ss.pop("cl_action_error", None)
    class_ui.forget_teacher_data()
    try:
        getattr(class_ui.store(), what)(code, key, *args)
        ss["cl_action_done"] = {"remove_submission": f"Submission {args[0] if args else ''} removed.",
                                "remove_student": f"{class_view.plain(args[0]) if args else ''} removed from "
                                                  f"the class.",
                                "close": "The class is closed: the board shows the final order."}[what]
        for box in ("cl_confirm_sub", "cl_confirm_student", "cl_confirm_close"):
            ss[box] = False
    except LabError as e:
        ss["cl_action_error"] = str(e)


def forget_teacher() -> None:
    for k in ("cl_teacher", "cl_new_key", "cl_t_cache"):
        ss.pop(k, None)


def teacher(code: str, key: str) -> None:
    store = class_ui.store()
    try:
        info = store.info(code)
        members, subs, _ = class_ui.teacher_data(code, key)
    except LabError as e:
        st.error(str(e), icon=":material/error:")
        st.button("Back", key="cl_forget", on_click=forget_teacher)
        return
    head, code_col = st.columns(2, vertical_alignment="center")
    with head:
        st.header(class_view.plain(info.name))
        st.markdown(f"**Students join on the Class page with this code** · {info.members} student"
                    f"{'s' * (info.members != 1)} · "
                    + ("closed" if info.closed else "open"))
    with code_col:
        big_code(code)
    if "cl_new_key" in ss:
        st.warning("**The teacher's key, shown only now.** Keep it (write it down, or in a password "
                   "manager): with the class code it opens this view from any browser. It is stored only as "
                   "a hash, so it cannot be shown again.", icon=":material/key:")
        st.code(ss["cl_new_key"], language=None)
        st.button("I have kept the key", key="cl_key_kept", on_click=lambda: ss.pop("cl_new_key", None))
    if not info.closed:
        with st.expander("The challenge", expanded=info.challenge is None, icon=":material/flag:"):
            if info.challenge is not None:
                st.markdown("\n".join(f"- {line}" for line in class_view.rules(info.challenge)))
            challenge_form(code, key, info.challenge)
        challenge_outcome()
    elif info.challenge is not None:
        st.caption(info.challenge.label())

    title, refresh, every = st.columns([3, 1, 1], vertical_alignment="bottom")
    title.subheader("Teacher's board")
    refresh.button("Refresh", key="cl_refresh", icon=":material/refresh:", width="stretch",
                   on_click=class_ui.forget_teacher_data,
                   help="Read the class again: new students, trainings and submissions.")
    live = every.toggle(f"Every {LIVE_S} s", key="cl_live",
                        help=f"For the projector: the board reads the class again every {LIVE_S} seconds.")
    st.fragment(run_every=LIVE_S if live else None)(board_view)(code, key, live)
    if "cl_action_error" in ss:
        st.error(ss["cl_action_error"], icon=":material/error:")
    elif "cl_action_done" in ss:
        st.success(ss.pop("cl_action_done"), icon=":material/check:")
    with st.expander("Submissions, and removing", icon=":material/delete:"):
        if subs:
            table(class_view.submission_rows(subs, teacher=True), "cl_t_subs")
        c = st.columns(2, gap="large")
        live = [s.id for s in subs if not s.removed]
        if live:
            c[0].selectbox("Submission", live, key="cl_rm_sub",
                           format_func=lambda i: next(f"{s.id}: {s.handle}, {s.architecture}"
                                                      for s in subs if s.id == i))
            c[0].checkbox("Yes, take it off the board", key="cl_confirm_sub")
            c[0].button("Remove the submission", key="cl_rm_sub_go", disabled=not ss.get("cl_confirm_sub"),
                        on_click=teacher_action, args=("remove_submission", code, key, ss["cl_rm_sub"]))
        here = [m.handle for m in members if not m.removed]
        if here:
            c[1].selectbox("Student", here, key="cl_rm_student")
            c[1].checkbox("Yes, remove the student (their submissions leave the board)",
                          key="cl_confirm_student")
            c[1].button("Remove the student", key="cl_rm_student_go",
                        disabled=not ss.get("cl_confirm_student"), on_click=teacher_action,
                        args=("remove_student", code, key, ss["cl_rm_student"]))
    if not info.closed:
        with st.expander("Close the class", icon=":material/lock:"):
            st.caption("Closing ends the challenge: no more students or submissions, and the board shows the "
                       "final order by the private score, with how each rank moved.")
            st.checkbox("Yes, close the class now", key="cl_confirm_close")
            st.button("Close the class", key="cl_close", disabled=not ss.get("cl_confirm_close"),
                      on_click=teacher_action, args=("close", code, key))
    st.button("Leave the teacher's view", key="cl_forget", icon=":material/logout:", on_click=forget_teacher,
              help="This tab forgets the key; the class stays.")


def board_view(code: str, key: str, live: bool) -> None:
    """Who is in the class and what each trains, the board, every submission's chart, the class's map:
    redrawn alone every LIVE_S seconds when `live`."""
    if live:
        class_ui.forget_teacher_data()
    try:
        board = class_ui.store().board(code)  # the same for everyone with the code: no key to check
        members, subs, doing = class_ui.teacher_data(code, key)
    except LabError as e:
        st.error(str(e), icon=":material/error:")
        return
    if members:
        table(class_view.member_rows(members, doing), "cl_members")
    else:
        st.caption("No students yet: they join on the Class page with the code above.")
    st.markdown("**Final order, by the private score**" if board.closed else "**Board, by public score**")
    if board.standings:
        table(class_view.board_rows(board), "cl_t_board")
        if board.closed:
            st.caption("▲ moved up, ▼ moved down from the public rank: the private part is the images nobody "
                       "could tune to.")
    if any(not s.removed for s in subs):
        lab_ui.plot(class_plots.submissions_chart(subs, title="Every submission: public score against size",
                                                  height=440), key="cl_chart")
        st.caption("Each point is one submitted network, a colour per student; the dotted line is the "
                   "class's Pareto front (ringed): no network scored higher with as few parameters.")
    else:
        st.caption("No submissions yet.")
    architecture_map(code)


def architecture_map(code: str) -> None:
    """Every trial of the sweeps the class's students ran on Explore while in the class."""
    db_ = class_ui.sweeps()
    records = [r for s in db_.sweeps(class_code=code) for r in db_.records(s["id"])]
    rows = sweep_results.summarize(records)
    if rows:
        lab_ui.plot(sweep_plots.accuracy_vs_parameters(rows, title="The class's architecture map: every "
                                                                   "network its sweeps trained"),
                    key="cl_map")
        st.caption("From the sweeps the students ran on Explore while in this class; placed by validation "
                   "accuracy, the dotted line its Pareto front.")


st.title("Class")
lab_ui.require_database()  # classes, their boards and submissions are kept there
role = st.radio("I am", ["a student", "the teacher"], key="cl_role", horizontal=True,
                label_visibility="collapsed")
if role == "a student":
    mine = class_ui.seat()
    if mine is None:
        join_form()
    else:
        student(mine)
elif "cl_teacher" in ss:
    teacher(*ss["cl_teacher"])
else:
    teacher_login()
