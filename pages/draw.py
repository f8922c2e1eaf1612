"""Draw: a digit drawn (or uploaded) goes through MNIST's own preprocessing, then through trained networks.

Each network reads the drawing the way its data set was made: a digit network as MNIST's digits
were (crop, scale to 20 px, centre by mass), a Fashion-MNIST network as Zalando's product photos
were (`preprocess.preprocess_garment`: trim, subsample to its size, sharpen, centre, negate).
Below the predictions: the shift test (the drawing moved and turned, each network's probability of its
answer: `shift_test`, `shift_plots`) and a chosen CNN's feature maps of the drawing (`conv_plots`).
"""

import numpy as np
import streamlit as st
import torch
from PIL import Image
from streamlit_drawable_canvas import st_canvas

import lab_ui
import page_cache
from mnistlab import (
    conv_plots,
    jobs,
    model_files,
    network,
    network_diagram,
    plots,
    preprocess,
    shift_test,
    train,
)
from mnistlab.dataset import FASHION, MNIST, Dataset
from mnistlab.errors import ImageError
from mnistlab.runs import keep_run
from mnistlab.train_config import TrainConfig

lab_ui.entry_guard()

CANVAS = 280  # the drawing's pixels; on a large screen it is shown larger (CANVAS_CSS)
# The canvas scales with the screen: 280 px up to 1280×720 (the whole of it above the fold), 1.5× on a
# projector's 1920×1080. CSS zoom, so the page's layout and the mouse follow it and the drawing keeps
# its CANVAS pixels; the column holding it (a flex item of CANVAS + 24 px) widens with it.
CANVAS_ZOOM = 1.5
CANVAS_CSS = f"""<style>
@media (min-width: 1600px) and (min-height: 900px) {{
  .st-key-draw_canvas {{ zoom: {CANVAS_ZOOM}; }}
  div:has(> .st-key-draw_left) {{ flex: 0 0 {round(CANVAS * CANVAS_ZOOM) + 24}px !important; }}
}}
</style>"""
QUICK = TrainConfig(epochs=1)  # the one-click default network: one epoch, a few seconds
QUICK_NETWORK = network.Network()  # the lesson's, e.g. 784-128-64-10 relu
FIGURE_PX = 440  # one network's prediction; as many side by side as the page has room for
STAGE_PX = 100  # each preprocessing stage is shown with its longer side this big
FRAME_GRAY = 110
SHIFT_NETWORKS = 4  # networks in one shift test: more and each heatmap is too small to read
OWN_ANSWER = "each network's own answer"


# Saved models, and a drawing's shift test and feature maps, are computed once per server: page_cache.


def file_stamp(name: str) -> tuple:
    stat = model_files.path_for(name).stat()
    return stat.st_mtime_ns, stat.st_size


def framed(image: np.ndarray) -> np.ndarray:
    """A stage for display: its longer side STAGE_PX (small ones enlarged by whole pixels, so the
    browser shows squares, not a blur), centered on a gray square so a crop's edges stay visible."""
    h, w = image.shape
    if max(h, w) <= STAGE_PX:
        k = STAGE_PX // max(h, w)
        image = np.kron(image, np.ones((k, k), np.uint8))
    else:
        size = (max(1, round(w * STAGE_PX / max(h, w))), max(1, round(h * STAGE_PX / max(h, w))))
        image = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))
    h, w = image.shape
    frame = np.full((STAGE_PX, STAGE_PX), FRAME_GRAY, np.uint8)
    top, left = (STAGE_PX - h) // 2, (STAGE_PX - w) // 2
    frame[top:top + h, left:left + w] = image
    return frame


def preview(image: np.ndarray) -> np.ndarray:
    """An upload as shown beside the canvas: 8 bits, at most CANVAS pixels a side (a small data URL)."""
    if image.dtype != np.uint8:  # 16-bit pictures arrive as floats in [0, 1]
        image = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
    small = Image.fromarray(image)
    small.thumbnail((CANVAS, CANVAS), Image.Resampling.LANCZOS)
    return np.asarray(small)


def prepared_for(ds: Dataset, image) -> preprocess.Preprocessed:
    """`image` made into what a network of `ds` reads: as its images were made."""
    if ds.prepare != "garment":
        return preprocess.preprocess(image, ds)
    try:
        return preprocess.preprocess_garment(image, ds)
    except ImageError:  # nothing there: a blank canvas or an empty picture
        return preprocess.Preprocessed((), blank=True)


