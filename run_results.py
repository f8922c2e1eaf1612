"""The Train page's runs and their results: the runs table, their curves compared, and the chosen
run's summary and result tabs (learning dynamics, confusion matrix, mistakes, weights, training
code, model file). Layout, as a page is: what it shows is computed in `mnistlab`."""

import math
import weakref

import pandas as pd
import streamlit as st

import class_ui
import lab_ui
from mnistlab import (
    conv_plots,
    data,
    dynamics,
    model_files,
    notebook,
    plots,
    share,
    training_plots,
)
from mnistlab.errors import LabError
from mnistlab.runs import Run

MISTAKES_GRID = 40  # misclassified digits in the overview grid
GALLERY = 4  # misclassified digits shown with their probability bars, per page
SHOWN_UNITS = 64
RUN_ROW_PX = 76  # three lines of a cell's text: glide wraps text only in rows over 4rem (72 px at our 18 px)

ss = st.session_state


@st.cache_resource
def replays() -> weakref.WeakKeyDictionary:
    """Each run's replay figure, built once (half a second of Plotly work), gone with its run."""
    return weakref.WeakKeyDictionary()


@st.cache_resource
def run_figures() -> dict:
    """Figures of runs, each drawn once (Plotly takes 50-250 ms for one; a page shows its open tab's on
    every rerun): by the id of a tensor of the run's weights, which never change, and what is drawn,
    with a weak reference to the tensor, so a run's figures go with it."""
    return {}


def drawn(run: Run, what: tuple, make):
    """`make()`, the figure `what` of `run`, drawn once for the server (see `run_figures`)."""
    anchor, cache = next(iter(run.state.values())), run_figures()
    held = cache.get((id(anchor), what))
    if held is None or held[0]() is not anchor:
        for k in [k for k, (ref, _) in list(cache.items()) if ref() is None]:
            cache.pop(k, None)
        cache[id(anchor), what] = held = (weakref.ref(anchor), make())
    return held[1]


def split_curves(runs: dict[str, Run]) -> tuple[dict, dict]:
    """Each run's training curve and validation checks, as training_plots.training_curves draws them."""
    trained = {label: r.history for label, r in runs.items() if r.history.steps}
    return ({label: h.curve() for label, h in trained.items()},
            {label: h.validation_curve() for label, h in trained.items() if h.validation_steps})


def run_row(label: str, run: Run, early: bool) -> dict:
    """A run's row in the runs table. A model loaded from a file has what its file recorded (blank
    where it recorded nothing) and no training time."""
    m, h = run.metrics(), run.history
    return {"run": label.split(":")[0], "train accuracy": m.get("train_accuracy"),
            "validation accuracy": m.get("validation_accuracy"), "test accuracy": run.accuracy,
            "best epoch": run.best_epoch, **({"kept epoch": h.kept_epoch} if early else {}),
            "network": f"{run.name or run.arch.label()} · init {run.init.label()}",
            "training": (run.config.label() + (" · stopped early" if h.stopped_early else "")
                         + (f" · stopped after epoch {len(h.epoch_ends)}" if h.patience_ran_out else "")
                         if h.steps else "loaded from a file"),
            "seconds": round(run.seconds, 1) if h.steps else None}


def runs_table(runs: dict[str, Run]) -> None:
    """Every run of this session, a row each."""
    # The numbers first, each named by its split, then the settings' long text, wrapped over three
    # lines in columns narrow enough that the whole table fits beside the sidebar at 1280 px (short
    # headers; what each means is its help). Choose on validation: test only reports.
    early = any(r.config.early_stop and (r.history.steps or r.history.kept_epoch) for r in runs.values())
    number, text = st.column_config.NumberColumn, st.column_config.TextColumn
    st.dataframe(pd.DataFrame([run_row(label, r, early) for label, r in runs.items()]),
        hide_index=True, width="stretch", row_height=RUN_ROW_PX,
        column_config={"run": text(width=60),
                       "train accuracy": number("train", format="percent", width=66,
                                                help="Accuracy on the images it learned from, with their "
                                                     "labels (noisy too)"),
                       "validation accuracy": number("validation", format="percent", width=82,
                                                     help="Accuracy on the images set aside to choose with"),
                       "test accuracy": number("test", format="percent", width=64,
                                               help="Accuracy on the test images: held out, not used to "
                                                    "choose"),
                       "best epoch": number("epoch", width=52, help="The epoch with the lowest validation "
                                                                    "loss"),
                       "kept epoch": number("kept", width=48, help="With early stopping: the epoch whose "
                                                                   "weights the network kept"),
                       "network": text(width=150),
                       "training": text(width=170 if early else 210),
                       "seconds": number(width=66)})


