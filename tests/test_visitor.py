"""The values a visitor's browser keeps (visitor.py) through Streamlit's AppTest: what the page writes
into a cookie, and what it reads back from one (tests/e2e/test_visitor_browser.py does both in Chromium)."""

import re
from types import SimpleNamespace

import pytest
from streamlit.testing.v1 import AppTest

import visitor

APP = "../app.py"
pytestmark = pytest.mark.usefixtures("navigation_mode")  # see tests/conftest.py
SECRET = "0123456789abcdef" * 2


@pytest.fixture(autouse=True)
def models(tmp_path, monkeypatch):
    monkeypatch.setenv("MNISTLAB_MODELS", str(tmp_path))


def cookie_scripts(at: AppTest) -> list[str]:
    return [e.proto.body for e in at.get("html") if "document.cookie" in e.proto.body]


def browser_sends(monkeypatch, cookies: dict) -> None:
    """As if the browser's request for this session carried these cookies."""
    import streamlit

    monkeypatch.setattr(streamlit, "context", SimpleNamespace(cookies=cookies))


def test_a_first_visit_makes_a_secret_and_the_page_writes_it_into_a_cookie_for_a_year_and_more():
    at = AppTest.from_file(APP, default_timeout=60).run()
    secret = at.session_state[visitor.VISITOR.key]
    assert re.fullmatch(r"[0-9a-f]{32}", secret)
    (script,) = cookie_scripts(at)
    assert f'"mnistlab_visitor={secret}; path=/; max-age={visitor.MAX_AGE_S}; samesite=lax"' in script


def test_a_browser_that_sends_its_cookie_is_the_same_visitor_and_nothing_is_written(monkeypatch):
    browser_sends(monkeypatch, {"mnistlab_visitor": SECRET})
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert at.session_state[visitor.VISITOR.key] == SECRET and not cookie_scripts(at)


@pytest.mark.parametrize("sent", ["../../etc", "A" * 32, SECRET + "00", "x'; alert(1); '"])
def test_a_cookie_that_is_not_a_secret_of_ours_is_ignored_and_replaced(monkeypatch, sent):
    browser_sends(monkeypatch, {"mnistlab_visitor": sent})
    at = AppTest.from_file(APP, default_timeout=60).run()
    secret = at.session_state[visitor.VISITOR.key]
    assert secret != sent and re.fullmatch(r"[0-9a-f]{32}", secret) and len(cookie_scripts(at)) == 1


def test_a_value_outside_its_pattern_is_refused_and_the_id_is_not_the_secret():
    with pytest.raises(ValueError, match="keeps only values matching"):
        visitor.VISITOR.set("not hex")
    assert visitor.id_of(SECRET) == visitor.id_of(SECRET) != SECRET
    assert re.fullmatch(r"[0-9a-f]{32}", visitor.id_of(SECRET))
