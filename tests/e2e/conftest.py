"""The app in a real headless Chromium: one `streamlit run app.py` server for the session, a fresh
browser context per test, and helpers that wait on Streamlit's own signals instead of sleeping.

Every test here is marked `e2e` (`pytest -m "not e2e"` skips them locally; CI runs them).
"""

from __future__ import annotations

import os
import re
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import expect
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from bench import loadgen

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "screenshots"  # git-ignored; for people to look at
CHROMIUM = os.environ.get("MNISTLAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 800}
START_TIMEOUT_S = 120  # a cold start imports torch and may load MNIST on a busy 2-core machine
TIMEOUT_MS = 60_000    # the longest any one wait in a test may take

# Playwright's `expect` waits 5 s unless told: on a busy 2-core machine a page can take longer to
# redraw after a live refresh or a rerun, so every assertion waits as long as any other wait may.
expect.set_options(timeout=TIMEOUT_MS)

APP = '[data-testid="stApp"]'
IDLE = f'{APP}[data-test-connection-state="CONNECTED"][data-test-script-state="notRunning"]'


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.e2e)


# -- the server ----------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """The app's server with real MNIST ($MNISTLAB_DATA) and a throwaway models folder."""
    if not (ROOT / "app.py").exists():
        pytest.fail("app.py is missing: the e2e tests run the real app")
    work = tmp_path_factory.mktemp("e2e-server")
    models = work / "models"
    models.mkdir()
    srv = loadgen.Server(work / "streamlit.log", env={"MNISTLAB_MODELS": str(models)}).start(START_TIMEOUT_S)
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def base_url(server) -> str:
    return server.url


# -- the browser ---------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


# Opening a page's own URL (e.g. /build), Streamlit's frontend first probes the server under that
# path as a base URL, gets 404 for /build/_stcore/health and /build/_stcore/host-config, then finds
# the real root. That probe is the only console error we ignore.
BASE_URL_PROBE = re.compile(r"/[^/]+/_stcore/(health|host-config)$")


def benign(message) -> bool:
    return "404" in message.text and bool(BASE_URL_PROBE.search(message.location.get("url", "")))


class RunLog:
    """Streamlit's own run messages on one page's websocket, in order.

    The browser asks for a run (BackMsg rerun_script), the server starts it (new_session, with the
    run's id) and ends it (script_finished, same id). A fast rerun can flip stApp's
    data-test-script-state to "running" and back within one React render, so the attribute alone
    cannot say that a run happened; these messages can.
    """

    def __init__(self, page):
        self.page, self.ws, self.events = page, None, []
        page.on("websocket", self._attach)

    def _attach(self, ws):
        if not ws.url.endswith("/_stcore/stream"):
            return
        self.ws = ws
        ws.on("framesent", self._sent)
        ws.on("framereceived", self._received)

    def _sent(self, payload):
        if isinstance(payload, bytes) and BackMsg.FromString(payload).WhichOneof("type") == "rerun_script":
            self.events.append(("request", None, None))

    def _received(self, payload):
        if not isinstance(payload, bytes):
            return
        msg = ForwardMsg.FromString(payload)
        kind = msg.WhichOneof("type")
        if kind == "new_session":
            self.events.append(("start", msg.metadata.run.script_run_id, None))
        elif kind == "script_finished":
            self.events.append(("finish", msg.metadata.run.script_run_id, msg.script_finished))

    def mark(self) -> int:
        return len(self.events)

    def finished_since(self, mark: int) -> bool:
        """A run asked for after `mark` has ended, and did not hand over to another run (st.rerun)."""
        requested, started = False, set()
        for kind, run, status in self.events[mark:]:
            if kind == "request":
                requested = True
            elif kind == "start" and requested:
                started.add(run)
            elif kind == "finish" and run in started and status != ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                return True
        return False

    def wait(self, mark: int, timeout: float = TIMEOUT_MS) -> None:
        """Until `finished_since(mark)`. Woken by each websocket message; the short slices only let
        it notice when a reload replaced the socket it was listening to."""
        from playwright.sync_api import Error

        deadline = time.monotonic() + timeout / 1000
        while not self.finished_since(mark):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no script run finished within {timeout / 1000:.0f}s; "
                                   f"messages seen: {self.events[mark:]}")
            try:
                if self.ws is None or self.ws.is_closed():
                    self.page.wait_for_event("websocket", timeout=250)
                else:
                    self.ws.wait_for_event("framereceived", timeout=250)
            except Error:  # a slice ran out, or the socket closed under us: check again
                pass