def quick_train() -> None:
    """Trains the lesson's network for one epoch, with a progress bar, and keeps it as a session run."""
    bar = st.progress(0.0, text=f"Training {QUICK_NETWORK.arch.label()} on {lab_ui.dataset().title} for one "
                                f"epoch…")

    def report(p: train.Progress):
        bar.progress(p.fraction, text=f"Training: step {p.step} of {p.total_steps}, training loss "
                                      f"{p.loss:.3f}, training accuracy so far {p.accuracy:.1%}")

    # A job in the server's queue like every training, so it takes its turn with the others.
    job = jobs.TrainingJob(QUICK_NETWORK, QUICK.replace(dataset=lab_ui.dataset().name),
                           lab_ui.split(True), lab_ui.split(False),
                           lab_ui.current_build().device, owner=lab_ui.owner()).start()
    shown = 0
    while not job.wait(0.2):
        if job.waiting:
            bar.progress(0.0, text="Waiting for the server: other visitors' networks are training.")
        for p in job.reports[shown:]:
            report(p)
        shown = len(job.reports)
    if job.error is not None:
        raise job.error
    run = job.result
    st.session_state["runs"] = keep_run(st.session_state.get("runs", []), run)
    st.session_state["draw_models"] = [lab_ui.run_label(len(st.session_state["runs"]), run)]


chosen_data = lab_ui.dataset()
st.title("Draw a digit" if chosen_data.things == "digits" else f"Draw or upload: {chosen_data.title}")
# One line above the canvas, so that at 1280×720 all of it is above the fold; how a drawing is
# prepared is told where its stages are shown (What the network sees).
st.caption(f"Each network you choose gives its {chosen_data.n_classes} class probabilities for your drawing, "
           f"prepared the way its data set's images were made.")

# Canvas and predictions side by side; on a narrow screen the predictions wrap below the canvas.
top = st.container(horizontal=True, gap="large")
left, right = top.container(width=CANVAS + 24, key="draw_left"), top.container(width="stretch")

# -- input ---------------------------------------------------------------------------------------

image = None
with left:
    source = st.segmented_control("Input", ["Draw", "Upload"], default="Draw", required=True,
                                  key="draw_source", label_visibility="collapsed")
    if source == "Draw":
        st.html(CANVAS_CSS)
        st.space(40)  # the canvas's toolbar (undo, redo, clear) appears in this gap above it
        canvas = st_canvas(stroke_width=st.session_state.get("draw_stroke", 20), stroke_color="#FFFFFF",
                           background_color="#000000", width=CANVAS, height=CANVAS, drawing_mode="freedraw",
                           update_streamlit=True, return_image_data=True, key="draw_canvas")
        st.caption("Hover over the canvas for undo, redo and the bin that clears it.")
        st.slider("Stroke width", 5, 40, 20, key="draw_stroke")
        image = canvas.image_data
    else:
        upload = st.file_uploader("A PNG or JPEG of one digit or one garment", type=["png", "jpg", "jpeg"],
                                  key="draw_upload",
                                  help=f"A digit white on black or dark on light; a garment as a shop "
                                       f"photographs it, on a plain light background. At most "
                                       f"{preprocess.MAX_UPLOAD_BYTES // 2**20} MB and "
                                       f"{preprocess.MAX_SIDE}×{preprocess.MAX_SIDE} pixels.")
        if upload is not None:
            with lab_ui.show_errors():
                image = preprocess.read_image(upload.getvalue(), upload.name)
                st.image(plots.png_data_url(preview(image)), caption=upload.name, width=CANVAS)
    compare = st.toggle("Compare with a naive resize", key="draw_naive",
                        help=f"Shrink the whole image to {chosen_data.shape_text()}, with no cropping or "
                             f"centering.")

naive = preprocess.naive(image, chosen_data) if image is not None and compare else None

# -- the networks --------------------------------------------------------------------------------

def digit_first(wanted: list[Dataset]) -> bool:
    return wanted[0].prepare != "garment"


runs = {lab_ui.run_label(i, run): run for i, run in enumerate(st.session_state.get("runs", []), 1)}
saved = {f"Saved: {name}": name for name in model_files.list_models()}
choices = list(runs) + list(saved)
build = lab_ui.current_build()

