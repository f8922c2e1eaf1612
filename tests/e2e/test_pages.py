"""The Dataset, From tensors, Build and Train pages in a real browser, as a learner uses them."""

import re

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from tests.e2e import conftest
from tests.e2e.conftest import assert_no_exception, goto_page, open_app, rerun, screenshot, wait_for_app

# Every page's smoke test in the browser (its title, no exception, no console error, a screenshot) is
# test_server_log.py's visit of each page.

# What a rendered Plotly chart shows: its title, the texts drawn on it (e.g. a grid's labels), and a
# checksum of each trace's pixel values (z), bar lengths (x) and picture (an image trace's PNG), as
# the browser holds them.
FIGURE = """([el, title]) => {
  const charts = [...document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot')];
  const p = charts.find(c => (c.querySelector('.gtitle')?.textContent || '').includes(title));
  if (!p || !p._fullData) return null;
  const sum = (a) => { let s = 0, i = 0; for (const v of (a || [])) {
      s += typeof v === 'number' ? v * (++i % 97 + 1) : sum(v); } return s; };
  return {title: p.querySelector('.gtitle').textContent,
          texts: [...p.querySelectorAll('.annotation-text, .textpoint text')].map(t => t.textContent),
          traces: p._fullData.map(t => ({type: t.type, z: sum(t.z), image: t.source || null,
                                         x: t.type === 'bar' ? Array.from(t.x, Number) : []}))};
}"""


def figure(page, title: str) -> dict:
    """The rendered Plotly chart whose title contains `title` (waits until Plotly has drawn it)."""
    return page.wait_for_function(FIGURE, arg=[None, title]).json_value()


def set_number(page, label: str, value) -> None:
    """Types into a number input and commits it with Enter, as a user does; waits for the rerun."""
    box = page.get_by_label(label, exact=True)
    with rerun(page):
        box.fill(str(value))
        box.press("Enter")


def printed_model(page):
    """The Build page's `print(model)` block."""
    return page.locator('[data-testid="stCode"]').filter(has_text="(fc1): Linear(")


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080)])
def test_the_root_shows_the_way_in_and_its_lesson_link_opens_step_1(page, base_url, size):
    page.set_viewport_size({"width": size[0], "height": size[1]})
    open_app(page, base_url)
    expect(page.locator("h1").first).to_have_text("MNIST Lab")
    expect(page.get_by_text("Lesson → Build → Train → Explore → Draw")).to_be_visible()
    links = page.locator('[data-testid="stMain"] [data-testid="stPageLink"]')
    labels = links.locator('[data-testid="stMarkdownContainer"]')  # the link's text, without its icon
    expect(labels.nth(4)).to_have_text("5. Draw")  # the links render after the title: wait for them
    assert labels.all_inner_texts()[:5] == ["1. Lesson", "2. Build", "3. Train", "4. Explore", "5. Draw"]
    assert_no_exception(page)
    screenshot(page, f"start-{size[0]}")
    with rerun(page):
        links.filter(has_text="1. Lesson").click()
    page.wait_for_url(re.compile(r"/lesson\?step=1$"))
    expect(page.locator('[data-testid="stMain"] h2').first).to_have_text(re.compile(r"^1\. Load MNIST"))
    expect(page.locator('[data-testid="stAlertContentWarning"]')).to_have_count(0)
    expect(page.get_by_text("No step in the address")).to_have_count(0)


