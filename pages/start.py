"""Start: where a first visit lands (the app's root): the path through the pages, a sentence each."""

import streamlit as st

import lab_ui

lab_ui.entry_guard()

PATH = [  # (page, label, icon, what it is for): the order to take them in
    ("pages/lesson.py", "Lesson", ":material/school:",
     "The lesson's 14 steps, one at a time: MNIST in batches, a network from tensors, then the same as an "
     "`nn.Module` and an `nn.Sequential`; each step's code and what it printed."),
    ("pages/build.py", "Build", ":material/account_tree:",
     "Put your own network together (hidden layers, activations, init, seed) and see its weights and "
     "its guess for a digit before any training."),
    ("pages/train.py", "Train", ":material/model_training:",
     "Train the network from Build on the training digits, watch its loss and accuracy on them and on "
     "the validation digits held back from them as it learns, then see which test digits it gets wrong."),
    ("pages/explore.py", "Explore", ":material/travel_explore:",
     "Train many networks on equal terms and see which shapes win, by how much, at what cost."),
    ("pages/draw.py", "Draw", ":material/draw:",
     "Draw a digit (or upload one) and watch your trained networks read it."),
]
ASIDE = [  # pages to open along the way
    ("pages/dataset.py", "Dataset", ":material/grid_view:", "The digits batch by batch, pixel by pixel."),
    ("pages/tensors.py", "From tensors", ":material/functions:",
     "The lesson's network by hand, `torch.mm` by `torch.mm`."),
]

st.title("MNIST Lab")
st.markdown("How a neural network is put together, on MNIST's handwritten digits: the lesson *neural "
            "networks in PyTorch*, then a network of your own, built, trained and put to the test. "
            "The way through: **" + " → ".join(label for _, label, _, _ in PATH) + "**.")

for number, (page, label, icon, text) in enumerate(PATH, 1):
    with st.container(border=True):
        st.page_link(page, label=f"{number}. {label}", icon=icon)
        st.markdown(text)

st.markdown("Along the way:")
for col, (page, label, icon, text) in zip(st.columns(len(ASIDE)), ASIDE):
    col.page_link(page, label=label, icon=icon)
    col.caption(text)