with right:
    if choices:
        if "draw_models" not in st.session_state:  # first visit: the latest run, else the first saved model
            st.session_state["draw_models"] = [list(runs)[-1] if runs else choices[0]]
        st.session_state["draw_models"] = [c for c in st.session_state["draw_models"] if c in choices]
        chosen = st.multiselect("Networks", choices, key="draw_models",
                                help="This session's training runs and the saved models. Choose several "
                                     "to compare them on the same drawing.")
    else:
        chosen = []
        st.info("No trained network yet. Train one on the Train page, or train the lesson's "
                f"{'-'.join(map(str, QUICK_NETWORK.arch.sizes))} network here for one epoch.")
        if st.button("Train a default network", type="primary", icon=":material/bolt:", key="draw_train"):
            with lab_ui.show_errors():
                quick_train()
                st.rerun()

    # (label, network, how it reads images, its data set): each network gets the drawing prepared as
    # its data set's images were and normalized as it was trained, and names its classes
    models = [(label, runs[label].predictor(), runs[label].normalization, runs[label].dataset)
              for label in chosen if label in runs]
    for label in chosen:
        if label in saved:
            with lab_ui.show_errors():  # e.g. a damaged file in the models folder
                model = page_cache.saved_model(saved[label], file_stamp(saved[label]))
                models.append((model.label(), model.predictor(), model.normalization, model.dataset))
    if st.session_state.get("draw_untrained"):
        models.append((f"UNTRAINED {build.network.arch.label()}: random weights, so its guess means nothing",
                       network.build_network(build.network).eval(), "lesson", chosen_data))

    # One preparation per data set the chosen networks learned (the sidebar's when none is chosen).
    wanted = list(dict.fromkeys([m[3] for m in models] or [chosen_data]))
    prepared = {}
    if image is not None:
        with lab_ui.show_errors():
            prepared = {ds: prepared_for(ds, image) for ds in wanted}
    digit = prepared.get(wanted[0])
    fashion = [ds for ds in prepared if ds.prepare == "garment"]
    if fashion and source == "Draw" and not prepared[fashion[0]].blank:
        st.info(f"A sketch, not a photo: {fashion[0].title}'s images are product photos. Upload a photo of "
                f"a garment on a plain light background to see it prepared as they were.",
                icon=":material/draw:")

    if digit is None or digit.blank:
        if source == "Draw":
            st.info(f"**Draw {'a digit' if digit_first(wanted) else 'a garment'}** on the canvas: the class "
                    f"probabilities appear as you draw.")
        elif image is None:
            st.info(f"**Upload a picture of {'a digit' if digit_first(wanted) else 'a garment'}** to see "
                    f"what each network predicts.")
        else:
            st.warning(f"No {'digit' if digit_first(wanted) else 'garment'} found in this picture: it looks "
                       f"blank.")
    elif not models:
        if choices:
            st.info("Choose a network above to see what it predicts.")
    else:
        figures = st.container(horizontal=True, gap="medium")
        for i, (label, model, normalization, ds) in enumerate(models):
            inputs = [(None, prepared[ds])]
            if naive is not None and not naive.blank:
                inputs.append(("naive resize", naive))
            with figures.container(width=FIGURE_PX):
                st.markdown(f"**{label}**  \ntrained on {ds.title}")
                for how, ready in inputs:
                    if ready.blank:
                        st.warning(f"Nothing found to prepare as {ds.title}'s images were.")
                        continue
                    with torch.no_grad():
                        ps = network.probabilities(model, ready.input(normalization))[0]
                    lab_ui.plot(plots.view_classify(ready.image, ps, title=how, height=340, dataset=ds),
                                key=f"draw_fig_{i}_{how}")
    st.checkbox(f"Also show an untrained network ({build.network.arch.label()}, random weights)",
                key="draw_untrained")

# -- the network that predicts, drawn --------------------------------------------------------------

if models and digit is not None and not digit.blank:
    label, model, normalization, ds = models[0]
    if not prepared[ds].blank:
        st.subheader("The network, as it reads this drawing")
        st.caption(f"{label}: the prepared image on the left, each unit shaded by how strongly it "
                   f"responds, the class probabilities on the right. {network_diagram.LEGEND}")
        with torch.no_grad():
            lab_ui.plot(network_diagram.network_figure(model, prepared[ds].input(normalization),
                                                       class_names=ds.classes, height=440, dataset=ds),
                        key="draw_network")