def compare_runs(runs: dict[str, Run]) -> None:
    """The training curves (and learning dynamics) of the runs the visitor picks, on one figure."""
    trained = [label for label, r in runs.items() if r.history.steps]
    ss["tr_compare"] = [label for label in ss.get("tr_compare", trained[-2:]) if label in trained]
    compare = st.multiselect("Compare training curves", trained, key="tr_compare",
                             help="Pick two or more runs, e.g. sigmoid vs ReLU with the same seeds.")
    if compare:
        curves, checks = split_curves({label: runs[label] for label in compare})
        lab_ui.plot(training_plots.training_curves(curves, validation=checks,
                                                   title="Training curves: training and validation"))
        recorded = {label: runs[label].dynamics.all_series() for label in compare if runs[label].dynamics}
        if len(recorded) > 1:  # one run's dynamics are on its Learning dynamics tab
            lab_ui.plot(training_plots.layer_dynamics(recorded, title="Each layer's dynamics: a colour per "
                                                                      "layer, a line style per run"),
                        key="tr_compare_dynamics")


def chosen_run(runs: dict[str, Run]) -> tuple[str, Run]:
    """The run whose results are shown, as the visitor picked it (the latest at first)."""
    if ss.get("tr_show") not in runs:
        ss["tr_show"] = list(runs)[-1]
    shown = st.selectbox("Results of", list(runs), key="tr_show")
    return shown, runs[shown]


def run_summary(run: Run, test_split: data.Split) -> None:
    """Its accuracy on each split, named as such, the gap, and what went wrong if something did."""
    e = run.evaluation
    # Two rows, so that every label fits a projector's 1280 px whole: training against validation
    # (and the epoch validation chose), then test, which only reports.
    learned, checked = (run.metrics().get(k) for k in ("train_accuracy", "validation_accuracy"))
    known = learned is not None and checked is not None
    c = st.columns([1, 1, 1.4, 0.8])
    c[0].metric("Training accuracy", f"{learned:.2%}" if learned is not None else "—")
    c[1].metric("Validation accuracy", f"{checked:.2%}" if checked is not None else "—")
    c[2].metric("Gap (training − validation)", f"{100 * (learned - checked):+.1f} points" if known else "—")
    c[3].metric("Best epoch", run.best_epoch or "—")
    c = st.columns([2.3, 1, 1.3, 1])
    c[0].metric("Test accuracy (held out, not used to choose)", f"{e.accuracy:.2%}")
    c[1].metric("Test loss", f"{e.loss:.4f}")
    c[2].metric(f"Test mistakes of {len(test_split):,}", f"{e.n_misclassified:,}")
    c[3].metric("Training time", f"{run.seconds:.1f} s" if run.history.steps else "—")
    if run.train_evaluation and run.validation:
        st.caption(f"Training: on the {int(run.train_evaluation.confusion.sum()):,} images it learned from, "
                   f"with the labels it learned (noisy ones too). Validation: on "
                   f"{int(run.validation.confusion.sum()):,} images set aside, never trained on; the best "
                   f"epoch has its lowest loss. A wide gap between the two is overfitting. Test: held out, "
                   f"it only reports.")
    elif not run.history.steps and (known or run.best_epoch):
        st.caption("Training, validation and the best epoch: as the model file recorded them when it was "
                   "trained. Test: scored here.")
    if note := run.stopping_note():
        st.info(note, icon=":material/front_hand:")
    verdict = dynamics.diagnosis(run.dynamics, run.history.loss, e.accuracy, run.config.lr) \
        if run.history.steps else None
    if verdict:
        st.error(verdict, icon=":material/troubleshoot:")
    st.page_link("pages/build.py", label="Open this network on Build: its layers, init and seed (the weights "
                                         "before training)", icon=":material/account_tree:",
                 query_params=share.encode(run.network, run.dataset))


