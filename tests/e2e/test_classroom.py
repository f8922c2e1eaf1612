"""A classroom on one server: students browse, build and draw at once while another session trains.

Ten (MNISTLAB_CLASSROOM_STUDENTS) browser contexts in one headless Chromium, each its own Streamlit
session. Every student's page must update without an error; the test prints how long page updates
took (p50/p95) with no training and while a run trains, and the server's memory before and after.
`python -m bench.classroom` runs the same scenario with a printed report (more students if asked).
"""

from __future__ import annotations

import os
import re
import statistics
import time
from pathlib import Path

from conftest import TIMEOUT_MS, assert_no_exception, new_page, open_app, wait_for_app
from playwright.sync_api import expect
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from test_draw import draw

STUDENTS = int(os.environ.get("MNISTLAB_CLASSROOM_STUDENTS", "10"))
MEMORY_GROWTH_MB = 150 + 15 * STUDENTS  # sessions keep small networks; the data set is loaded once
TRAIN_TIMEOUT_MS = 600_000


def rss_mb(pid: int) -> float:
    """Resident memory of the server process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


class Clock:
    """When each script run of a page finished, as Streamlit's websocket says (script_finished)."""

    def __init__(self, page):
        self.finished: list[float] = []
        page.on("websocket", lambda ws: ws.on("framereceived", self._frame))

    def _frame(self, payload):
        if not isinstance(payload, bytes):
            return
        if ForwardMsg.FromString(payload).WhichOneof("type") == "script_finished":
            self.finished.append(time.monotonic())

    def first_after(self, t0: float) -> float:
        return next(t for t in self.finished if t >= t0) - t0


def all_at_once(pages, action) -> list[float]:
    """Starts `action` on every page before waiting for any: the server sees them together.
    Returns each page's update time (action to the end of the run it caused)."""
    started = []
    for page in pages:
        mark, t0 = page.runs.mark(), time.monotonic()
        action(page)
        started.append((page, mark, t0))
    times = []
    for page, mark, t0 in started:
        page.runs.wait(mark, TIMEOUT_MS)
        wait_for_app(page)
        assert_no_exception(page)
        times.append(page.finished.first_after(t0))
    return times


def nav(page, name: str) -> None:
    """Clicks a page's link in the sidebar (its label, without the icon's text)."""
    label = page.locator("[data-testid=\"stMarkdownContainer\"]").filter(
        has_text=re.compile(rf"^\s*{name}\s*$"))
    page.locator('[data-testid="stSidebarNavLink"]').filter(has=label).first.click()


def fc1_units(page, value: int) -> None:
    box = page.get_by_label("fc1 units", exact=True)
    box.fill(str(value))
    box.press("Enter")


def report(name: str, times: list[float]) -> str:
    q = statistics.quantiles(times, n=20) if len(times) > 1 else times * 19
    return f"{name:<34} n={len(times):<3} p50 {statistics.median(times) * 1000:7.0f} ms   " \
           f"p95 {q[18] * 1000:7.0f} ms"


def test_a_classroom_works_at_once_while_one_session_trains(browser, server):
    errors: list[str] = []
    log_start = len(server.log())
    warm = new_page(browser, errors)  # torch imported and MNIST loaded: the server's resting size
    open_app(warm, server.url)
    warm.context.close()
    rss_before = rss_mb(server.proc.pid)
    students = [new_page(browser, errors) for _ in range(STUDENTS)]
    teacher = new_page(browser, errors)
    for page in [*students, teacher]:
        page.finished = Clock(page)

    quiet = all_at_once(students + [teacher], lambda p: p.goto(f"{server.url}/dataset", wait_until="commit"))
    quiet += all_at_once(students, lambda p: p.get_by_role("button", name="Next batch").click())

    # The teacher starts a training run; the students carry on meanwhile.
    all_at_once([teacher], lambda p: nav(p, "Train"))
    teacher.get_by_role("button", name="Train", exact=True).click()
    busy = all_at_once(students, lambda p: p.get_by_role("button", name="Next batch").click())
    busy += all_at_once(students, lambda p: nav(p, "Build"))
    busy += all_at_once(students, lambda p: fc1_units(p, 100 + students.index(p)))
    busy += all_at_once(students, lambda p: nav(p, "Draw"))
    busy += all_at_once(students, lambda p: draw(p, [[(95, 60), (205, 60), (190, 110), (150, 190),
                                                        (125, 245)]]))
    all_at_once(students, lambda p: nav(p, "Build"))
    still_training = teacher.locator('[data-testid="stProgress"]').count() > 0
    for i, page in enumerate(students):  # each student sees their own network, not another's
        assert page.get_by_label("fc1 units", exact=True).input_value() == str(100 + i)

    accuracy = teacher.locator('[data-testid="stMetric"]').filter(has_text="Test accuracy")
    accuracy.locator('[data-testid="stMetricValue"]').wait_for(timeout=TRAIN_TIMEOUT_MS)
    wait_for_app(teacher)
    rss_after = rss_mb(server.proc.pid)
    for page in [*students, teacher]:
        page.context.close()

    print()
    print(report(f"{STUDENTS} students, nobody training", quiet))
    print(report(f"{STUDENTS} students, while one trains", busy))
    print(f"(the run was {'still' if still_training else 'no longer'} training when the students were done)")
    print(f"server memory: {rss_before:.0f} MB before, {rss_after:.0f} MB after "
          f"(+{rss_after - rss_before:.0f} MB; bound {MEMORY_GROWTH_MB} MB)")
    assert not errors, "errors in the browser consoles:\n" + "\n".join(errors)
    new_log = server.log()[log_start:]
    assert "Traceback (most recent call last)" not in new_log, new_log
    assert rss_after - rss_before < MEMORY_GROWTH_MB


def test_one_students_page_while_another_session_trains(browser, server):
    """Fairness with nothing else in the way: one student's "Next batch", alone and during a run."""
    errors: list[str] = []
    student, teacher = new_page(browser, errors), new_page(browser, errors)
    for page in (student, teacher):
        page.finished = Clock(page)
        open_app(page, server.url, "dataset")
    next_batch = student.get_by_role("button", name="Next batch")
    alone = [t for _ in range(8) for t in all_at_once([student], lambda p: next_batch.click())]

    all_at_once([teacher], lambda p: nav(p, "Train"))
    teacher.get_by_role("button", name="Train", exact=True).click()
    teacher.locator('[data-testid="stProgress"]').wait_for()  # the run is under way
    during = []
    while teacher.locator('[data-testid="stProgress"]').count() and len(during) < 30:
        during += all_at_once([student], lambda p: next_batch.click())
    if teacher.locator('[data-testid="stProgress"]').count():  # the server's one slot, free for the next test
        teacher.get_by_role("button", name="Stop").click()
        expect(teacher.locator('[data-testid="stProgress"]')).to_have_count(0)
    for page in (student, teacher):
        page.context.close()

    print()
    print(report("one student, nobody training", alone))
    print(report("one student, while another trains", during))
    assert not errors, "errors in the browser consoles:\n" + "\n".join(errors)
    assert len(during) >= 3, "the run ended before the student's pages could be timed"
