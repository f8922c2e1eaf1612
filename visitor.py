"""Values the visitor's browser keeps across reloads and sessions: a cookie per value, written by a
line of JavaScript on the page and read by the server from the request that opened the session
(`st.context.cookies`). The first is the visitor's id, which their sweeps are saved under.

A value set in a session is in its `st.session_state` at once; the browser sends its cookie from the
next session on (a reload, a new tab). `keep()`, run on every page (app.py), writes each value whose
cookie the browser has not sent yet.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets

import streamlit as st

COOKIE_PREFIX = "mnistlab_"
MAX_AGE_S = 400 * 24 * 3600  # the longest a browser keeps a cookie (Chrome caps it at 400 days)
CONTAINER = "lab_browser_kept"  # the hidden container the script is written into
HIDDEN = f"<style>.st-key-{CONTAINER} {{display: none}}</style>"


class BrowserValue:
    """One value the browser keeps: `get()`, `set(value)`, `clear()`. Only values matching `pattern`
    are kept (they go into a cookie and a script as they are), and a cookie that does not match is
    ignored, as if absent."""

    def __init__(self, name: str, pattern: str = r"[A-Za-z0-9_-]{1,128}"):
        self.name, self.pattern = name, re.compile(pattern)
        self.key = f"lab_browser_{name}"  # in st.session_state
        self.cookie = COOKIE_PREFIX + name
        VALUES.append(self)

    def __repr__(self) -> str:
        return f"BrowserValue({self.name!r})"

    def _valid(self, value) -> bool:
        return isinstance(value, str) and self.pattern.fullmatch(value) is not None

    def sent(self) -> str | None:
        """The value the browser sent when this session opened (None: none, or not a valid one)."""
        value = st.context.cookies.get(self.cookie)
        return value if self._valid(value) else None

    def get(self) -> str | None:
        """The value: set in this session, else the one the browser sent, else None."""
        ss = st.session_state
        if self.key not in ss:
            ss[self.key] = self.sent()
        return ss[self.key]

    def set(self, value: str) -> None:
        if not self._valid(value):
            raise ValueError(f"{self!r} keeps only values matching {self.pattern.pattern}")
        st.session_state[self.key] = value

    def clear(self) -> None:
        st.session_state[self.key] = None

    def script(self) -> str:
        """JavaScript that makes the browser's cookie this session's value ('' when it already is)."""
        value = self.get()
        if value == self.sent():
            return ""
        if value is None:
            return f"document.cookie = {json.dumps(self.cookie + '=; path=/; max-age=0; samesite=lax')};"
        cookie = f"{self.cookie}={value}; path=/; max-age={MAX_AGE_S}; samesite=lax"
        return f"document.cookie = {json.dumps(cookie)} + secure;"


VALUES: list[BrowserValue] = []
VISITOR = BrowserValue("visitor", r"[0-9a-f]{32}")  # 128 random bits, made by `visitor_id`


def visitor_id() -> str:
    """This visitor's id, as sweeps are saved under it: 32 hex digits derived from the random 128-bit
    secret their browser keeps (made on their first visit). Knowing the id gives nobody the secret: a
    database's owners cannot be typed into a browser to read another's sweeps."""
    secret = VISITOR.get()
    if secret is None:
        secret = secrets.token_hex(16)
        VISITOR.set(secret)
    return id_of(secret)


def id_of(secret: str) -> str:
    """The visitor id of a browser's secret (one way: the id does not give the secret back)."""
    return hashlib.sha256(f"mnistlab visitor {secret}".encode()).hexdigest()[:32]


def keep() -> None:
    """Writes into the browser every value it has not sent back yet (the visitor's id from the first
    visit on), in a container that takes no room. Call once a run, on every page."""
    visitor_id()
    lines = [s for s in (v.script() for v in VALUES) if s]
    if not lines:
        return
    st.html(HIDDEN)
    with st.container(key=CONTAINER):
        st.html("<script>(() => {\nconst secure = location.protocol === 'https:' ? '; secure' : '';\n"
                + "\n".join(lines) + "\n})();</script>", unsafe_allow_javascript=True)
