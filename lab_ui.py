"""Streamlit-side helpers shared by every page: cached data, the visitor's Build, errors, sidebar, and
the live view of a job that runs (a training, a sweep).

The data set is loaded once per server (`st.cache_resource`) and only ever read; each visitor's
network configuration lives in their own `st.session_state`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import pandas  # noqa: F401  see below
import plotly.graph_objects as go
import streamlit as st
import torch
from sqlalchemy.exc import SQLAlchemyError

from mnistlab import data, db, jobs, network, share
from mnistlab import dataset as datasets
from mnistlab.errors import ConfigError, DataError, LabError

# Plotly's validators look pandas up in sys.modules; while another thread is still importing it they
# find it half made and fail (AttributeError: partially initialized module 'pandas'). Every page
# imports this module before it draws, so pandas is whole by then.

# One server, a whole classroom: each training run gets one core (mnistlab.jobs runs at most one
# per two cores at once), leaving the rest to everyone else's pages. At these layer sizes one
# thread trains about as fast as two: the matrices are too small to split well.
torch.set_num_threads(1)

LIVE_REFRESH_S = 0.5  # how often a page redraws a job that runs


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


# -- the data set: chosen once, in the sidebar; every page follows ---------------------------------

DATA_PARAM = "data"  # ?data=fashion: the link's data set (absent: MNIST, or the one chosen earlier)


def choose_dataset() -> datasets.Dataset:
    """The sidebar's data set menu, read before the page runs. A link's `?data=` wins when it differs
    from what the app last wrote there; the choice then goes into the address bar of every page (not
    for MNIST, the default), so a copied link opens the same data set."""
    ss = st.session_state
    linked = st.query_params.get(DATA_PARAM)
    if linked is not None and linked != ss.get("lab_data_url"):
        try:
            ss["lab_dataset"] = share.linked_dataset({DATA_PARAM: linked}).name
        except ConfigError as e:
            st.sidebar.warning(f"Link value data={linked[:40]!r} was not used: {e}",
                               icon=":material/link_off:")
    ss.setdefault("lab_dataset", datasets.DEFAULT.name)
    name = st.sidebar.radio("Data set", list(datasets.DATASETS), key="lab_dataset",
                            format_func=lambda n: datasets.DATASETS[n].title,
                            help="What every page shows, trains on and tests with. Links to a page "
                                 "carry it (?data=fashion).")
    value = None if name == datasets.DEFAULT.name else name
    if st.query_params.get(DATA_PARAM) != value:
        if value is None:
            del st.query_params[DATA_PARAM]
        else:
            st.query_params[DATA_PARAM] = value
    ss["lab_data_url"] = value
    return datasets.DATASETS[name]


def dataset() -> datasets.Dataset:
    """The data set this visitor chose (MNIST until they choose)."""
    return datasets.get(st.session_state.get("lab_dataset", datasets.DEFAULT.name))


def link_params() -> dict[str, str]:
    """What a page's own links add so the data set comes along: {} for MNIST, else {"data": name}."""
    name = dataset().name
    return {} if name == datasets.DEFAULT.name else {DATA_PARAM: name}


@st.cache_resource(show_spinner="Loading the data set…")
def _split(train: bool, name: str) -> data.Split:
    return data.load_split(train, dataset=datasets.get(name))


def split(train: bool = True, of: datasets.Dataset | str | None = None) -> data.Split:
    """One split of a data set (the visitor's, unless `of` names another) in memory, loaded once per
    server and shared by all visitors (read-only)."""
    return _split(bool(train), datasets.get(of if of is not None else dataset()).name)


def shown_test_images(of: datasets.Dataset | str | None = None) -> int:
    """How many test images pages may show one by one: the first ones, before the hidden part a class
    challenge scores on (`challenge.hidden_indices`: the last 5,000). Accuracies still count them all."""
    from mnistlab import challenge

    return int(challenge.hidden_indices(datasets.get(of if of is not None else dataset()))[0])


def hidden_note(of: datasets.Dataset | str | None = None) -> str:
    """The caption where a page leaves the hidden test images out."""
    d = datasets.get(of if of is not None else dataset())
    first = shown_test_images(d)
    return (f"Test images {first:,} to {d.test_size - 1:,} are kept hidden for class challenges: no page "
            f"shows them one by one (test accuracy still counts every test image).")


@st.cache_resource(show_spinner=False)
def _shown_test(name: str) -> data.Split:
    from mnistlab import challenge

    return challenge.part(_split(False, name), torch.arange(shown_test_images(name)))


def shown_test(of: datasets.Dataset | str | None = None) -> data.Split:
    """The test images pages may show one by one (`shown_test_images`), as a split, once per server."""
    return _shown_test(datasets.get(of if of is not None else dataset()).name)


