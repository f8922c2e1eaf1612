"""Pause and Step one batch in a real browser: the progress says where the run rests, a step moves it
by one batch, and a shot of the paused page at a projector's 1280×720."""

import re

from playwright.sync_api import expect

from tests.e2e.conftest import SCREENSHOTS, assert_no_exception, goto_page, open_app, rerun
from tests.e2e.test_dynamics_live import chart, slider

PAUSED = re.compile(r"Paused at step ([\d,]+) of")
# Running again, in whichever epoch it was paused: a quick machine may be past the first
RUNNING = re.compile(r"Epoch \d of 5 · step")


def test_a_run_paused_and_stepped_one_batch(page, base_url):
    page.set_viewport_size({"width": 1280, "height": 720})
    open_app(page, base_url)
    goto_page(page, "Train")
    slider(page, "Batch size", "ArrowLeft", presses=3)  # 8: 31,250 steps in 5 epochs
    with rerun(page):
        page.get_by_role("button", name="Train", exact=True).click()
    progress = page.locator('[data-testid="stProgress"]')
    expect(progress).to_contain_text("Epoch 1 of 5 · step")
    expect(progress).to_contain_text(re.compile(r"training accuracy this epoch \d+\.\d%"))

    page.get_by_role("button", name="Pause").click()
    expect(progress).to_contain_text(PAUSED)
    step = int(PAUSED.search(progress.inner_text()).group(1).replace(",", ""))
    page.get_by_role("button", name="Step one batch").click()
    expect(progress).to_contain_text(f"Paused at step {step + 1:,} of 31,250")
    chart(page, "While it trains", "c.points > 0")
    page.wait_for_timeout(1000)  # a live refresh or two: it stays where it was stepped to
    expect(progress).to_contain_text(f"Paused at step {step + 1:,} of 31,250")
    assert_no_exception(page)
    page.mouse.move(0, 0)  # no tooltip over the progress in the shot
    page.wait_for_timeout(500)
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "train-paused-1280x720.png"))

    page.get_by_role("button", name="Resume").click()
    expect(progress).to_contain_text(RUNNING)
    with rerun(page):
        page.get_by_role("button", name="Stop").click()
    expect(page.locator('[data-testid="stMetric"]').filter(has_text="Test accuracy")).to_be_visible(
        timeout=120_000)
