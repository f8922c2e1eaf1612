"""Presenter mode on a projector's screen, 1280×720 and 1920×1080, every step: no line of code or of
a printout wraps, the step's figure is whole above the fold, and the text on it is as large as the
text beside it. Each step is photographed (the screen as the room sees it) for people to look at."""

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from mnistlab import lesson, lesson_convolutions, lesson_networks
from tests.e2e.conftest import TIMEOUT_MS, assert_no_exception, open_app, rerun, screenshot

SHOTS = Path(os.environ.get("MNISTLAB_SHOTS", "/tmp/shots/presenter"))
SIZES = [(1280, 720), (1920, 1080)]
MIN_CODE_PX = 16  # code legible from the back of a room
WHOLE_ON_SCREEN = {(1, 6)}  # (part, step): the code and its printout above the fold

# Each code block of the main area: whether its text may wrap, its lines, their height, and whether a
# line longer than the box scrolls sideways instead.
CODE_BLOCKS = """() => [...document.querySelectorAll('[data-testid="stMain"] [data-testid="stCode"] pre')]
.map(pre => {
  const code = pre.querySelector('code'), style = getComputedStyle(code);
  return {whiteSpace: style.whiteSpace, fontPx: parseFloat(style.fontSize),
          lines: code.innerText.replace(/\\n$/, '').split('\\n').length,
          height: code.getBoundingClientRect().height, lineHeight: parseFloat(style.lineHeight),
          scrollWidth: pre.scrollWidth, clientWidth: pre.clientWidth,
          overflowX: getComputedStyle(pre).overflowX, text: code.innerText.slice(0, 60),
          bottom: pre.getBoundingClientRect().bottom};
})"""
# Streamlit draws a code block's highlighter once its script has loaded, a grey box until then: on a
# busy machine the run can finish first.
CODE_DRAWN = """() => {
  const blocks = [...document.querySelectorAll('[data-testid="stMain"] [data-testid="stCode"]')];
  return blocks.length > 0 && blocks.every(b => b.querySelector('pre code')); }"""
FIGURES = """() => [...document.querySelectorAll('[data-testid="stMain"] [data-testid="stPlotlyChart"]')]
.map(c => {
  const box = c.getBoundingClientRect();
  const sizes = [...c.querySelectorAll('.main-svg text')].filter(t => t.textContent.trim())
    .map(t => parseFloat(getComputedStyle(t).fontSize));
  return {top: box.top, bottom: box.bottom, smallestText: Math.min(...sizes), texts: sizes.length};
})"""
BODY_PX = """() => parseFloat(getComputedStyle(
  document.querySelector('[data-testid="stMain"] [data-testid="stMarkdownContainer"] p')).fontSize)"""


def figure_steps(outputs) -> set[int]:
    """A part's steps that draw a figure (their code's, or a picture of their results)."""
    return {n for n, out in enumerate(outputs, 1) if out.figure is not None or out.picture is not None}


@pytest.fixture(scope="module")
def with_figure(lesson_part) -> set[int]:
    return figure_steps(lesson_part(1))


@pytest.fixture(scope="module")
def part_2_with_figure(lesson_part) -> set[int]:
    return figure_steps(lesson_part(2))  # the session's run of part 2 (tests/conftest.py)


@pytest.fixture(scope="module")
def part_3_with_figure() -> set[int]:
    """Part 3's code draws no figure itself (tests/test_lesson_convolutions.py runs it): its
    figures are its steps' pictures, so they are read without training its two networks here."""
    return {s.number for s in lesson_convolutions.STEPS if s.picture is not None}


@pytest.mark.parametrize("width, height", SIZES)
def test_every_step_fits_a_projector(page, base_url, with_figure, width, height):
    assert with_figure >= {3, 10, 12, 13}
    fits_a_projector(page, base_url, 1, with_figure, width, height)


@pytest.mark.parametrize("width, height", SIZES)
def test_every_part_2_step_fits_a_projector(page, base_url, part_2_with_figure, width, height):
    assert part_2_with_figure == {7, 11, 13}  # the loss curves, twice, and view_classify
    fits_a_projector(page, base_url, 2, part_2_with_figure, width, height)


@pytest.mark.parametrize("width, height", SIZES)
def test_every_part_3_step_fits_a_projector(page, base_url, part_3_with_figure, width, height):
    assert part_3_with_figure == {2, 3, 4, 11, 12}  # the edge filter's maps, the filters, the feature maps
    trained_first(page, base_url, 3)
    fits_a_projector(page, base_url, 3, part_3_with_figure, width, height)


