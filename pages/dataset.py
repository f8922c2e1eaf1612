"""Dataset: browse MNIST batch by batch, as `images, labels = next(iter(trainloader))` gives them."""

import streamlit as st
import torch

import lab_ui
from mnistlab import plots
from mnistlab.data import MEAN, STD, FastLoader, normalize, normalize_code
from mnistlab.network import MAX_SEED

MAX_BATCH, MAX_SHOWN = 512, 64
BEFORE = "0 to 255 (stored)"
# The lesson's Normalize first; the others are what the Train page also offers (see its help).
VIEWS = {"−1 to 1 (the lesson's Normalize)": "lesson", "MNIST's mean and std": "mnist",
         "0 to 1 (ToTensor alone)": "none"}

lab_ui.entry_guard()

st.title("Dataset")
st.caption("MNIST through the lesson's `trainloader`: each batch is a tensor of images and one of labels.")

c = st.columns([1.2, 1, 1, 1, 1], vertical_alignment="bottom")
split_name = c[0].segmented_control("Split", ["train", "test"], default="train", key="ds_split",
                                    required=True)
batch_size = c[1].number_input("Batch size", 1, MAX_BATCH, 64, key="ds_batch_size")
seed = c[2].number_input("Seed", 0, MAX_SEED, 0, key="ds_seed")
shuffle = c[3].toggle("Shuffle", True, key="ds_shuffle")
advance = c[4].button("Next batch", type="primary", icon=":material/skip_next:")

# The visitor's loader lives in their session: "Next batch" is `next(dataiter)`, and a new pass
# (a new shuffle) starts when the split is used up, as with a DataLoader.
settings = (split_name, int(batch_size), bool(shuffle), int(seed))
with lab_ui.show_errors():
    if st.session_state.get("ds_settings") != settings:
        loader = FastLoader(lab_ui.split(split_name == "train"), int(batch_size), shuffle, int(seed))
        st.session_state.update(ds_settings=settings, ds_loader=loader, ds_iter=iter(loader), ds_pass=1,
                                ds_number=0)
        advance = True
    if advance:
        try:
            st.session_state["ds_batch"] = next(st.session_state["ds_iter"])
            st.session_state["ds_number"] += 1
        except StopIteration:
            st.session_state["ds_iter"] = iter(st.session_state["ds_loader"])
            st.session_state["ds_batch"] = next(st.session_state["ds_iter"])
            st.session_state.update(ds_number=1, ds_pass=st.session_state["ds_pass"] + 1)

if "ds_batch" not in st.session_state:
    st.stop()
images, labels = st.session_state["ds_batch"]
n = len(labels)
loader = st.session_state["ds_loader"]

st.subheader(f"Batch {st.session_state['ds_number']} of {len(loader)}"
             + (f" (pass {st.session_state['ds_pass']})" if st.session_state["ds_pass"] > 1 else ""))
st.code(f">>> images.shape\n{images.shape}\n>>> labels.shape\n{labels.shape}\n"
        f">>> images.view(images.shape[0], -1).shape   # flattened: 784 inputs per image\n"
        f"{images.view(n, -1).shape}", language="python")
shown = min(n, MAX_SHOWN)
lab_ui.plot(plots.digit_grid(images[:shown], labels[:shown],
                             title="The batch's digits with their labels"
                                   + (f" (first {shown} of {n})" if shown < n else "")))


@st.fragment
def one_image() -> None:
    """One image's 784 values. A fragment: picking another image or view redraws only this part, and
    only one 784-number figure is drawn at a time (each takes the browser about a quarter second)."""
    st.subheader("One image, pixel by pixel")
    index = st.slider("Image in the batch", 0, n - 1, 0, key="ds_index") if n > 1 else 0
    view = st.segmented_control(
        "Pixel values", [BEFORE, *VIEWS], default=BEFORE, required=True, key="ds_view",
        help="What the network reads. With the lesson's Normalize the black background is −1; ToTensor "
             "alone leaves it at 0.")
    image, label = images[min(index, n - 1)], int(labels[min(index, n - 1)])
    stored = ((image * STD + MEAN) * 255).round()  # undo the lesson's Normalize: the stored 8-bit values
    if view == BEFORE:
        lab_ui.plot(plots.pixel_values(stored, decimals=0,
                                       title=f"images[{index}], label {label}: stored 8-bit values"))
    else:
        name = VIEWS[view]
        how = "ToTensor (÷255)" + (f" and {normalize_code(name)}" if name != "none" else "")
        lab_ui.plot(plots.pixel_values(normalize(stored.to(torch.uint8)[0], name), decimals=1,
                                       title=f"images[{index}] after {how}"))


one_image()

st.subheader(f"Class counts in the {split_name} split")
lab_ui.plot(plots.class_counts(lab_ui.split(split_name == "train").class_counts(),
                               title=f"{len(loader.split):,} images"))
