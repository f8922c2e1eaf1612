"""A class in a real browser: the teacher makes it and sets its challenge, a student joins from the
class's link in another browser, trains briefly on Train and submits from the Model file tab; the
teacher's board shows the submission. Screenshots of both roles at 1280×720 and 1920×1080."""

import re

from playwright.sync_api import expect

from mnistlab import class_activity, db
from mnistlab.classes import ClassStore
from tests.e2e import conftest
from tests.e2e.conftest import TIMEOUT_MS, assert_no_exception, goto_page, open_app, rerun, screenshot
from tests.e2e.test_pages import choose_opened

SIZES = [(1280, 720), (1920, 1080)]


def type_in(page, label: str, text: str) -> None:
    box = page.get_by_label(label, exact=True)
    with rerun(page):
        box.fill(text)
        box.press("Enter")


def press(page, name: str) -> None:
    with rerun(page):
        page.get_by_role("button", name=name, exact=True).click()


def shots(page, name: str) -> None:
    """What the room sees first (the viewport) and the whole page, at each projector size."""
    page.mouse.move(1, 1)  # no tooltip in the picture
    page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollTo(0, 0)")  # as a room sees it
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(400)  # Plotly redraws at the new width
        conftest.SCREENSHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(conftest.SCREENSHOTS / f"{name}-{width}-top.png"))
        screenshot(page, f"{name}-{width}")


def test_a_teacher_makes_a_class_a_student_submits_a_train_run_and_the_board_shows_it(
        page, open_page, base_url, server, class_models):
    teacher = page
    teacher.set_viewport_size({"width": 1280, "height": 720})
    open_app(teacher, base_url, "classroom")
    with rerun(teacher):
        teacher.get_by_text("the teacher", exact=True).click()
    type_in(teacher, "Class name", "Year 10 B")
    press(teacher, "Make the class")
    code = teacher.locator(".lab-class-code").inner_text().strip()
    assert re.fullmatch(r"[A-Z2-9]{6}", code)
    expect(teacher.get_by_text("The teacher's key, shown only now.")).to_be_visible()
    shots(teacher, "class-teacher-new")
    type_in(teacher, "Parameter budget", "200000")  # the lesson's network (109,386) fits
    press(teacher, "Set the challenge")
    expect(teacher.get_by_text("The challenge is set.")).to_be_visible()
    press(teacher, "I have kept the key")
    assert_no_exception(teacher)

    # A few classmates submit from elsewhere (the command line's store, the same database)
    store = ClassStore(db.url(server.env["MNISTLAB_MODELS"]))
    kept: dict[str, str] = {}  # each classmate's secret
    for handle, model in (("ben", "mlp2"), ("chloe", "mlp"), ("ben", "mlp")):
        receipt = store.submit(code, handle, class_models[model], secret=kept.get(handle))
        kept.setdefault(handle, receipt.secret)
    class_activity.started(store, code, "chloe", kept["chloe"], "784-64-10 relu, adam lr 0.001, batch 64")

    student = open_page()
    student.set_viewport_size({"width": 1280, "height": 720})
    open_app(student, base_url, f"classroom?class={code}")  # the class's link fills in its code
    expect(student.get_by_label("Class code", exact=True)).to_have_value(code)
    type_in(student, "Your handle", "ada")
    press(student, "Join")
    expect(student.get_by_text(re.compile("Your secret is below, shown only now"))).to_be_visible()
    for _ in range(50):  # the browser keeps the seat (code, handle, secret) in a cookie of its own
        kept = [c["value"] for c in student.context.cookies() if c["name"] == "mnistlab_class"]
        if kept:
            break
        student.wait_for_timeout(100)
    assert kept and kept[0].startswith(code + ".")
    expect(student.get_by_text("at most 200,000 parameters.")).to_be_visible()
    assert_no_exception(student)
    shots(student, "class-student-joined")

    goto_page(student, "Train")
    student.get_by_text("Generalization settings").click()
    choose_opened(student, "Training images", "1,000")
    epochs = student.locator('[data-testid="stSlider"]').filter(has_text="Epochs").get_by_role("slider")
    with rerun(student):
        epochs.focus()
        epochs.press("Home")
    press(student, "Train")
    run = student.get_by_text(re.compile(r"^Run 1: 784-128-64-10 relu")).first
    expect(run).to_be_visible(timeout=300_000)
    conftest.wait_for_app(student)
    student.get_by_role("tab", name="Model file").click()
    press(student, "Submit to Year 10 B")
    expect(student.get_by_text(re.compile(r"Submission \d+ scored"))).to_be_visible()
    expect(student.get_by_text(re.compile(r"4 submissions left this hour"))).to_be_visible()
    assert_no_exception(student)

    press(teacher, "Refresh")
    members = teacher.locator('[data-testid="stDataFrame"]').first
    expect(members).to_be_visible()
    chart = teacher.locator(".js-plotly-plot").filter(has_text="Pareto front")
    expect(chart).to_be_visible(timeout=TIMEOUT_MS)
    board = [s for s in store.board(code).standings]
    assert {s.handle for s in board} == {"ada", "ben", "chloe"}
    assert_no_exception(teacher)
    shots(teacher, "class-teacher-board")

    goto_page(student, "Class")
    assert_no_exception(student)
    shots(student, "class-student-board")

    teacher.get_by_text("Close the class", exact=True).first.click()
    with rerun(teacher):
        teacher.get_by_text("Yes, close the class now").click()
    press(teacher, "Close the class")
    expect(teacher.get_by_text("Final order, by the private score")).to_be_visible()
    assert_no_exception(teacher)
    shots(teacher, "class-teacher-closed")