def slide_focused(page) -> None:
    """The slide has the focus, as a remote's keys find it, and the page listens for them: its script
    is drawn after the run (seen under load: a key pressed before it did nothing)."""
    page.wait_for_function("() => window.mnistlabClicker === true")
    page.locator('[data-testid="stMain"] h2').first.click()


def trained_first(page, base_url, part: int) -> None:
    """The server's first run of a part that trains (part 3: two networks, about 15 s on an idle
    machine) may take longer than one page's wait: let it finish once."""
    mark = page.runs.mark()
    page.goto(f"{base_url.rstrip('/')}/lesson?part={part}&step=1&present=1")
    page.runs.wait(mark, 300_000)


def fits_a_projector(page, base_url, part: int, with_figure: set[int], width: int, height: int) -> None:
    """Every step of a part in presenter mode, walked by Page Down: every code line whole and no smaller
    than MIN_CODE_PX. A step with a figure is loaded from its address instead: just after Page Down,
    Plotly may still be laying the figure out (seen: its top at -3 px), or show the last step's."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": width, "height": height})
    problems = []
    steps = lesson.PARTS[part - 1].steps
    for number in range(1, len(steps) + 1):
        if number == 1 or number in with_figure:  # a figure is measured once its page is whole
            open_app(page, base_url, f"lesson?{f'part={part}&' if part != 1 else ''}step={number}&present=1")
            slide_focused(page)
        else:  # the next slide as the room sees it come, by a clicker's Page Down
            with rerun(page):
                page.keyboard.press("PageDown")
        heading = page.locator('[data-testid="stMain"] h2').first
        expect(heading).to_have_text(f"{number}. {steps[number - 1].title}")
        if number in with_figure:
            expect(page.locator('[data-testid="stPlotlyChart"] .main-svg').first).to_be_visible()
        page.wait_for_function(CODE_DRAWN, timeout=TIMEOUT_MS)
        page.evaluate("document.fonts.ready.then(() => true)")  # measured in the fonts the room sees
        assert_no_exception(page)
        prefix = "step" if part == 1 else f"part-{part}-step"
        page.screenshot(path=str(SHOTS / f"{prefix}-{number:02d}-{width}x{height}.png"))
        where = f"part {part} step {number} at {width}×{height}"

        blocks = page.evaluate(CODE_BLOCKS)
        assert len(blocks) >= 1, f"{where}: no code shown"
        for b in blocks:
            if b["whiteSpace"] != "pre":  # pre: a line breaks only where the text has a newline
                problems.append(f"{where}: {b['text']!r} may wrap (white-space {b['whiteSpace']})")
            if b["height"] > b["lines"] * b["lineHeight"] + 2:
                problems.append(f"{where}: {b['text']!r} takes more than its {b['lines']} lines "
                                f"({b['height']:.0f} px at {b['lineHeight']:.1f} px a line)")
            if b["scrollWidth"] > b["clientWidth"]:
                problems.append(f"{where}: {b['text']!r} has a line cut off ({b['scrollWidth']} px in "
                                f"{b['clientWidth']} px)")
            if b["fontPx"] < MIN_CODE_PX - 0.01:
                problems.append(f"{where}: {b['text']!r} at {b['fontPx']:.1f} px, under {MIN_CODE_PX} px")
            if (part, number) in WHOLE_ON_SCREEN and b["bottom"] > height:
                problems.append(f"{where}: {b['text']!r} runs below the fold ({b['bottom']:.0f} px)")

        figures = page.evaluate(FIGURES)
        if number in with_figure:
            body = page.evaluate(BODY_PX)
            main = figures[0]
            if not (0 <= main["top"] and main["bottom"] <= height):
                problems.append(f"{where}: the figure runs from {main['top']:.0f} to "
                                f"{main['bottom']:.0f} px, past the fold at {height}")
            if main["texts"] == 0 or main["smallestText"] < body:
                problems.append(f"{where}: text on the figure at {main['smallestText']} px, "
                                f"smaller than the {body} px beside it")
    assert not problems, "\n".join(problems)


def test_step_12_shows_the_weights_as_a_picture_beside_the_code_and_the_wide_printout_under_both(
        page, base_url):
    """Its printout's rows of 128 zeros are 103 characters: at 16 px they need the whole width."""
    page.set_viewport_size({"width": 1280, "height": 720})
    open_app(page, base_url, "lesson?step=12&present=1")
    chart = page.locator('[data-testid="stPlotlyChart"]').first
    expect(chart.locator(".gtitle")).to_contain_text("model.fc1.weight")
    code = page.locator('[data-testid="stCode"]').filter(has_text="print(model.fc1.weight)").bounding_box()
    assert chart.bounding_box()["x"] > code["x"] + code["width"], "the picture is not beside the code"
    printout = page.locator('[data-testid="stCode"]').filter(has_text="Parameter containing:").bounding_box()
    assert printout["y"] > chart.bounding_box()["y"] + chart.bounding_box()["height"]
    assert printout["width"] > 0.9 * (page.viewport_size["width"] - 100)