def show_dynamics(run: Run, shown: str) -> None:
    """How each layer learned, as recorded while it trained; a replay of its predictions."""
    classes = run.dataset.classes
    d = run.dynamics
    if d is None:
        st.info("No learning dynamics for this run: they are recorded while the app trains a network, "
                "not kept in a model file.", icon=":material/info:")
    else:
        st.caption(f"Update ratio: how much a step changed a layer's weights, log10(std of the change ÷ "
                   f"std of the weights); near −3 (1e-3) is healthy, far below the layer barely learns, "
                   f"far above training is unstable. Saturated or dead: on the first "
                   f"{dynamics.PROBE_IMAGES} validation images, as on Build's Activations tab.")
        st.markdown(dynamics.init_loss_note(d.init_loss))
        lab_ui.plot(training_plots.layer_dynamics({shown: d.all_series()}, title="Each layer over training"),
                    key="tr_dynamics")
        if note := dynamics.dead_units_note(d.activations.values()):
            st.caption(note)
        if run.arch.is_cnn and not run.arch.conv_names():  # pools alone: no filters, and no images to replay
            return
        if d not in replays():
            images = data.normalize(d.replay_images, run.config.normalization)
            replays()[d] = training_plots.replay(d, images, classes=classes,
                                                 title="Replay: press play, or drag the slider (epochs)")
        lab_ui.plot(replays()[d], key="tr_replay")


def show_confusion(run: Run, test_split: data.Split) -> None:
    """Which classes it takes for which, on the test images, and its accuracy per class."""
    e, classes = run.evaluation, run.dataset.classes
    kind = "digit" if run.dataset.things == "digits" else "class"
    lab_ui.plot(drawn(run, ("confusion",), lambda: plots.confusion_matrix(
        e.confusion, classes=classes,
        title=f"True {kind} (rows) and prediction (columns), on the {len(test_split):,} test images")))
    st.dataframe(pd.DataFrame([[f"{a:.1%}" for a in e.per_class_accuracy]], index=["test accuracy"],
                              columns=[f"digit {c}" if kind == "digit" else c for c in classes]),
                 width="stretch")


def show_mistakes(run: Run, test_split: data.Split) -> None:
    """The test images it got wrong, but for the hidden ones a class challenge scores on: a grid, then a
    page of them with their probability bars."""
    e, classes = run.evaluation, run.dataset.classes
    if e.n_misclassified == 0:
        st.success("No mistakes on the test set.")
        return
    shown = (e.misclassified < lab_ui.shown_test_images(run.dataset)).nonzero().flatten()  # positions
    mistakes, probabilities = e.misclassified[shown], e.misclassified_probabilities[shown]
    hidden = e.n_misclassified - len(mistakes)
    st.caption(f"{len(mistakes):,} of its {e.n_misclassified:,} test mistakes are shown; the other "
               f"{hidden:,} are on hidden test images. {lab_ui.hidden_note(run.dataset)}")
    if len(mistakes) == 0:
        return
    grid = mistakes[:MISTAKES_GRID]
    title = f"The first {len(grid)} of {len(mistakes):,} shown test mistakes: true → predicted"
    lab_ui.plot(drawn(run, ("mistakes",), lambda: plots.digit_grid(
        test_split.normalized(grid), test_split.labels[grid], classes=classes, title=title,
        predictions=probabilities[:MISTAKES_GRID].argmax(1))))
    pages = math.ceil(len(mistakes) / GALLERY)
    st.session_state.setdefault("tr_gallery", 1.0)  # the field's type (lab_ui.whole_field)
    column = st.columns(3)[0]
    page = lab_ui.whole_field(column, f"Mistakes page (1 to {pages})", "tr_gallery")
    if not (isinstance(page, int) and 1 <= page <= pages):
        column.error(f"The mistakes page must be a whole number from 1 to {pages:,}; got {page:g}.")
        return
    for k in range((page - 1) * GALLERY, min(page * GALLERY, len(mistakes))):
        i = int(mistakes[k])
        image, probs = test_split.normalized([i])[0], probabilities[k]
        lab_ui.plot(plots.view_classify(image, probs, label=int(test_split.labels[i]),
                                        classes=classes, title=f"Test image {i}", height=320))


