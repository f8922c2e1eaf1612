"""Draw page in a real browser: draw with the mouse on the canvas, see the 10 class probabilities."""

import re
from pathlib import Path

from conftest import SCREENSHOTS, assert_no_exception, open_app, rerun, screenshot, wait_for_app
from playwright.sync_api import expect
from test_shift_test import mlp_and_cnn_runs

from mnistlab import model_files

TRAIN_TIMEOUT_MS = 300_000  # one epoch on a busy 2-core CI machine
CHART = '[data-testid="stPlotlyChart"]'


# Resolves once the element has kept its place for 5 frames: a busy page may still move it (the
# columns beside it filling in), and a stroke aimed at the old place would miss the canvas.
SETTLED = """(el) => new Promise(done => {
  let last = '', same = 0;
  const tick = () => { const r = JSON.stringify(el.getBoundingClientRect());
                       same = r === last ? same + 1 : 0; last = r;
                       same >= 5 ? done(true) : requestAnimationFrame(tick); };
  requestAnimationFrame(tick);
})"""


def draw(page, strokes) -> None:
    """Each stroke is a list of (x, y) canvas pixels, drawn with the mouse button held down."""
    canvas = page.locator("canvas.upper-canvas")  # fabric.js's canvas that takes the mouse
    canvas.evaluate(SETTLED)
    box = canvas.bounding_box()
    for points in strokes:
        (x, y), rest = points[0], points[1:]
        page.mouse.move(box["x"] + x, box["y"] + y)
        page.mouse.down()
        for x, y in rest:
            page.mouse.move(box["x"] + x, box["y"] + y, steps=4)
        page.mouse.up()


def probabilities(page) -> list[float]:
    """The numbers written at the end of the first chart's 10 bars, class 0 first."""
    page.wait_for_function(f"document.querySelectorAll('{CHART} .bartext').length >= 10")
    texts = page.locator(f"{CHART} .bartext").all_text_contents()[:10]
    return [float(t) for t in texts]


def predicted(page) -> int:
    title = page.locator(CHART).first.get_by_text(re.compile(r"predicted \d")).text_content()
    return int(re.search(r"predicted (\d)", title).group(1))


def test_draw_a_digit_and_see_ten_class_probabilities(page, base_url):
    open_app(page, base_url, "draw")
    assert page.get_by_text("Draw a digit on the canvas").is_visible()
    assert page.locator(CHART).count() == 0

    # No network yet: one click trains the default one, and the page then offers it.
    page.get_by_role("button", name="Train a default network").click()
    page.get_by_text(re.compile(r"Run 1: 784-128-64-10 relu")).first.wait_for(timeout=TRAIN_TIMEOUT_MS)
    wait_for_app(page)

    with rerun(page):  # the canvas sends the drawing when the mouse button is released
        draw(page, [[(95, 60), (205, 60), (190, 110), (150, 190), (125, 245)]])  # a 7
    ps = probabilities(page)
    assert len(ps) == 10 and abs(sum(ps) - 1) < 0.06  # written with two decimals
    assert predicted(page) == 7 == max(range(10), key=ps.__getitem__)
    expect(page.get_by_test_id("stImage")).to_have_count(5)  # each preprocessing stage, grayscale to centred
    assert_no_exception(page)
    screenshot(page, "draw-7-1280x800")
    page.set_viewport_size({"width": 1920, "height": 1080})
    screenshot(page, "draw-7-1920x1080")
    page.set_viewport_size({"width": 1280, "height": 800})

    with rerun(page):  # the toolbar's bin clears the canvas: back to asking for a digit
        page.locator(".dc-root").hover()
        page.get_by_role("button", name="Reset canvas & history").click()
    page.get_by_text("Draw a digit on the canvas").wait_for()
    assert page.locator(CHART).count() == 0


SEVEN = [[(95, 60), (205, 60), (190, 110), (150, 190), (125, 245)]]


def test_an_mlp_and_a_cnn_take_the_shift_test_on_a_drawing(page, base_url, server, request, train_split,
                                                            test_split, trained_cnn):
    """Two saved networks, one of each family, chosen side by side: the drawing's shift test draws a
    heatmap for each and a CNN's feature maps below."""
    folder = Path(server.env["MNISTLAB_MODELS"])
    names = []
    for name, run in zip(("shift-mlp", "shift-cnn"), mlp_and_cnn_runs(request.config.cache, train_split,
                                                                        test_split, trained_cnn)):
        model_files.save(model_files.SavedModel(run.network, run.state, run.config, run.evaluation.metrics()),
                         name, folder)
        names.append(name)
    try:
        open_app(page, base_url, "draw")
        networks = page.locator('.st-key-draw_models [data-testid="stMultiSelect"]')  # by its widget key
        networks.click()
        with rerun(page):
            page.get_by_role("option", name=re.compile(r"^Saved: shift-mlp")).click()
        page.keyboard.press("Escape")
        with rerun(page):
            draw(page, SEVEN)
        section = page.get_by_role("heading", name="Shift test: your drawing moved and turned")
        section.wait_for()
        # Plotly draws each heatmap after the run has ended: wait for the second, not count at once
        expect(page.locator(f"{CHART} .heatmaplayer .hm").nth(1)).to_be_attached()  # one per network
        expect(page.get_by_role("heading", name="Feature maps of your drawing")).to_be_visible()
        still = page.get_by_text(re.compile(r"shift-mlp.*still says \d at \d+ of 81 shifts"))
        expect(still.first).to_be_visible()
        assert_no_exception(page)
        for width, height in ((1280, 720), (1920, 1080)):
            page.set_viewport_size({"width": width, "height": height})
            page.wait_for_timeout(500)  # Plotly redraws at the new width
            section.evaluate("el => el.scrollIntoView({block: 'start'})")  # the section, as a visitor sees it
            page.wait_for_timeout(200)
            page.screenshot(path=str(SCREENSHOTS / f"draw-shift-{width}x{height}.png"))
            screenshot(page, f"draw-shift-{width}x{height}-page")
    finally:
        for name in names:
            model_files.path_for(name, folder).unlink(missing_ok=True)
