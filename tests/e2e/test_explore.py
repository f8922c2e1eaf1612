"""The Explore page in a real browser: a small sweep from a link, its points appearing, one opened on
Build."""

import re

from playwright.sync_api import expect

from tests.e2e.conftest import TIMEOUT_MS, assert_no_exception, open_app, rerun, screenshot

# Three networks (one layer of 16, 32 or 64 ReLU units), one epoch each on all of MNIST.
SWEEP = "explore?depths=1&widths=16,32,64&act=relu&seeds=1&epochs=1"
POINTS = """() => {
  const charts = [...document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot')];
  const p = charts.find(c => (c.querySelector('.gtitle')?.textContent || '').includes('against size'));
  return p ? p.querySelectorAll('.scatterlayer .trace:first-child .point').length : 0;
}"""


def test_a_sweep_shows_its_points_as_they_come_and_one_opens_on_build(page, base_url):
    open_app(page, base_url, SWEEP)
    expect(page.get_by_text(re.compile(r"^3 trials \(3 configs × 1 seed\)"))).to_be_visible()
    with rerun(page):
        page.get_by_role("button", name="Start the sweep").click()
    expect(page.locator('[data-testid="stProgress"]')).to_be_visible()  # it runs while we watch
    page.wait_for_function(f"({POINTS})() >= 1", timeout=TIMEOUT_MS)  # the first point, mid-sweep
    expect(page.get_by_role("heading", name="Results")).to_be_visible(timeout=3 * TIMEOUT_MS)
    page.wait_for_function(f"({POINTS})() == 3")
    expect(page.locator('[data-testid="stPlotlyChart"]')).to_have_count(5)  # with the capacity picture
    assert_no_exception(page)
    screenshot(page, "explore")

    # Click the smallest network's point (the leftmost on the size axis); the page opens it below.
    with rerun(page):
        points = page.locator('[data-testid="stPlotlyChart"]').filter(has_text="against size").locator(
            ".scatterlayer .trace").first.locator(".point")
        boxes = [points.nth(i).bounding_box() for i in range(points.count())]
        left = min(range(len(boxes)), key=lambda i: boxes[i]["x"])
        points.nth(left).click(force=True)
    chosen = page.get_by_role("combobox", name=re.compile("^Open a network"))
    expect(chosen).to_have_value(re.compile(r"^784-16-10 relu"))  # not the best one, offered first
    with rerun(page):
        page.get_by_role("link", name="Open it on Build").click()
    expect(page).to_have_url(re.compile(r"/build\?hidden=16&act=relu&std=default&bias=default&seed=0$"))
    expect(page.locator('[data-testid="stCode"]').filter(has_text="(fc1): Linear(in_features=784, "
                                                                  "out_features=16")).to_be_visible()
    assert_no_exception(page)


# Eight small networks: 16 or 64 ReLU units, dropout 0 or 0.5, on 1,000 or 3,000 training images.
REGULARIZED = "explore?depths=1&widths=16,64&act=relu&drop=0,0.5&images=1000,3000&seeds=1&epochs=1"


def test_a_sweep_over_dropout_and_training_sizes_shows_the_capacity_picture_at_both_sizes(page, base_url):
    page.set_viewport_size({"width": 1280, "height": 720})
    open_app(page, base_url, REGULARIZED)
    expect(page.get_by_text(re.compile(r"^8 trials \(8 configs × 1 seed\)"))).to_be_visible()
    for label in ("Dropout", "Batch norm", "Weight decay", "Training images", "Label noise"):
        expect(page.locator('[data-testid="stMultiSelect"]').filter(has_text=label)).to_be_visible()
    with rerun(page):
        page.get_by_role("button", name="Start the sweep").click()
    expect(page.get_by_role("heading", name="Results")).to_be_visible(timeout=3 * TIMEOUT_MS)
    charts = page.locator('[data-testid="stPlotlyChart"]')
    capacity = charts.filter(has_text="Training and validation accuracy")
    expect(capacity).to_be_visible()
    expect(capacity.locator(".scatterlayer .trace")).to_have_count(4)  # training and validation × 2 sizes
    table = page.locator('[data-testid="stDataFrame"]').filter(has_text="parameters")  # All networks
    for header in ("validation", "test", "train", "epoch"):  # accuracies first: validation chooses
        expect(table.get_by_text(header, exact=True).first).to_be_attached()
    assert_no_exception(page)
    screenshot(page, "explore-regularization-1280x720")
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.wait_for_timeout(500)  # Plotly redraws at the new width
    screenshot(page, "explore-regularization-1920x1080")
