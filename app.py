"""MNIST Lab: `streamlit run app.py`.

This file has two parts. `streamlit run app.py` first imports it as a module and finds `app`, an
`st.App` whose lifespan starts importing torch as soon as the server starts (lab_server.py); then
Streamlit runs it as the script of every visit (as `__main__`): navigation, data check, sidebar.
"""

from pathlib import Path

import streamlit as st

HERE = Path(__file__).parent
PAGES = [  # (file, title, icon); a page whose file is not written yet is left out
    ("pages/start.py", "Start", ":material/home:"),
    ("pages/lesson.py", "Lesson", ":material/school:"),
    ("pages/dataset.py", "Dataset", ":material/grid_view:"),
    ("pages/tensors.py", "From tensors", ":material/functions:"),
    ("pages/build.py", "Build", ":material/account_tree:"),
    ("pages/train.py", "Train", ":material/model_training:"),
    ("pages/explore.py", "Explore", ":material/travel_explore:"),
    ("pages/draw.py", "Draw", ":material/draw:"),
    ("pages/classroom.py", "Class", ":material/groups:"),
]
# Streamlit serves the default page at the root only (its own path, e.g. /start, is "not found"), so
# the default is the start page, which needs no address of its own: every other page keeps its path
# (/lesson?step=N, /build?..., /explore?...).
DEFAULT_PAGE = "pages/start.py"


def pages() -> list:
    """The navigation's pages, made once a session: making them resolves and checks each page's file,
    a cost every rerun of every visitor paid. Per session, not per server: `st.navigation` marks the
    page it returns as this run's to call, so two visitors' runs must not share one page object."""
    if "lab_pages" not in st.session_state:
        st.session_state["lab_pages"] = [st.Page(path, title=title, icon=icon, default=path == DEFAULT_PAGE)
                                         for path, title, icon in PAGES if (HERE / path).exists()]
    return st.session_state["lab_pages"]


def main() -> None:
    """One run of a visitor's page, with the navigation and sidebar around it."""
    import class_ui  # noqa: F401  its browser-kept seat is one of the values `keep` writes
    import lab_ui  # torch: imported here, not when the server imports this file to start
    import visitor

    st.set_page_config(page_title="MNIST Lab", page_icon="🔢", layout="wide")
    page = st.navigation(pages())
    visitor.keep()  # the visitor's id, kept by their browser from the first page they open
    lab_ui.choose_dataset()  # before the data check: if one data set's files are missing, choose another
    sidebar = st.sidebar.empty()
    try:
        lab_ui.require_data()
        page.run()
    finally:  # also when the page stops early (st.stop) or reruns
        lab_ui.sidebar(sidebar)


if __name__ == "__main__":
    main()
else:
    import lab_server

    app = st.App(__file__, lifespan=lab_server.lifespan)
