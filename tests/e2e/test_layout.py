"""What a room sees at a projector's 1280×720 and 1920×1080: nothing cut, wrapped or too small.

One visitor (one browser page) for the whole module: each page is opened once and looked at in both
sizes (the browser lays it out again; the app does not run again), and one short training and one
small sweep feed the Train, Draw and Explore checks. Each check screenshots what it looked at to
screenshots/layout-*.png.
"""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e import conftest
from tests.e2e.conftest import assert_no_exception, goto_page, new_page, open_app, rerun, wait_for_app
from tests.e2e.test_draw import draw
from tests.e2e.test_pages import choose_opened

SIZES = [pytest.param((1280, 720), id="1280x720"), pytest.param((1920, 1080), id="1920x1080")]
TRAIN_TIMEOUT_MS = 300_000
# Every depth and activation, two inits and three dropouts (74 trials): each menu with several values
MENUS = "explore?depths=0,1,2,3,4&widths=16&act=sigmoid,tanh,relu&init=default,0.01&drop=0,0.2,0.5"
SWEEP = "explore?depths=1&widths=16,32&act=relu,sigmoid&seeds=1&epochs=1&images=1000"  # 4 small trials
MLP = "build?hidden=128,64&act=sigmoid,tanh&dropout=0.5"
CNN = "build?hidden=32&act=relu&std=default&bias=default&seed=0&conv=8:5,pool,16:5,pool&dropout=0.2&bn=1"

MAIN = '[data-testid="stMain"]'
# A chip whose text is cut ("sigm…"), or pushed out of sight past its menu's edge
CUT_CHIPS = f"""() => [...document.querySelectorAll('{MAIN} [data-testid="stMultiSelect"]')].flatMap(m => {{
    const box = m.querySelector('[data-testid="stMultiSelectTagsContainer"]').getBoundingClientRect();
    return [...m.querySelectorAll('[data-tag] span[title]')].filter(s => s.scrollWidth > s.clientWidth
      || s.closest('[data-tag]').getBoundingClientRect().right > box.right + 1).map(s => s.title); }})"""
# A field's label on more than one line ("drop / out")
WRAPPED_LABELS = f"""() => [...document.querySelectorAll('{MAIN} [data-testid="stWidgetLabel"] p')]
  .filter(p => p.getBoundingClientRect().height > 1.5 * parseFloat(getComputedStyle(p).lineHeight))
  .map(p => p.innerText)"""
# A menu's chosen value cut at its edge ("sigmo")
CUT_VALUES = f"""() => [...document.querySelectorAll('{MAIN} [data-testid="stSelectbox"] input')]
  .filter(i => i.scrollWidth > i.clientWidth).map(i => i.value)"""
# Whether a table's columns all fit its width: no scrolling sideways to see the last ones
TABLE_FITS = """(frame) => { const s = frame.querySelector('.dvn-scroller');
  return s !== null && s.clientWidth > 100 && s.scrollWidth <= s.clientWidth + 1; }"""
FONT_PX = "(els) => els.map(e => parseFloat(getComputedStyle(e).fontSize))"

canvas_width = {}  # the Draw canvas's width on screen, by viewport


@pytest.fixture(scope="module")
def visitor(browser, server):
    """One page for the module; at the end the browser console and the server log must show no error."""
    errors: list[str] = []
    log_start = len(server.log())
    page = new_page(browser, errors)
    page.visited = set()
    yield page
    page.context.close()
    assert not errors, "errors in the browser console:\n" + "\n".join(errors)
    assert "Traceback (most recent call last)" not in server.log()[log_start:]


def look(page, base_url, path: str, size, by_link: str | None = None) -> None:
    """The page at `path` (opened once for the module) at `size`, laid out again for it. A page opened
    `by_link` in the navigation keeps the visitor's session (their runs); an address opens a new one."""
    page.set_viewport_size({"width": size[0], "height": size[1]})
    if path not in page.visited:
        if by_link:
            goto_page(page, by_link)
        else:
            open_app(page, base_url, path)
        page.visited.add(path)
    page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollTo(0, 0)")
    page.wait_for_timeout(500)  # the browser lays it out again; Plotly redraws at the new width
    wait_for_app(page)
    assert_no_exception(page)


def shot(page, name: str, size, element=None) -> None:
    """What the visitor sees, `element` scrolled to the top, to screenshots/layout-<name>-<size>.png."""
    if element is not None:
        element.evaluate("el => el.scrollIntoView({block: 'start'})")
        page.wait_for_timeout(300)
    conftest.SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(conftest.SCREENSHOTS / f"layout-{name}-{size[0]}x{size[1]}.png"))


def fits(page, table) -> bool:
    """Whether `table` (a st.dataframe) shows all its columns, once drawn (it draws when scrolled to)."""
    table.evaluate("el => el.scrollIntoView({block: 'center'})")
    page.wait_for_function("(el) => { const s = el.querySelector('.dvn-scroller'); "
                           "return s !== null && s.clientWidth > 100; }", arg=table.element_handle())
    page.wait_for_timeout(300)
    return table.evaluate(TABLE_FITS)


@pytest.mark.parametrize("size", SIZES)
def test_explore_shows_every_chosen_value_whole(visitor, base_url, size):
    look(visitor, base_url, MENUS, size)
    expect(visitor.get_by_text(re.compile(r"^74 trials"))).to_be_visible()  # the link was used
    assert visitor.evaluate(CUT_CHIPS) == []
    shot(visitor, "explore-menus", size)


