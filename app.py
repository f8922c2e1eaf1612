"""MNIST Lab: `streamlit run app.py`."""

from pathlib import Path

import streamlit as st

import lab_ui

st.set_page_config(page_title="MNIST Lab", page_icon="🔢", layout="wide")

HERE = Path(__file__).parent
PAGES = [  # (file, title, icon); a page whose file is not written yet is left out
    ("pages/dataset.py", "Dataset", ":material/grid_view:"),
    ("pages/tensors.py", "From tensors", ":material/functions:"),
    ("pages/build.py", "Build", ":material/account_tree:"),
    ("pages/train.py", "Train", ":material/model_training:"),
    ("pages/draw.py", "Draw", ":material/draw:"),
]
page = st.navigation([st.Page(path, title=title, icon=icon) for path, title, icon in PAGES
                      if (HERE / path).exists()])
sidebar = st.sidebar.empty()
try:
    lab_ui.require_data()
    page.run()
finally:  # also when the page stops early (st.stop) or reruns
    lab_ui.sidebar(sidebar)