def test_dataset_next_batch_changes_the_grid(page, base_url):
    open_app(page, base_url)
    goto_page(page, "Dataset")
    title = "The batch's digits with their labels"
    first = figure(page, title)
    assert len(first["texts"]) == 64 and set(first["texts"]) <= set("0123456789")
    expect(page.get_by_text(re.compile(r"^Batch 1 of 938"))).to_be_visible()

    with rerun(page):
        page.get_by_role("button", name="Next batch").click()
    expect(page.get_by_text(re.compile(r"^Batch 2 of 938"))).to_be_visible()
    page.wait_for_function(f"""() => {{ const f = ({FIGURE})([null, {title!r}]);
                                       return f && f.texts.join() !== {",".join(first["texts"])!r}; }}""")
    second = figure(page, title)
    assert second["texts"] != first["texts"], "the labels above the digits did not change"
    assert first["traces"][0]["image"].startswith("data:image/png;base64,")
    assert second["traces"][0]["image"] != first["traces"][0]["image"], "the digits' pixels did not change"
    # The browser drew the PNG: an <image> in the chart with the same picture.
    drawn = page.locator('[data-testid="stPlotlyChart"]').filter(has_text=title).locator("image").first
    assert drawn.get_attribute("href") == second["traces"][0]["image"]
    assert_no_exception(page)


def test_from_tensors_hidden_units_change_the_weights(page, base_url):
    open_app(page, base_url)
    goto_page(page, "From tensors")
    expect(page.locator('[data-testid="stCode"]').filter(has_text="n_hidden = 256")).to_be_visible()
    set_number(page, "Hidden units (n_hidden)", 32)
    expect(page.locator('[data-testid="stCode"]').filter(has_text="n_hidden = 32")).to_be_visible()
    expect(page.locator('[data-testid="stCode"]').filter(has_text="n_hidden = 256")).to_have_count(0)
    assert_no_exception(page)


def test_build_hidden_size_updates_the_printed_model(page, base_url):
    open_app(page, base_url)
    goto_page(page, "Build")
    expect(printed_model(page)).to_contain_text("(fc1): Linear(in_features=784, out_features=128, bias=True)")

    set_number(page, "fc1 units", 32)
    expect(printed_model(page)).to_contain_text("(fc1): Linear(in_features=784, out_features=32, bias=True)")
    expect(printed_model(page)).to_contain_text("(fc2): Linear(in_features=32, out_features=64, bias=True)")
    # 784·32+32 + 32·64+64 + 64·10+10
    expect(page.locator('[data-testid="stMetricValue"]')).to_have_text("27,882")

    with rerun(page):
        page.get_by_role("button", name="Add hidden layer").click()
    model = printed_model(page)
    expect(model).to_contain_text("(fc3): Linear(in_features=64, out_features=64, bias=True)")
    expect(model).to_contain_text("(output): Linear(in_features=64, out_features=10, bias=True)")
    assert_no_exception(page)
    screenshot(page, "build-three-layers")


def test_share_url_restores_the_same_network(page, open_page, base_url):
    open_app(page, base_url)
    goto_page(page, "Build")
    set_number(page, "fc1 units", 48)
    choose_opened(page, "activation 2", "tanh")  # a click while the page still settles may only focus it
    set_number(page, "Seed", 7)
    expect(page).to_have_url(re.compile(r"seed=7"))
    shared = page.url
    page.get_by_role("tab", name="Forward pass").click()  # a rerun draws the open tab; figure() waits
    model_text = printed_model(page).inner_text()
    forward = figure(page, "Untrained")

    other = open_page()  # a fresh context: no cookies, no session of the first visitor
    open_app(other, shared)
    expect(printed_model(other)).to_have_text(model_text)
    assert "out_features=48" in model_text and "(tanh2): Tanh()" in model_text
    other.get_by_role("tab", name="Forward pass").click()
    assert figure(other, "Untrained") == forward, "same link, different weights"
    assert_no_exception(other)
    screenshot(other, "build-from-shared-link")