def show_weights(run: Run) -> None:
    """Its weights before and after training, and fc1's as one image per unit."""
    names = [n for n in run.state if n.endswith((".weight", ".bias"))]
    after = {f"{n} {tuple(run.state[n].shape)}": run.state[n] for n in names}
    if run.initial_state is not None:
        before = {f"{n} {tuple(run.state[n].shape)}": run.initial_state[n] for n in names}
        lab_ui.plot(drawn(run, ("histograms",), lambda: plots.histograms_before_after(
            before, after, title="Weights and biases before (grey) and after (blue) training")))
    else:
        lab_ui.plot(drawn(run, ("histograms",), lambda: plots.histograms(
            after, title="Weights and biases (loaded: no 'before')")))
    if run.arch.is_cnn:
        if not run.arch.conv_names():
            return  # pools only: no filters
        st.caption(f"{conv_plots.FILTERS_LEGEND} The replay on the Learning dynamics tab shows conv1's "
                   f"filters as they learned, epoch by epoch." if run.dynamics else conv_plots.FILTERS_LEGEND)
        lab_ui.plot(drawn(run, ("filters",), lambda: conv_plots.filters_figure(
            run.model(), title="Filters after training")), key="tr_filters")
        return
    first = run.arch.weighted_names()[0]  # fc1, or without hidden layers the output: one per class
    weight = run.state[f"{first}.weight"]
    units = min(SHOWN_UNITS, len(weight))
    one, many = ("unit", "units") if first == "fc1" else ("class", "classes")
    more = f" (first {units} of {len(weight)})" if units < len(weight) else ""
    shared = st.toggle(f"One colour scale for all {many}", key="tr_shared_scale",
                       help="Off: each on its own scale, so weak ones still show their pattern. "
                            "On: one scale, to compare their sizes.")
    ds = run.config.data
    lab_ui.plot(drawn(run, ("weight images", shared), lambda: plots.weight_images(
        weight, max_units=SHOWN_UNITS, shared_scale=shared, dataset=ds,
        title=f"{first} weights after training, one {ds.shape_text()} image per {one}{more}")))


def show_code(run: Run) -> None:
    """The PyTorch code that trains these very weights, and the same as a notebook."""
    st.code(notebook.training_source(run.config, run.arch), language="python")  # the app's data folder
    st.download_button("Download as Jupyter notebook", icon=":material/download:", key="tr_notebook",
                       data=lambda: notebook.to_bytes(notebook.trained(run.network, run.config,
                                                                       run.accuracy)),
                       file_name=f"mnist-lab-{run.arch.label().replace(' ', '-').replace('/', '-')}"
                                 "-training.ipynb", mime="application/x-ipynb+json", on_click="ignore",
                       help="The network's code, this training code and an evaluation cell: run on a "
                            "CPU, it trains these very weights to this test accuracy.")


def show_file(run: Run, shown: str) -> None:
    """Its weights, settings and results as a .safetensors file to download."""
    kept = (f" These are epoch {run.history.kept_epoch}'s weights, which early stopping kept; the file "
            f"says so (`kept_epoch`)." if run.history.kept_epoch is not None else "")
    st.markdown("A model file is one `.safetensors` file: the weights, and the architecture, settings "
                "and results as text (test, and where known training and validation accuracy and the "
                f"best epoch). It holds no code, so it is safe to share.{kept}")
    number = shown.split(":")[0].split()[-1]
    name = st.text_input("File name", model_files.default_name(run.arch, f"run{number}"), key="tr_file_name")
    try:
        name = model_files.check_name(name)
        saved = model_files.SavedModel.from_run(run, name)
        st.download_button("Download model", data=lambda: model_files.to_bytes(saved),
                           file_name=name + model_files.SUFFIX, mime="application/octet-stream",
                           icon=":material/download:", key="tr_download", on_click="ignore")
    except LabError as err:
        st.error(str(err))
    class_ui.submit_here(run)  # in a class with an open challenge: "Submit to <class>"
