"""Dataset: browse the chosen data set (MNIST or Fashion-MNIST) batch by batch, as
`images, labels = next(iter(trainloader))` gives them."""

import hashlib

import streamlit as st
import torch

import lab_ui
import page_cache
from mnistlab import lesson_step, plots
from mnistlab.data import FastLoader
from mnistlab.network import MAX_SEED

MAX_BATCH, MAX_SHOWN = 512, 64
ds = lab_ui.dataset()
VIEWS = page_cache.pixel_views(ds)  # after ToTensor: the lesson's Normalize first

lab_ui.entry_guard()

# The batch's figures are built once per server and shared (page_cache): classmates with the same loader
# settings see the same batches in the same order, and a rerun that changes nothing (or only the fragment
# below) rebuilds none.


def fingerprint(images: torch.Tensor, labels: torch.Tensor) -> str:
    """A batch's identity for its figures' caches (page_cache): a hash of its numbers (~0.1 ms for 64
    images)."""
    h = hashlib.blake2b(images.contiguous().numpy().tobytes(), digest_size=16)
    h.update(labels.numpy().tobytes())
    return h.hexdigest()


st.title("Dataset")
st.caption(f"{ds.title} through the lesson's `trainloader`: each batch is a tensor of images and one of "
           f"labels." + (f" Its {ds.n_classes} classes are {', '.join(ds.classes)}; a label is the class's "
                         f"number, 0 to {ds.n_classes - 1}." if ds.classes != plots.DIGITS else ""))

c = st.columns([1.2, 1, 1, 1, 1], vertical_alignment="bottom")
split_name = c[0].segmented_control("Split", ["train", "test"], default="train", key="ds_split",
                                    required=True)
batch_size = c[1].number_input("Batch size", 1, MAX_BATCH, lesson_step.BATCH, key="ds_batch_size")
seed = c[2].number_input("Seed", 0, MAX_SEED, lesson_step.SEED, key="ds_seed",
                         help="The lesson's seed by default: the Lesson's and From tensors' batch.")
shuffle = c[3].toggle("Shuffle", True, key="ds_shuffle")


def next_batch() -> None:
    """`next(dataiter)`: a new pass (a new shuffle) starts when the split is used up, as with a
    DataLoader."""
    try:
        st.session_state["ds_batch"] = next(st.session_state["ds_iter"])
        st.session_state["ds_number"] += 1
    except StopIteration:
        st.session_state["ds_iter"] = iter(st.session_state["ds_loader"])
        st.session_state["ds_batch"] = next(st.session_state["ds_iter"])
        st.session_state.update(ds_number=1, ds_pass=st.session_state["ds_pass"] + 1)


# The visitor's loader lives in their session; new settings start a new one at its first batch.
settings = (ds.name, split_name, int(batch_size), bool(shuffle), int(seed))
with lab_ui.show_errors():
    if st.session_state.get("ds_settings") != settings:
        shown = lab_ui.split(True) if split_name == "train" else lab_ui.shown_test()  # never the hidden ones
        loader = FastLoader(shown, int(batch_size), shuffle, int(seed))
        st.session_state.update(ds_settings=settings, ds_loader=loader, ds_iter=iter(loader), ds_pass=1,
                                ds_number=0)
        next_batch()

if split_name == "test":
    st.caption(lab_ui.hidden_note())


@st.fragment
def batch_view() -> None:
    """The batch and one of its images. A fragment: "Next batch" (its button in the settings row above)
    redraws only this part, not the page around it (a classroom clicks it most)."""
    if c[4].button("Next batch", type="primary", icon=":material/skip_next:", key="ds_next"):
        next_batch()
    if "ds_batch" not in st.session_state:
        return
    images, labels = st.session_state["ds_batch"]
    n = len(labels)
    loader = st.session_state["ds_loader"]
    batch = fingerprint(images, labels)

    st.subheader(f"Batch {st.session_state['ds_number']} of {len(loader)}"
                 + (f" (pass {st.session_state['ds_pass']})" if st.session_state["ds_pass"] > 1 else ""))
    st.code(f">>> images.shape\n{images.shape}\n>>> labels.shape\n{labels.shape}\n"
            f">>> images.view(images.shape[0], -1).shape   # flattened: {ds.inputs} inputs per image\n"
            f"{images.view(n, -1).shape}", language="python")
    shown = min(n, MAX_SHOWN)
    first = f" (first {shown} of {n})" if shown < n else ""
    lab_ui.plot(page_cache.grid_figure(batch, f"The batch's {ds.things} with their labels{first}", ds.name,
                                       images[:shown], labels[:shown]))
    one_image(batch, images, labels)


@st.fragment
def one_image(batch: str, images: torch.Tensor, labels: torch.Tensor) -> None:
    """One image's values (784 for MNIST): a window of them written out, every one on hover. A fragment
    of its own: picking another image or view redraws only this part, and only one pixel-value figure is
    drawn at a time."""
    n = len(labels)
    st.subheader("One image, pixel by pixel")
    index = st.slider("Image in the batch", 0, n - 1, 0, key="ds_index") if n > 1 else 0
    view = st.segmented_control(
        "Pixel values", [page_cache.BEFORE, *VIEWS], default=page_cache.BEFORE, required=True, key="ds_view",
        help="What the network reads. With the lesson's Normalize the black background is −1; ToTensor "
             "alone leaves it at 0.")
    index = min(index, n - 1)
    label = int(labels[index])
    name = ds.classes[label]
    label_text = str(label) if name == str(label) else f"{label} ({name})"
    lab_ui.plot(page_cache.pixel_figure(batch, index, view, label_text, ds.name, images[index]))


batch_view()

st.subheader(f"Class counts in the {split_name} split")
lab_ui.plot(page_cache.counts_figure(split_name == "train", ds.name))