# -- the shift test, and a CNN's feature maps -------------------------------------------------------

readable = [m for m in models if m[3] in prepared and not prepared[m[3]].blank]
if readable:
    st.subheader("Shift test: your drawing moved and turned")
    st.caption("Your drawing moved up to 4 pixels each way (background comes in at the edge) and turned up "
               "to 15° either way: each cell is a network's probability of its answer on the drawing as it "
               "is (outlined in red), or of the class chosen here. A convolution finds the same small "
               "pattern anywhere and a pool forgets exactly where, so a CNN should keep its answer where an "
               "MLP, one weight per pixel, sees a new picture. On 300 MNIST test digits (3 epochs each), "
               "within 2 pixels the lesson's MLP kept the right digit at 73% of the shifts, ConvNetJS's "
               "5,994-parameter CNN at 92%; at 3-4 pixels, 25% and 53%: the CNN's last linear layer still "
               "reads where its features are. Turned 15°: 90% and 97%.")
    first = readable[0][3]
    follow = st.container(width=360).selectbox(
        "Class to follow", [OWN_ANSWER, *first.classes], key="draw_shift_class",
        help=f"By default each network's own answer on the drawing as it is; or one of {first.title}'s "
             f"classes for every {first.title} network.")
    tests, keys = [], []
    for label, model, normalization, ds in readable[:SHIFT_NETWORKS]:
        target = None if follow == OWN_ANSWER or ds != first else first.classes.index(follow)
        image = prepared[ds].image
        keys.append(shift_test.fingerprint(model, image, normalization, target, ds.name))
        tests.append(page_cache.shift_result(keys[-1], label, normalization, target, ds.name, model, image))
    if len(readable) > SHIFT_NETWORKS:
        st.caption(f"The first {SHIFT_NETWORKS} of the {len(readable)} networks chosen.")
    lab_ui.plot(page_cache.shift_figure(tuple(keys), tests), key="draw_shift")
    st.markdown("  \n".join(f"**{t.label}**: {t.summary()}." for t in tests))

    cnns = [m for m in readable if getattr(m[1], "image_shape", None) is not None]
    if cnns:
        st.subheader("Feature maps of your drawing")
        names = [m[0] for m in cnns]
        which = st.selectbox("Convolutional network", names, key="draw_maps_network") if len(cnns) > 1 \
            else names[0]
        label, model, normalization, ds = cnns[names.index(which)]
        st.caption(f"{label}: your drawing through every convolution and pool. {conv_plots.MAPS_LEGEND}")
        image = prepared[ds].input(normalization)
        lab_ui.plot(page_cache.feature_maps_figure(shift_test.fingerprint(model, image), model, image),
                    key="draw_maps")
    else:
        st.caption("Feature maps of your drawing appear here when one of the chosen networks is a "
                   "convolutional network (Build: add convolution layers, then train it).")

# -- what the network sees -----------------------------------------------------------------------

if prepared:
    st.subheader("What the network sees")
    st.caption(f"A digit network: cropped to the ink, scaled to {preprocess.BOX} px, padded to "
               f"{MNIST.shape_text()}, centered by mass, as MNIST's digits were. A Fashion-MNIST network: "
               f"trimmed, subsampled to {FASHION.width} px, sharpened, centred and negated, as its product "
               f"photos were (Xiao et al. 2017).")
    rows = [(f"{ds.title} preprocessing" + (" (Xiao et al. 2017)" if ds.prepare == "garment" else ""), ready)
            for ds, ready in prepared.items() if not ready.blank or ds.prepare != "garment"]
    rows += [("Naive resize", naive)] if naive is not None else []
    for name, ready in rows:
        st.markdown(f"**{name}**")
        with st.container(horizontal=True, gap="medium"):
            for stage in ready.stages:
                h, w = stage.image.shape
                with st.container(width=STAGE_PX + 16, horizontal_alignment="center"):
                    st.image(plots.png_data_url(framed(stage.image)), alt=stage.name)
                    st.caption(f"{stage.name}  \n{w}×{h}", text_alignment="center")
