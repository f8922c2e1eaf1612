"""A classroom over Streamlit's own protocol: 20 simulated students while one session trains.

Each student is a real server session (bench/loadgen.py speaks the websocket protocol a browser
speaks): it opens the app, browses Dataset batches, edits Build's layer sizes, draws on Draw (the
canvas value a real stroke in Chromium sent; the teacher's saved network predicts it) and opens
Train. Every action must get its run's `script_finished`, with no exception box or error on any
page, and show what the student asked for. Times are printed, not asserted: `python -m
bench.classroom` measures them.

The students think 1-2.5 s between actions (a classroom's 2-5 s, twice as fast) for 15 s: as many
actions as a classroom makes in 30 s, at twice its rate, in half the suite's time.
"""

from __future__ import annotations

import pytest

from bench import loadgen

STUDENTS, SECONDS, THINK_S = 20, 15, (1.0, 2.5)
MIN_ACTIONS = 120  # about 170 are made (20 students, 15 s, 1.75 s apart); a classroom's 30 s at 2-5 s

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    work = tmp_path_factory.mktemp("load")
    (work / "models").mkdir()
    loadgen.save_teacher_model(work / "models")  # every drawing is predicted with it
    srv = loadgen.Server(work / "streamlit.log", env={"MNISTLAB_MODELS": str(work / "models")}).start()
    yield srv
    srv.stop()


def test_a_classroom_of_20_gets_every_page_without_an_error_while_one_trains(server):
    result = loadgen.run(loadgen.classroom(server.url, STUDENTS, SECONDS, THINK_S, sample=server.rss_mb))
    print()
    print(loadgen.report(result))
    assert result["training_started"]
    assert not result["errors"], "\n".join(result["errors"])
    assert result["n"] == result["actions"], "an action got no script_finished"
    # Every student did every kind of thing at least once (their rounds start at different steps).
    kinds = set(result["by_action"])
    assert {"click Next batch", "set fc1 units", "draw a stroke", "open Train", "open Build"} <= kinds
    assert result["actions"] >= MIN_ACTIONS
    assert result["teacher_progress_runs"] > 0, "the training run's progress never refreshed"
    assert "Traceback (most recent call last)" not in server.log()


def test_the_canvas_value_is_one_stroke_the_server_preprocesses(server):
    """The fixture is a real browser's canvas value: the Draw page finds a digit in it."""

    async def draw_once() -> loadgen.Student:
        student = loadgen.Student(server.url, 0, [])
        await student.open()
        await student.goto("Draw")
        action = await student.draw(loadgen.canvas_stroke())
        await student.close()
        assert action.error is None, action.error
        return student

    student = loadgen.run(draw_once())
    assert student.shows("What the network sees") and student.shows("MNIST preprocessing")
    assert student.shows("teacher: 784-128-64-10 relu")  # the saved network's prediction is shown
