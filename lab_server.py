"""The server's start: import what the first page needs while the first browser is still loading it.

`streamlit run app.py` finds `app` in app.py, an `st.App` whose lifespan is `lifespan` below: it starts
the imports on a thread as the server starts and returns at once, so the server answers meanwhile.
Without it, the first visit's script would start importing torch (and torchvision, which pulls in
torch._dynamo: about 2.5 s together) only once the browser had loaded the page and connected.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import sys
import threading

# What the other pages import (pages are scripts, run afresh each visit; their modules load once).
# Not mnistlab.ray_engine: Ray is imported only when a sweep chooses it.
OTHER_PAGES = ("pyarrow", "streamlit_drawable_canvas", "mnistlab.codegen", "mnistlab.activations",
               "mnistlab.tensors", "mnistlab.notebook", "mnistlab.share", "mnistlab.model_files",
               "mnistlab.preprocess", "mnistlab.jobs", "mnistlab.dynamics", "mnistlab.lesson",
               "mnistlab.sweep", "mnistlab.sweep_plots", "page_cache")


def print_addresses() -> None:
    """Where to open the app, on the terminal, as Streamlit's own welcome would say it. That one is off
    (.streamlit/config.toml): it asked checkip.amazonaws.com for an "External URL" a classroom does
    not use, and offline or behind a school's firewall logged "Did not auto detect external IP",
    which reads like an error to a teacher."""
    from streamlit import config
    from streamlit.net_util import get_internal_ip
    from streamlit.web.server.server_util import get_url

    address = config.get_option("server.address")
    lines = ["", "  MNIST Lab is running. Open it in a browser:", ""]
    if address and address not in ("0.0.0.0", "::"):  # noqa: S104  one address, e.g. 127.0.0.1
        lines.append(f"  URL: {get_url(address)}")
    else:
        lines.append(f"  Local URL: {get_url('localhost')}")
        if network := get_internal_ip():
            lines.append(f"  Network URL: {get_url(network)}  (for the other computers on this network)")
    print("\n".join(lines) + "\n", flush=True)


def import_first_page() -> None:
    """Import torch, torchvision and Plotly: everything the first page (Dataset) runs on; then the
    other pages' modules, and freeze them all out of the garbage collector.

    With torch, Plotly and pandas loaded a full garbage collection walks ~420,000 objects that live
    as long as the server: 200-400 ms on a busy 2-core machine. Streamlit ran one after every script
    run (runner.postScriptGC, now off in .streamlit/config.toml); Python's own still runs now and
    then. gc.freeze() moves them out of the collector's reach, so it walks only what visitors made.
    """
    import lab_ui  # noqa: F401  torch, torchvision, pandas and the data set's code
    import mnistlab.plots  # noqa: F401  Plotly

    for name in OTHER_PAGES:
        with contextlib.suppress(ImportError):  # a module that fails here fails visibly in its page
            importlib.import_module(name)
    gc.freeze()


def connect_ray() -> None:
    """With MNISTLAB_RAY_ADDRESS (or RAY_ADDRESS) set, join that Ray cluster now, from the server's main
    thread, where Ray's driver can install its signal handlers (a visitor's script thread cannot);
    every training then runs on the cluster (mnistlab.jobs)."""
    import os

    address = os.environ.get("MNISTLAB_RAY_ADDRESS") or os.environ.get("RAY_ADDRESS")
    if address:
        try:
            import ray
        except ModuleNotFoundError:  # every training then says so where it is started (mnistlab.jobs)
            print(f"MNIST Lab: a Ray address is set ({address}), but Ray is not installed: "
                  "pip install -r requirements-ray.txt, or unset MNISTLAB_RAY_ADDRESS and RAY_ADDRESS.",
                  file=sys.stderr)
            return
        if not ray.is_initialized():
            ray.init(address=address, logging_level="warning", log_to_driver=False)


def send_without_delay() -> None:
    """Turn Nagle's algorithm off on the server's own TCP sockets; the connections it accepts inherit that.

    Streamlit binds its port itself, with a socket made as protocol 0, and asyncio sets TCP_NODELAY only
    on sockets made as TCP by name, so every websocket kept Nagle on: after the first message of a run
    the rest waited for the browser's delayed ACK (40 ms on Linux, up to 200 ms on Windows). Every
    rerun took 44 ms however little its script did; a one-line page now reruns in 6 ms.
    """
    import os
    import socket

    folder = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        try:
            fd = os.dup(int(name))  # a copy: closing it leaves the server's own open
        except (OSError, ValueError):
            continue  # gone meanwhile
        try:
            sock = socket.socket(fileno=fd)
        except OSError:
            os.close(fd)  # not a socket
            continue
        with sock, contextlib.suppress(OSError):
            if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
                if sock.getsockname()[1] and not _connected(sock):  # bound or listening: the server's
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _connected(sock) -> bool:
    try:
        sock.getpeername()
        return True
    except OSError:
        return False


def keep_file_watchers_off() -> None:
    """Leave a reconnected session's file watchers off, as `server.fileWatcherType = "none"` asks.

    Streamlit checks that setting when it makes a session, but not when a dropped connection resumes
    one: it starts the session's watchers then, and after the next run they walk the path of every
    module the server has imported (torch's, Plotly's: thousands) on the server's event loop. Every
    reconnect (a reload, a school's flaky network) froze the whole server for 0.5-1 s here, its other
    visitors waiting; under a class's load that reached tens of seconds.
    """
    from streamlit import config
    from streamlit.runtime.app_session import AppSession

    register = AppSession.register_file_watchers
    if getattr(register, "mnistlab", False):
        return

    def register_file_watchers(self) -> None:
        if config.get_option("server.fileWatcherType") != "none":
            register(self)

    register_file_watchers.mnistlab = True
    AppSession.register_file_watchers = register_file_watchers


def send_to_the_current_connection() -> None:
    """Send a session's messages to the connection it has now, not the one it had.

    Streamlit's sending loop walks the sessions as they were when the loop began, yielding after
    every message. Under load one pass takes seconds, and a visitor who reconnects meanwhile (a
    reload, a dropped network) has the run it asked for taken from its queue by that pass and sent
    to its closed connection: lost, its page waiting forever. With 200 students on 2 cores about half
    the reconnects were (61 of 142); none since. The session's entry is looked up again at each message.
    """
    from streamlit.runtime.runtime import Runtime

    send = Runtime._send_message
    if getattr(send, "mnistlab", False):
        return

    def _send_message(self, session_info, msg) -> None:
        current = self._session_mgr.get_active_session_info(session_info.session.id)
        send(self, current or session_info, msg)

    _send_message.mnistlab = True
    Runtime._send_message = _send_message


@contextlib.asynccontextmanager
async def lifespan(app):
    send_without_delay()
    keep_file_watchers_off()
    send_to_the_current_connection()
    print_addresses()
    # A visit arriving meanwhile imports lab_ui first (app.py), so it waits on Python's import lock
    # for lab_ui until this thread is done with it, then carries on; an import that fails here is
    # tried again, and fails visibly, in that visit.
    threading.Thread(target=import_first_page, name="import torch", daemon=True).start()
    connect_ray()  # meanwhile (a no-op without a Ray address)
    yield
