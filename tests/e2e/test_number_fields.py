"""Number fields as a browser fills them: what is typed is what is read ("1e3" is 1000, "12.5" is
refused, never cut to 12), and a refused value is told beside its field with what is allowed."""

import os
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import assert_no_exception, open_app, rerun
from tests.e2e.test_pages import printed_model

SHOTS = Path(os.environ.get("MNISTLAB_SHOTS", "/tmp/shots/fields"))
SIZES = [(1280, 720), (1920, 1080)]


def type_into(page, label: str, text: str) -> None:
    box = page.get_by_label(label, exact=True)
    with rerun(page):
        box.fill(text)
        box.press("Enter")


def address_dropout(page) -> list[str] | None:
    return parse_qs(urlparse(page.url).query).get("dropout")


def step_code(page) -> str:
    """The Lesson step's code block (the first on its page; its printout comes after it)."""
    return page.locator('[data-testid="stCode"]').first.inner_text()


@pytest.mark.parametrize("width, height", SIZES)
def test_build_reads_fc1_as_typed_and_refuses_a_fraction_beside_it(page, base_url, width, height):
    page.set_viewport_size({"width": width, "height": height})
    open_app(page, base_url, "build")
    type_into(page, "fc1 units", "1e3")
    expect(printed_model(page)).to_contain_text("out_features=1000")
    type_into(page, "fc1 units", "12.5")
    error = page.locator('[data-testid="stAlertContentError"]')
    expect(error).to_have_text("Hidden layer 1 size must be a whole number from 1 to 2,048; got '12.5'.")
    assert page.get_by_label("fc1 units", exact=True).input_value() == "12.5"  # as typed
    assert "out_features=12," not in page.content()
    type_into(page, "Seed", "3.7")
    expect(error.nth(1)).to_contain_text("Seed must be a whole number from 0 to 2,147,483,647; got 3.7.")
    field, told = (page.get_by_label("Seed", exact=True).bounding_box(), error.nth(1).bounding_box())
    assert abs(told["x"] - field["x"]) < 40 and 0 < told["y"] - field["y"] < 150  # right under it
    assert_no_exception(page)
    SHOTS.mkdir(parents=True, exist_ok=True)
    error.nth(1).scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / f"build-{width}x{height}.png"))


def test_build_dropout_steps_by_a_tenth_without_float_noise(page, base_url):
    open_app(page, base_url, "build")
    field = page.locator(".st-key-b_drop_0 input")  # hidden layer 1's own field, by its widget key
    expect(field).to_have_value("0")
    for tenths in (1, 2, 3):  # the arrow key: the field is too narrow for Streamlit's + and - at 1280 px
        with rerun(page):
            field.press("ArrowUp")  # a step is sent at once, as a click on + is
        expect(field).to_have_value(f"0.{tenths}")
        # layer 1's, in the address: written by the same rerun, which the field may show a moment before
        page.wait_for_function("want => new URLSearchParams(location.search).get('dropout') === want",
                               arg=f"0.{tenths},0")
        assert address_dropout(page) == [f"0.{tenths},0"]
    expect(printed_model(page)).to_contain_text("Dropout(p=0.3, inplace=False)")


@pytest.mark.parametrize("width, height", SIZES)
def test_lesson_tells_a_refused_hidden_size_beside_its_field(page, base_url, width, height):
    page.set_viewport_size({"width": width, "height": height})
    open_app(page, base_url, "lesson?step=5")
    type_into(page, "Hidden units (n_hidden)", "-3")
    error = page.locator('[data-testid="stAlertContentError"]')
    expect(error).to_have_text("Hidden units must be a whole number from 1 to 2,048; got -3. "
                               "The steps still use 256.")
    assert "n_hidden = 256" in step_code(page)
    field = page.get_by_label("Hidden units (n_hidden)", exact=True).bounding_box()
    told = error.bounding_box()
    assert abs(told["x"] - field["x"]) < 40 and 0 < told["y"] - field["y"] < 150
    type_into(page, "Hidden units (n_hidden)", "1e2")
    expect(error).to_have_count(0)
    assert "n_hidden = 100" in step_code(page)
    type_into(page, "Hidden units (n_hidden)", "-3")
    SHOTS.mkdir(parents=True, exist_ok=True)
    error.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / f"lesson-{width}x{height}.png"))
    assert_no_exception(page)