def test_step_12_outside_presenter_mode_shows_the_picture_after_the_printout(page, base_url):
    open_app(page, base_url, "lesson?step=12")
    chart = page.locator('[data-testid="stPlotlyChart"]').first
    expect(chart.locator(".gtitle")).to_contain_text("model.fc1.weight")
    printout = page.locator('[data-testid="stCode"]').filter(has_text="Parameter containing:")
    assert chart.bounding_box()["y"] > printout.bounding_box()["y"] + printout.bounding_box()["height"]
    screenshot(page, "lesson-step-12")  # the whole page


# Each number written in a heatmap's cell, its size and width, and the width of a cell.
CELL_NUMBERS = """() => {
  const chart = document.querySelector('[data-testid="stMain"] .js-plotly-plot');
  const heatmap = chart._fullData.filter(t => t.type === 'heatmap').at(-1);
  const axis = chart._fullLayout[heatmap.xaxis.replace('x', 'xaxis')];
  const numbers = [...chart.querySelectorAll('.heatmaplayer text')].filter(t => t.textContent.trim());
  return {cell: Math.abs(axis.l2p(1) - axis.l2p(0)), shown: heatmap.z.length * heatmap.z[0].length,
          px: Math.min(...numbers.map(t => parseFloat(getComputedStyle(t).fontSize))),
          widest: Math.max(...numbers.map(t => t.getBBox().width)), count: numbers.length};
}"""


@pytest.mark.parametrize("width, height", SIZES)
def test_step_3_pixel_values_are_legible_from_the_back_of_the_room(page, base_url, width, height):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": width, "height": height})
    open_app(page, base_url, "lesson?step=3&present=1")
    expect(page.locator('[data-testid="stPlotlyChart"] .heatmaplayer text').first).to_be_visible()
    page.evaluate("document.fonts.ready.then(() => true)")
    page.screenshot(path=str(SHOTS / f"step-03-pixels-{width}x{height}.png"))
    numbers, body = page.evaluate(CELL_NUMBERS), page.evaluate(BODY_PX)
    assert numbers["count"] == numbers["shown"] == lesson_networks.PIXEL_WINDOW ** 2
    assert numbers["px"] >= body  # as large as the text beside it
    assert numbers["widest"] <= numbers["cell"], numbers  # no number runs into its neighbour
    expect(page.locator('[data-testid="stPlotlyChart"]').first).to_contain_text("cols")


def shown_step(page) -> str:
    return page.locator('[data-testid="stMain"] h2').first.inner_text()


@pytest.mark.parametrize("part", [1, 2, 3])
def test_a_clickers_page_down_and_page_up_and_the_arrow_keys_are_next_and_previous(page, base_url, part):
    steps = lesson.PARTS[part - 1].steps
    there = f"part={part}&" if part != 1 else ""
    if part == 3:
        trained_first(page, base_url, part)
    open_app(page, base_url, f"lesson?{there}step=1&present=1")
    assert shown_step(page).startswith(f"1. {steps[0].title}")
    slide_focused(page)
    for key, number in [("PageDown", 2), ("ArrowRight", 3), ("ArrowDown", 4), ("PageUp", 3),
                        ("ArrowLeft", 2), ("ArrowUp", 1)]:
        with rerun(page):
            page.keyboard.press(key)
        expect(page.locator('[data-testid="stMain"] h2').first).to_have_text(
            f"{number}. {steps[number - 1].title}")
        assert f"step={number}" in page.url and (f"part={part}" in page.url) == (part != 1)
    page.keyboard.press("PageUp")  # at step 1: nothing to go back to, and no error
    open_app(page, base_url, f"lesson?{there}step={len(steps)}&present=1")
    slide_focused(page)
    page.keyboard.press("PageDown")
    page.wait_for_timeout(500)
    assert shown_step(page).startswith(f"{len(steps)}. ") and f"step={len(steps)}" in page.url
    assert_no_exception(page)


def test_outside_presenter_mode_the_keys_scroll_the_page_and_leave_the_step(page, base_url):
    open_app(page, base_url, "lesson?step=4")
    page.keyboard.press("PageDown")
    page.keyboard.press("ArrowRight")
    page.wait_for_timeout(1000)
    assert shown_step(page).startswith("4. ") and "step=4" in page.url
