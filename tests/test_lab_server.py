"""The server's start (lab_server.py): its sockets send at once, without waiting for the browser's ACK; a
reconnected session starts no file watchers when they are off, and gets its messages on its new connection."""

import os
import socket

import pytest

import lab_server


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="lists open files through /proc")
def test_the_servers_listening_socket_and_what_it_accepts_send_without_delay():
    # as Streamlit binds its port: a socket made as protocol 0, which asyncio leaves with Nagle on
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen()
    nodelay = (socket.IPPROTO_TCP, socket.TCP_NODELAY)
    outgoing = socket.create_connection(server.getsockname())  # one this process made itself
    try:
        assert server.getsockopt(*nodelay) == 0 and outgoing.getsockopt(*nodelay) == 0
        before = _open_fds()
        lab_server.send_without_delay()
        assert _open_fds() == before  # the copies it looked through are closed again
        assert server.getsockopt(*nodelay) == 1
        assert outgoing.getsockopt(*nodelay) == 0  # a connection, not the server's: left as it was
        server.accept()[0].close()  # (the outgoing one, from before)
        with socket.create_connection(server.getsockname()), server.accept()[0] as browser:
            assert browser.getsockopt(*nodelay) == 1  # a browser's, accepted after the start
    finally:
        outgoing.close()
        server.close()


def test_a_resumed_session_starts_no_file_watchers_when_they_are_off(monkeypatch):
    """Streamlit starts a session's watchers again when a dropped connection resumes it; with
    fileWatcherType "none" the server leaves them off, as it does for a new session."""
    from streamlit import config
    from streamlit.runtime.app_session import AppSession

    started = []
    monkeypatch.setattr(AppSession, "register_file_watchers", lambda self: started.append(self))
    lab_server.keep_file_watchers_off()
    lab_server.keep_file_watchers_off()  # once is enough: a second call wraps nothing twice
    monkeypatch.setattr(config, "get_option", lambda name: "none")
    AppSession.register_file_watchers("resumed")
    assert started == []
    monkeypatch.setattr(config, "get_option", lambda name: "auto")  # a teacher editing the app
    AppSession.register_file_watchers("resumed")
    assert started == ["resumed"]


def test_a_reconnected_sessions_messages_go_to_its_new_connection(monkeypatch):
    """Streamlit's sending loop holds each session's entry as it was when a pass began; a visitor who
    reconnected meanwhile gets its run on the connection it has now, not the closed one."""
    from types import SimpleNamespace

    from streamlit.runtime.runtime import Runtime

    sent = []
    monkeypatch.setattr(Runtime, "_send_message", lambda self, info, msg: sent.append((info.client, msg)))
    lab_server.send_to_the_current_connection()
    lab_server.send_to_the_current_connection()  # once is enough
    session = SimpleNamespace(id="s1")
    then = SimpleNamespace(client="closed socket", session=session)
    now = SimpleNamespace(client="new socket", session=session)
    connected = {"s1": now}
    runtime = SimpleNamespace(_session_mgr=SimpleNamespace(get_active_session_info=connected.get))
    Runtime._send_message(runtime, then, "script_finished")
    assert sent == [("new socket", "script_finished")]
    connected.clear()  # not connected at all: as Streamlit does (the old connection, which refuses it)
    Runtime._send_message(runtime, then, "delta")
    assert sent[-1] == ("closed socket", "delta")
