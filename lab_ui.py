"""Streamlit-side helpers shared by every page: cached data, the visitor's Build, errors, sidebar.

The data set is loaded once per server (`st.cache_resource`) and only ever read; each visitor's
network configuration lives in their own `st.session_state`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import pandas  # noqa: F401  see below
import streamlit as st
import torch

from mnistlab import data, jobs, network
from mnistlab.errors import DataError, LabError

# Plotly's validators look pandas up in sys.modules; while another thread is still importing it they
# find it half made and fail (AttributeError: partially initialized module 'pandas'). Every page
# imports this module before it draws, so pandas is whole by then.

# One server, a whole classroom: each training run gets one core (mnistlab.train runs at most one
# per two cores at once), leaving the rest to everyone else's pages. At these layer sizes one
# thread trains about as fast as two: the matrices are too small to split well.
torch.set_num_threads(1)


def entry_guard() -> None:
    """Call first in every page file: makes sure app.py (navigation, sidebar, data check) runs.

    With a pages/ folder beside app.py, a fresh server starts in Streamlit's older multipage mode,
    and until someone opens the app's root, a deep link (e.g. a shared Build link) runs the page
    file alone. Leave that mode and rerun: the same URL then goes through app.py's st.navigation.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


@st.cache_resource(show_spinner="Loading MNIST…")
def split(train: bool = True) -> data.Split:
    """One split of MNIST in memory, shared by all visitors (read-only)."""
    return data.load_split(train)


def require_data() -> None:
    """Make sure both splits are loaded; download them on a first visit, with visible progress.

    Without files and without a network the page stops with what to do instead of a traceback.
    """
    try:
        if data.files_present():
            split(True), split(False)
            return
        with st.status(f"Downloading MNIST (about 12 MB) to {data.data_root()} …", expanded=True) as status:
            st.write("This happens once; later visits read the files from disk.")
            split(True), split(False)
            status.update(label="MNIST downloaded", state="complete", expanded=False)
    except DataError as e:
        st.error(str(e))
        st.info("To use MNIST files you already have, start the app with the folder that holds "
                "`MNIST/raw/` in `MNISTLAB_DATA`, e.g.\n\n"
                "`MNISTLAB_DATA=/path/to/data streamlit run app.py`")
        st.stop()


@contextlib.contextmanager
def show_errors():
    """Show an error the user caused (a LabError) as `st.error`; the rest of the page still runs."""
    try:
        yield
    except LabError as e:
        st.error(str(e))


# -- the visitor's Build configuration, read by Train ---------------------------------------------

@dataclass(frozen=True)
class Build:
    """The visitor's network from Build (what Train trains) and the device it runs on."""

    network: network.Network = network.Network()
    device: str = "cpu"

    @property
    def is_default(self) -> bool:
        """The lesson's network, untouched."""
        return self.network == network.Network()


def owner() -> jobs.Owner:
    """The visitor, as the job queue knows them: their jobs share one fair turn, and end once their
    session is gone (the token lives only in its state)."""
    return st.session_state.setdefault("owner", jobs.Owner())


def default_build() -> Build:
    return Build(network.Network(), network.available_devices()[0])


def current_build() -> Build:
    """`st.session_state["build"]`."""
    if "build" not in st.session_state:
        st.session_state["build"] = default_build()
    return st.session_state["build"]


def set_build(net: network.Network, device: str | None = None) -> None:
    """Make `net` the visitor's network (on `device`, or the one it had)."""
    st.session_state["build"] = Build(net, device or current_build().device)


# -- display -------------------------------------------------------------------------------------

def device_label(device: str) -> str:
    """E.g. "cuda (NVIDIA H200)" or "cpu"."""
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{device} ({torch.cuda.get_device_name()})"
    return device


def sidebar(place=None) -> None:
    """The device the visitor's network uses and where the data set lives (in `place`, e.g. an
    `st.sidebar.empty()` filled after the page ran, so a device just chosen shows at once)."""
    (place or st.sidebar).caption(f"**Device:** {device_label(current_build().device)}  \n"
                                  f"**Data:** `{data.data_root()}`")


def run_label(number: int, run) -> str:
    """How every page names a session's training run: "Run 3: 784-128-64-10 relu, adam ...: 97.1%"."""
    return f"Run {number}: {run.label()}"


def plot(fig, **kwargs) -> None:
    """A Plotly figure at full width, without Plotly's logo in the toolbar."""
    st.plotly_chart(fig, width="stretch", config={"displaylogo": False}, **kwargs)
