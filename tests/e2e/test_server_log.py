"""The server started exactly as the README says logs nothing but real problems.

The README makes `.venv` inside the app's folder and starts `.venv/bin/streamlit run app.py`. With
Streamlit's file watcher on, the server watched every folder under the app's (6,197 here, all but 11
of them in .venv), and a fresh install's server logged 5,472 "Inotify queue overflowed" warnings,
18-119 per page visit (issue 22); .streamlit/config.toml turns the watcher off. The overflow needs a
busy moment to start (it did not come here on a quiet machine), so besides the log the test counts
the server's inotify watches, which says directly whether .venv is watched.

It runs the README's command line, with the streamlit of the venv running the tests (CI makes that
venv in the repository's .venv), from the repository's root, visits every page in Chromium, and
reads the log.
"""

import re
import shlex
import sys
import time
from pathlib import Path

import pytest

from bench import loadgen
from tests.e2e.conftest import ROOT, START_TIMEOUT_S, assert_no_exception, goto_page, new_page, open_app

PROBLEM = re.compile(r"warn|error|exception|traceback|overflow", re.IGNORECASE)


def readme_app_command() -> list[str]:
    """The README's `streamlit run` command (after its `<!-- app command -->` marker), with the
    streamlit of the venv running the tests, by that venv's python (its script's own #! line names
    the venv it was installed in)."""
    text = (ROOT / "README.md").read_text()
    block = text.split("<!-- app command -->", 1)[1].split("```", 2)[1]
    line = next(part for part in block.split("&&") if "streamlit run" in part)
    program, *args = shlex.split(line)
    assert program == ".venv/bin/streamlit", f"the README starts the app with {line.strip()!r}"
    return [sys.executable, str(Path(sys.executable).parent / "streamlit"), *args]


def inotify_watches(pid: int) -> int | None:
    """How many folders the process watches with inotify (None where /proc cannot say)."""
    try:
        return sum(line.startswith("inotify wd:") for info in Path(f"/proc/{pid}/fdinfo").iterdir()
                   for line in info.read_text(errors="replace").splitlines())
    except OSError:
        return None


def test_the_readme_command_logs_no_warning_while_every_page_is_visited(browser, tmp_path):
    if not (ROOT / ".venv").is_dir():
        pytest.skip("the README's situation needs its .venv inside the repository (as CI makes it)")
    command = readme_app_command()
    assert command[2:] == ["run", "app.py"]
    server = loadgen.Server(tmp_path / "streamlit.log", env={"MNISTLAB_MODELS": str(tmp_path)},
                            command=command).start(START_TIMEOUT_S)
    errors: list[str] = []
    try:
        page = new_page(browser, errors)
        open_app(page, server.url)
        names = page.locator('[data-testid="stSidebarNavLink"] [data-testid="stMarkdownContainer"]'
                             ).all_inner_texts()
        assert len(names) >= 7, f"the navigation shows {names}"
        for name in names:
            goto_page(page, name.strip())
            assert_no_exception(page)
        page.context.close()
        time.sleep(2)  # the watcher wrote its warnings within a second of each visit
        watched = inotify_watches(server.proc.pid)
    finally:
        server.stop()
    assert not errors, "errors in the browser console:\n" + "\n".join(errors)
    assert watched in (0, None), f"the server watches {watched} folders for changes (.venv's among them)"
    problems = [line for line in server.log().splitlines() if PROBLEM.search(line)]
    assert not problems, f"{len(problems)} problem lines in the server's log:\n" + "\n".join(problems[:5])