def new_page(browser, console_errors: list):
    """A page in a fresh context (own cookies, storage, session) that records console errors."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.runs = RunLog(page)
    page.on("console", lambda m: m.type == "error" and not benign(m) and console_errors.append(
        f"console: {m.text} ({m.location.get('url')})"))
    page.on("pageerror", lambda e: console_errors.append(f"page error: {e}"))
    return page


@pytest.fixture
def page(browser, server):
    """A fresh page; at teardown the browser console and the server log must show no error."""
    errors: list[str] = []
    log_start = len(server.log())
    pg = new_page(browser, errors)
    yield pg
    pg.context.close()
    assert not errors, "errors in the browser console:\n" + "\n".join(errors)
    new_log = server.log()[log_start:]
    assert "Traceback (most recent call last)" not in new_log, "the server logged an exception:\n" + new_log


@pytest.fixture
def open_page(browser, server):
    """Opens more pages in fresh contexts (e.g. to follow a share URL); errors checked like `page`."""
    errors: list[str] = []
    pages = []

    def _open():
        pages.append(new_page(browser, errors))
        return pages[-1]

    yield _open
    for pg in pages:
        pg.context.close()
    assert not errors, "errors in the browser console:\n" + "\n".join(errors)


# -- helpers for tests ---------------------------------------------------------------------------

def wait_for_app(page, timeout: float = TIMEOUT_MS) -> None:
    """Until the app is connected and its script is not running (Streamlit's own signals)."""
    page.wait_for_selector(IDLE, state="attached", timeout=timeout)


def open_app(page, url: str, path: str = "") -> None:
    """Loads the app at `url` (the base URL, or any link into the app) + `path`, and waits until
    its first run has finished and rendered."""
    mark = page.runs.mark()
    page.goto(f"{url.rstrip('/')}/{path.lstrip('/')}" if path else url)
    page.runs.wait(mark)
    wait_for_app(page)


@contextmanager
def rerun(page, timeout: float = TIMEOUT_MS):
    """Wraps an action that makes the script run again; returns once that run has finished and
    the page shows it.

        with rerun(page):
            page.get_by_role("button", name="Next batch").click()
    """
    mark = page.runs.mark()
    yield
    page.runs.wait(mark, timeout)
    wait_for_app(page, timeout)


def goto_page(page, name: str) -> None:
    """Clicks a page in the navigation (sidebar or top) and waits for it to render."""
    label = page.locator('[data-testid="stMarkdownContainer"]').filter(
        has_text=re.compile(rf"^\s*{re.escape(name)}\s*$"))  # the link's text, without its icon
    link = page.locator('[data-testid="stSidebarNavLink"], [data-testid="stTopNavLink"]').filter(has=label)
    with rerun(page):
        link.first.click()


def assert_no_exception(page) -> None:
    """No Streamlit exception box on the page (an uncaught error in a page script)."""
    boxes = page.locator('[data-testid="stException"]')
    assert boxes.count() == 0, "exception shown on the page:\n" + "\n".join(boxes.all_inner_texts())


def screenshot(page, name: str) -> Path:
    """The whole page to screenshots/<name>.png (git-ignored), for people to look at.

    Streamlit scrolls inside its main container, not the document, so the viewport is made as tall
    as that container's content for the shot, then put back.
    """
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    height = page.evaluate("""() => Math.max(...[...document.querySelectorAll(
        '[data-testid="stMain"], [data-testid="stAppViewContainer"]')].map(e => e.scrollHeight))""")
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], min(int(height), 12_000))})
    try:
        page.screenshot(path=str(path))
    finally:
        page.set_viewport_size(size)
    return path