def test_train_short_run_shows_accuracy(page, base_url):
    open_app(page, base_url)
    goto_page(page, "Train")
    epochs = page.locator('[data-testid="stSlider"]').filter(has_text="Epochs").get_by_role("slider")
    with rerun(page):
        epochs.focus()
        epochs.press("Home")  # the slider's minimum: one epoch
    expect(epochs).to_have_value("1")

    with rerun(page):
        page.get_by_role("button", name="Train", exact=True).click()
    expect(page.locator('[data-testid="stProgress"]')).to_be_visible()  # it trains while we watch
    accuracy = page.locator('[data-testid="stMetric"]').filter(has_text="Test accuracy")
    expect(accuracy.locator('[data-testid="stMetricValue"]')).to_have_text(re.compile(r"^\d+\.\d\d%$"),
                                                                          timeout=300_000)
    wait_for_app(page)
    value = float(accuracy.locator('[data-testid="stMetricValue"]').inner_text().rstrip("%"))
    assert value > 85, f"one epoch of the lesson's network should reach well over 85%, got {value}%"
    expect(page.get_by_text(re.compile(r"Run 1: 784-128-64-10 relu, adam lr 0.001, batch 64, 1 epoch"))
           .first).to_be_visible()
    assert_no_exception(page)
    screenshot(page, "train-after-one-epoch")


def choose_opened(page, label: str, option: str, tries: int = 3) -> None:
    """`choose`, in an expander just opened: a click on the box while the expander still grows can
    focus it without opening its list (seen at 1280x720), so the list is asked for again."""
    box = page.locator('[data-testid="stSelectbox"]').filter(
        has=page.get_by_text(label, exact=True)).locator('[role="combobox"]')
    wanted = page.get_by_role("option", name=option, exact=True)
    for _ in range(tries):
        box.click()
        try:
            wanted.wait_for(timeout=5_000)
            break
        except PlaywrightError:
            page.keyboard.press("Escape")
    with rerun(page):
        wanted.click()


SIZES = [(1280, 720), (1920, 1080)]


def at_each_size(page, shoot) -> None:
    """`shoot(width)` with the page at each of SIZES (a projector's, a monitor's), then back."""
    before = page.viewport_size
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(300)  # Plotly and the columns settle at the new width
        shoot(width)
    page.set_viewport_size(before)


def test_train_on_a_small_training_set_shows_overfitting_by_split(page, base_url):
    """Set at a projector's size and trained once; the settings and the results are then shown and shot
    at both sizes (the layout is the browser's, the training the same at any width)."""
    page.set_viewport_size(dict(zip(("width", "height"), SIZES[0])))
    open_app(page, base_url)
    goto_page(page, "Train")
    page.get_by_text("Generalization settings").click()  # the expander opens in the browser
    choose_opened(page, "Training images", "1,000")
    choose_opened(page, "Early stopping", "after 2 epochs")
    epochs = page.locator('[data-testid="stSlider"]').filter(has_text="Epochs").get_by_role("slider")
    with rerun(page):
        epochs.focus()
        epochs.press("End")  # 20 epochs at most: early stopping ends it sooner
    expect(page.get_by_text(re.compile(r"1,000 training images"))).to_be_visible()
    assert_no_exception(page)
    conftest.SCREENSHOTS.mkdir(exist_ok=True)  # the top of the page alone: what a room sees first
    at_each_size(page, lambda width: page.screenshot(
        path=str(conftest.SCREENSHOTS / f"train-generalization-settings-{width}.png")))

    with rerun(page):
        page.get_by_role("button", name="Train", exact=True).click()
    gap = page.locator('[data-testid="stMetric"]').filter(has_text="Gap (training − validation)")
    expect(gap.locator('[data-testid="stMetricValue"]')).to_have_text(re.compile(r"^\+\d+\.\d points$"),
                                                                     timeout=300_000)
    wait_for_app(page)
    stopped = r"stopped after epoch \d+ \(2 epochs without a lower validation loss\), kept epoch \d+'s"
    expect(page.get_by_text(re.compile(stopped))).to_be_visible()
    curves = figure(page, "Training curves")
    assert {"loss", "accuracy"} <= set(curves["texts"])
    assert any(t.startswith("best: epoch ") for t in curves["texts"])

    def results(width: int) -> None:
        for name in ("Training accuracy", "Validation accuracy",
                     "Test accuracy (held out, not used to choose)"):
            expect(page.locator('[data-testid="stMetric"]').filter(has_text=name)).to_be_visible()
        assert_no_exception(page)
        screenshot(page, f"train-generalization-{width}")

    at_each_size(page, results)
