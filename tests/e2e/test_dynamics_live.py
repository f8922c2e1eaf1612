"""The Train page's learning dynamics in a real browser: per-layer charts that fill in while a run
trains, a replay that plays in the browser, and plain words for a run that learned nothing."""

import re

from playwright.sync_api import expect

from tests.e2e.conftest import assert_no_exception, goto_page, open_app, rerun, screenshot, wait_for_app

# A chart by its title: how many points its traces hold, and (for the replay) the slider's
# position and the fc1 picture's PNG, as the browser holds them.
CHART = """(title) => {
  const charts = [...document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot')];
  const p = charts.find(c => (c.querySelector('.gtitle')?.textContent || '').includes(title));
  if (!p || !p._fullData) return null;
  return {points: p._fullData.reduce((n, t) => n + (t.type === 'scatter' ? t.x.length : 0), 0),
          slider: p._fullLayout.sliders?.[0]?.active ?? null,
          frames: (p._transitionData?._frames || []).length,
          picture: p._fullData[0]?.source || null};
}"""


def chart(page, title: str, condition: str = "true") -> dict:
    """The chart titled `title` once `condition` (JS, on the dict CHART returns, as `c`) holds."""
    js = f"(title) => {{ const c = ({CHART})(title); return c && ({condition}) && c; }}"
    return page.wait_for_function(js, arg=title).json_value()


def slider(page, label: str, key: str, presses: int = 1) -> None:
    handle = page.locator('[data-testid="stSlider"]').filter(has_text=label).get_by_role("slider")
    for _ in range(presses):
        with rerun(page):
            handle.focus()
            handle.press(key)


def test_each_layer_fills_in_while_it_trains_and_the_replay_plays(page, base_url):
    open_app(page, base_url)
    goto_page(page, "Train")
    slider(page, "Batch size", "ArrowLeft", presses=2)  # 16: 18,750 steps in 5 epochs, time to watch
    with rerun(page):
        page.get_by_role("button", name="Train", exact=True).click()
    progress = page.locator('[data-testid="stProgress"]')
    expect(progress).to_be_visible()
    first = chart(page, "Each layer while it trains", "c.points > 0")["points"]
    later = chart(page, "Each layer while it trains", f"c.points > {first}")["points"]
    expect(progress).to_be_visible()  # still training: the charts grew while it ran
    assert later > first
    init_loss = re.compile(r"Loss at step 0 on the probe images: 2\.3\d\d")
    expect(page.get_by_text(init_loss).first).to_be_visible()
    screenshot(page, "train-dynamics-live")

    with rerun(page):
        page.get_by_role("button", name="Stop").click()
    accuracy = page.locator('[data-testid="stMetric"]').filter(has_text="Test accuracy")
    expect(accuracy).to_be_visible(timeout=120_000)
    wait_for_app(page)
    assert_no_exception(page)
    assert chart(page, "Each layer over training", "c.points > 10")

    replay = chart(page, "Replay", "c.frames > 2")
    assert replay["slider"] == 0 and replay["picture"].startswith("data:image/png")
    mark = page.runs.mark()
    page.locator('[data-testid="stPlotlyChart"] .updatemenu-button').filter(has_text="Play").click()
    played = chart(page, "Replay", "c.slider > 0")
    assert played["picture"] != replay["picture"]  # fc1's units changed between the frames
    assert not [e for e in page.runs.events[mark:] if e[0] == "request"]  # played in the browser alone
    screenshot(page, "train-dynamics-replay")


def test_a_run_that_learns_nothing_is_explained(page, base_url):
    open_app(page, base_url)
    goto_page(page, "Train")
    with rerun(page):
        page.get_by_text("SGD + momentum", exact=True).click()
    slider(page, "Learning rate", "End")  # 1.0 with momentum 0.9: far too high for this network
    slider(page, "Batch size", "End")  # 4,096: 15 steps, quickly over
    slider(page, "Epochs", "Home")
    with rerun(page):
        page.get_by_role("button", name="Train", exact=True).click()
    verdict = page.locator('[data-testid="stAlert"]').filter(has_text="ends at chance accuracy")
    expect(verdict).to_be_visible(timeout=120_000)
    assert "learning rate (1) is too high" in verdict.inner_text()
    wait_for_app(page)
    assert_no_exception(page)
    screenshot(page, "train-dynamics-chance")