def require_data() -> None:
    """Make sure both splits of the chosen data set are loaded: unpacked from Debian's package or
    downloaded on a first visit, with visible progress.

    Without files the page stops with what to do instead of a traceback; the other data set still
    works (the sidebar's menu stays).
    """
    ds = dataset()
    if st.session_state.get("lab_data_ready") == ds.name:  # checked on this session's first run of it
        return
    progress = st.empty()
    try:
        if data.files_present(dataset=ds):
            split(True), split(False)
            st.session_state["lab_data_ready"] = ds.name
            return
        if data.debian_available(dataset=ds):
            label = f"Unpacking {ds.title} from {ds.debian_folder} to {data.data_root(dataset=ds)} …"
        else:
            label = f"Downloading {ds.title} ({ds.download_size}) to {data.data_root(dataset=ds)} …"
        with progress.status(label, expanded=True) as status:
            st.write("This happens once; later visits read the files from disk.")
            split(True), split(False)
            status.update(label=f"{ds.title} is ready", state="complete", expanded=False)
        st.session_state["lab_data_ready"] = ds.name
    except DataError as e:
        progress.empty()  # one message: no "Downloading…" box left above what went wrong
        others = [d.title for d in datasets.DATASETS.values() if d != ds]
        st.error(f"{e}\n\nTo use files you already have, start the app again with "
                 f"`MNISTLAB_DATA=/path/to/data streamlit run app.py`. Meanwhile {' and '.join(others)} "
                 f"may be there: choose it in the sidebar.",
                 icon=":material/cloud_off:")
        st.stop()


def require_database() -> None:
    """Stops this page, with what is wrong and what to do, when the app's database (`db`: an SQLite
    file, or the server MNISTLAB_DB names) cannot be used. Only the pages that keep things in it
    (Explore's saved sweeps, a class) call this; every other page works without it."""
    problem = _database_problem(db.url_text())
    if problem:
        st.error(problem, icon=":material/database:")
        st.stop()


@st.cache_data(ttl=30, show_spinner=False)  # per setting; a server that comes back is used within 30 s
def _database_problem(setting: str) -> str | None:
    try:
        with db.engine().connect():
            return None
    except ConfigError as e:
        return f"{e} Start the app again with a valid MNISTLAB_DB, or without it to use an SQLite file."
    except SQLAlchemyError as e:
        reason = (str(getattr(e, "orig", None) or e).strip().splitlines() or [type(e).__name__])[0]
        return (f"The app's database ({db.redacted(db.url())}) cannot be used: {reason}. Saved sweeps and "
                f"classes are kept there; the other pages work without it.")


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
                                  f"**Data:** `{data.data_root(dataset=dataset())}`")


def whole_field(place, label: str, key: str, **kwargs):
    """A number field for a whole number that passes on what was typed, for the caller's check to
    accept or refuse with its reason beside the field. Streamlit's whole-number field cuts what it is
    given ("12.5" becomes 12, "1e3" becomes 1) and one with bounds drops a value outside them; this
    one takes any number: 1000 for "1e3", 12.5 for "12.5". No bounds: the caller checks."""
    return typed(place.number_input(label, key=key, step=1.0, format="%g", **kwargs))


def typed(value):
    """A number field's value as the number typed: a float with no fraction is that whole number
    (what a whole-number check reads); 12.5 stays 12.5."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def run_label(number: int, run) -> str:
    """How every page names a session's training run: "Run 3: 784-128-64-10 relu, adam ...: test accuracy
    97.1%"."""
    return f"Run {number}: {run.label()}"


def plot(fig, **kwargs) -> None:
    """A Plotly figure at full width, without Plotly's logo in the toolbar. A figure is not changed
    once plotted (a cached one is shared by every visitor): what is sent of it is made once (`Sent`)."""
    st.plotly_chart(Sent.of(fig), width="stretch", config={"displaylogo": False}, **kwargs)


class Sent(go.Figure):
    """What `st.plotly_chart` sends of a figure, its dict (`to_dict`, the one thing it asks of a figure),
    made once per figure rather than on every rerun: Plotly's `to_dict` deep-copies the whole figure,
    template and all, each time it is asked (about a tenth of a busy classroom server's time went there,
    for figures most of which come from a cache and never change)."""

    def __init__(self, spec: dict):  # no Plotly object tree: only the dict it was made from
        self._spec = spec

    def to_dict(self) -> dict:
        return self._spec

    @classmethod
    def of(cls, fig):
        if not isinstance(fig, go.Figure) or isinstance(fig, cls):
            return fig  # a dict, a list: Streamlit checks it through Plotly as before
        spec = fig.__dict__.get("_lab_sent")
        if spec is None:
            spec = fig._lab_sent = fig.to_dict()
        return cls(spec)


def while_running(key: str, finish, draw) -> None:
    """The live view of the job in `st.session_state[key]` (a `jobs.TrainingJob`, a sweep): redrawn
    every LIVE_REFRESH_S seconds by `draw(job)` without rerunning the rest of the page; once the job is
    done, `finish(job)` takes its result and the whole page reruns to show it."""

    @st.fragment(run_every=LIVE_REFRESH_S)
    def live() -> None:
        job = st.session_state.get(key)
        if job is None:
            return
        if job.done:
            finish(job)
            st.rerun()
        draw(job)

    live()