@pytest.mark.parametrize("size", SIZES)
def test_explore_all_networks_table_fits(visitor, base_url, size):
    if SWEEP not in visitor.visited:
        look(visitor, base_url, SWEEP, size)
        with rerun(visitor):
            visitor.get_by_role("button", name="Start the sweep").click()
        expect(visitor.get_by_role("heading", name="All networks")).to_be_visible(timeout=TRAIN_TIMEOUT_MS)
    look(visitor, base_url, SWEEP, size)
    table = visitor.locator('[data-testid="stDataFrame"]').last
    assert fits(visitor, table), "the All networks table is cut at the right"
    shot(visitor, "explore-all-networks", size, visitor.get_by_role("heading", name="All networks"))


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("path", [MLP, CNN], ids=["mlp", "cnn"])
def test_build_labels_and_values_are_whole(visitor, base_url, size, path):
    look(visitor, base_url, path, size)
    assert visitor.evaluate(WRAPPED_LABELS) == []
    assert visitor.evaluate(CUT_VALUES) == []
    if "conv=" in path:  # its layers' shapes, parameters and multiply-adds
        assert fits(visitor, visitor.locator('[data-testid="stDataFrame"]').first), "the shapes table is cut"
    cnn = "conv=" in path
    shot(visitor, f"build-{'cnn' if cnn else 'mlp'}", size,
         visitor.get_by_role("heading", name="Convolutions" if cnn else "Hidden layers"))


@pytest.mark.parametrize("size", SIZES)
def test_lesson_step_menu_shows_whole_titles(visitor, base_url, size):
    look(visitor, base_url, "lesson?part=3&step=10", size)  # the longest title
    assert visitor.evaluate(CUT_VALUES) == []
    visitor.locator('[data-testid="stSelectbox"]').first.locator('[role="combobox"]').click()
    options = visitor.get_by_role("option")
    expect(options.first).to_be_visible()
    cut = options.evaluate_all("os => os.filter(o => [o, ...o.querySelectorAll('*')].some(e => "
                               "e.scrollWidth > e.clientWidth)).map(o => o.innerText)")
    shot(visitor, "lesson-step-menu", size)
    visitor.keyboard.press("Escape")
    assert cut == []


@pytest.mark.parametrize("size", SIZES)
def test_train_runs_table_fits_and_mistakes_are_legible(visitor, base_url, size):
    if "train" not in visitor.visited:  # one short training: one epoch on 1,000 images
        look(visitor, base_url, "train", size)
        visitor.get_by_text("Generalization settings").click()
        choose_opened(visitor, "Training images", "1,000")
        epochs = visitor.locator('[data-testid="stSlider"]').filter(has_text="Epochs").get_by_role("slider")
        with rerun(visitor):
            epochs.focus()
            epochs.press("Home")
        with rerun(visitor):
            visitor.get_by_role("button", name="Train", exact=True).click()
        visitor.get_by_text(re.compile(r"^Run 1: ")).first.wait_for(timeout=TRAIN_TIMEOUT_MS)
        wait_for_app(visitor)
    look(visitor, base_url, "train", size)
    table = visitor.locator('[data-testid="stDataFrame"]').first
    assert fits(visitor, table), "the runs table is cut at the right"
    shot(visitor, "train-runs", size, table)
    visitor.get_by_role("tab", name="Mistakes (test)").click()
    grid = visitor.locator('[data-testid="stPlotlyChart"]').filter(has_text="test mistakes")
    labels = grid.locator(".textpoint text")
    expect(labels.first).to_be_visible()
    assert min(labels.evaluate_all(FONT_PX)) >= 20  # "2→3" above each mistake, read from the back
    visitor.get_by_text("Mistakes page", exact=False).first.scroll_into_view_if_needed()  # drawn when seen
    bars = visitor.locator('[data-testid="stPlotlyChart"] .bartext >> visible=true')
    expect(bars.nth(9)).to_be_visible()
    assert min(bars.evaluate_all(FONT_PX)) >= 16  # the probabilities, as large as the body text
    shot(visitor, "train-mistakes", size, grid)


@pytest.mark.parametrize("size", SIZES)
def test_draw_canvas_fits_the_screen_and_grows_on_a_large_one(visitor, base_url, size):
    look(visitor, base_url, "draw", size, by_link="Draw")  # the network: the session's run from Train
    canvas = visitor.locator("canvas.upper-canvas")
    box = canvas.bounding_box()
    assert box["y"] + box["height"] <= size[1], "the canvas falls below the fold"
    canvas_width[size] = box["width"]
    if size == (1920, 1080):
        assert canvas_width[size] >= 1.4 * canvas_width.get((1280, 720), 280)
    if not visitor.locator(".bartext").count():
        with rerun(visitor):
            s = box["width"] / 280  # canvas pixels to the screen's
            draw(visitor, [[(95 * s, 60 * s), (205 * s, 60 * s), (190 * s, 110 * s), (150 * s, 190 * s),
                            (125 * s, 245 * s)]])
    bars = visitor.locator('[data-testid="stPlotlyChart"] .bartext')
    expect(bars.nth(9)).to_be_attached()
    assert min(bars.evaluate_all(FONT_PX)) >= 16  # Plotly would shrink them to the bar's thickness
    shot(visitor, "draw", size)
