"""The server's start: import what the first page needs while the first browser is still loading it.

`streamlit run app.py` finds `app` in app.py, an `st.App` whose lifespan is `lifespan` below: it starts
the imports on a thread as the server starts and returns at once, so the server answers meanwhile.
Without it, the first visit's script would start importing torch (and torchvision, which pulls in
torch._dynamo: about 2.5 s together) only once the browser had loaded the page and connected.
"""

from __future__ import annotations

import contextlib
import threading


def import_first_page() -> None:
    """Import torch, torchvision and Plotly: everything the first page (Dataset) runs on."""
    import lab_ui  # noqa: F401  torch, torchvision and the data set's code
    import mnistlab.plots  # noqa: F401  Plotly


@contextlib.asynccontextmanager
async def lifespan(app):
    # A visit arriving meanwhile imports lab_ui first (app.py), so it waits on Python's import lock
    # for lab_ui until this thread is done with it, then carries on; an import that fails here is
    # tried again, and fails visibly, in that visit.
    threading.Thread(target=import_first_page, name="import torch", daemon=True).start()
    yield
