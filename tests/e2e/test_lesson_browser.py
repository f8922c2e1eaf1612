"""The Lesson page in a real browser: every /lesson?step=N, Previous/Next in the address bar, and
presenter mode as a teacher uses it on a projector (it hides the controls and survives a refresh)."""

import re

from playwright.sync_api import expect

from mnistlab import lesson, lesson_networks
from mnistlab.lesson_step import LessonValues
from tests.e2e.conftest import assert_no_exception, open_app, rerun, screenshot, wait_for_app

SIDEBAR = '[data-testid="stSidebar"]'


def heading(page):
    return page.locator('[data-testid="stMain"] h2').first


def test_every_step_renders_from_its_address(page, base_url):
    for number in range(1, lesson.N_STEPS + 1):
        open_app(page, base_url, f"lesson?step={number}")
        expect(heading(page)).to_have_text(re.compile(rf"^{number}\. {re.escape(lesson.step(number).title)}"))
        first_line = lesson.step(number).source().splitlines()[0]
        expect(page.locator('[data-testid="stCode"]').filter(has_text=first_line).first).to_be_visible()
        assert_no_exception(page)
        if number in (3, 13):
            expect(page.locator('[data-testid="stPlotlyChart"] .main-svg').first).to_be_visible()
            screenshot(page, f"lesson-step-{number}")


def test_next_and_previous_keep_the_step_in_the_address_bar(page, base_url):
    open_app(page, base_url, "lesson?step=4")
    with rerun(page):
        page.get_by_role("button", name="Next").first.click()
    expect(heading(page)).to_have_text(re.compile(r"^5\. "))
    page.wait_for_url(re.compile(r"/lesson\?step=5$"))
    with rerun(page):
        page.get_by_role("button", name="Previous").first.click()
    page.wait_for_url(re.compile(r"/lesson\?step=4$"))
    expect(page.locator(SIDEBAR)).to_be_visible()


def test_presenter_mode_hides_the_controls_and_survives_a_refresh(page, base_url):
    page.set_viewport_size({"width": 1920, "height": 1080})
    open_app(page, base_url, "lesson?step=5")
    expect(page.get_by_label("Hidden units (n_hidden)")).to_be_visible()
    screenshot(page, "lesson-step-5-1920")
    with rerun(page):
        page.get_by_text("Presenter mode", exact=True).click()
    page.wait_for_url(re.compile(r"step=5&present=1"))
    for shown in (False, True):  # as switched on, then after a refresh
        if shown:
            mark = page.runs.mark()
            page.reload()
            page.runs.wait(mark)
            wait_for_app(page)
        expect(heading(page)).to_have_text(re.compile(r"^5\. "))
        expect(page.locator(SIDEBAR)).to_be_hidden()
        expect(page.get_by_label("Hidden units (n_hidden)")).to_have_count(0)
        expect(page.get_by_text("Jupyter notebook", exact=True)).to_have_count(0)
        expect(page.get_by_role("button", name="Next").first).to_be_visible()
        size = page.locator('[data-testid="stCode"] code').first.evaluate("e => getComputedStyle(e).fontSize")
        assert float(size.removesuffix("px")) >= 22, size  # readable from the back of the room
    screenshot(page, "lesson-step-5-presenter-1920")
    with rerun(page):
        page.get_by_role("button", name="Next").first.click()
    page.wait_for_url(re.compile(r"step=6&present=1"))
    expect(page.locator(SIDEBAR)).to_be_hidden()
    with rerun(page):
        page.get_by_role("button", name="Leave presenter mode").click()
    page.wait_for_url(re.compile(r"/lesson\?step=6$"))
    expect(page.locator(SIDEBAR)).to_be_visible()


def test_presenter_mode_at_1280_by_800_from_a_bookmark(page, base_url):
    open_app(page, base_url, "lesson?step=13&present=1")
    expect(page.locator(SIDEBAR)).to_be_hidden()
    expect(page.locator('[data-testid="stSlider"]')).to_have_count(0)
    expect(page.locator('[data-testid="stPlotlyChart"] .main-svg').first).to_be_visible()
    assert_no_exception(page)
    screenshot(page, "lesson-step-13-presenter-1280")


def test_download_as_jupyter_notebook_gives_the_steps_with_the_visitors_values(page, base_url):
    import nbformat

    open_app(page, base_url, "lesson?step=5&units=64&seed=3")
    with page.expect_download() as download:
        page.get_by_role("button", name="Jupyter notebook").click()
    assert download.value.suggested_filename == "mnist-lab-lesson.ipynb"
    nb = nbformat.read(download.value.path(), as_version=4)
    nbformat.validate(nb)
    values = LessonValues(n_hidden=64, seed=3)
    code = [c.source for c in nb.cells if c.cell_type == "code"][1:]
    assert code == [s.source(values) for s in lesson_networks.STEPS]


def test_part_2_from_its_address_and_back_to_part_1(page, base_url):
    open_app(page, base_url, "lesson?part=2&step=7")
    expect(heading(page)).to_have_text(re.compile(r"^7\. Overfitting"))
    expect(page.locator('[data-testid="stPlotlyChart"] .main-svg').first).to_be_visible()
    expect(page.get_by_text(re.compile(r"^Lowest validation loss: 0\.\d{3}, at epoch \d+"))).to_be_visible()
    assert_no_exception(page)
    screenshot(page, "lesson-part-2-step-7")
    with rerun(page):
        page.get_by_text("Part 1: Neural networks in PyTorch", exact=True).click()
    expect(heading(page)).to_have_text(re.compile(r"^1\. Load MNIST"))
    page.wait_for_url(re.compile(r"/lesson\?step=1$"))
