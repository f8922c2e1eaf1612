"""The visitor's id in a real browser: kept by the browser across a reload, so their saved sweeps
are listed again; another browser has its own id and does not see them, though a link still opens
one."""

import re

from playwright.sync_api import expect

from tests.e2e.conftest import TIMEOUT_MS, assert_no_exception, open_app, rerun

# One network, softmax regression on 1,000 images for one epoch: a sweep of well under a second.
SWEEP = "explore?depths=0&act=relu&seeds=1&epochs=1&images=1000"
COOKIE = "mnistlab_visitor"


def browser_kept_id(page) -> str:
    """The visitor cookie the page's script wrote (waiting for it, at most a few seconds)."""
    for _ in range(50):
        kept = [c for c in page.context.cookies() if c["name"] == COOKIE]
        if kept:
            return kept[0]["value"]
        page.wait_for_timeout(100)
    raise AssertionError(f"no {COOKIE} cookie was written")


def test_the_visitors_id_survives_a_reload_and_another_browser_does_not_see_their_sweep(page, open_page,
                                                                                        base_url):
    open_app(page, base_url, SWEEP)
    secret = browser_kept_id(page)
    assert re.fullmatch(r"[0-9a-f]{32}", secret)
    with rerun(page):
        page.get_by_role("button", name="Start the sweep").click()
    expect(page.get_by_role("heading", name="Results")).to_be_visible(timeout=3 * TIMEOUT_MS)
    sweep_id = re.search(r"[?&]sweep=([0-9a-f]+)", page.url).group(1)

    open_app(page, base_url, "explore")  # a reload, without the sweep in the address
    assert browser_kept_id(page) == secret
    saved = page.get_by_role("combobox", name="Saved sweeps")
    expect(saved).to_have_value(re.compile(r"\(1 done\)$"))  # listed again: the server knew them
    assert_no_exception(page)

    other = open_page()  # another browser (its own cookies)
    open_app(other, base_url, "explore")
    assert browser_kept_id(other) != secret
    expect(other.get_by_text("none yet")).to_be_visible()  # the first visitor's sweep is not listed
    open_app(other, base_url, f"explore?sweep={sweep_id}")  # but its link opens it, as before
    expect(other.get_by_role("heading", name="Results")).to_be_visible()
    assert_no_exception(other)
