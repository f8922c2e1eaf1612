"""Train: the network from Build learns the chosen data set (MNIST or Fashion-MNIST) while you
watch; then what it gets right and wrong.

Training runs as a job in the server's queue (`jobs.TrainingJob`); a fragment redraws its progress
twice a second, so the page (and every other visitor's) stays responsive and Stop works at once.
"""

import dataclasses
import math
import weakref

import pandas as pd
import streamlit as st

import lab_ui
from mnistlab import (
    data,
    dynamics,
    jobs,
    model_files,
    network,
    network_diagram,
    notebook,
    plots,
    train,
    train_config,
    training_plots,
)
from mnistlab.errors import LabError
from mnistlab.runs import Run, keep_run
from mnistlab.splits import DEFAULT_VALIDATION, MAX_VALIDATION, MIN_VALIDATION, TRAIN_SIZES
from mnistlab.train_config import TrainConfig

lab_ui.entry_guard()

LR_SCALE = [1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0]
BATCH_SIZES = [8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096]
MISTAKES_GRID = 40  # misclassified digits in the overview grid
GALLERY = 4  # misclassified digits shown with their probability bars, per page
SHOWN_UNITS = 64
LIVE_IMAGE = 0  # the test image the live network diagram reads
LABEL_NOISES = [i / 20 for i in range(21)]
WEIGHT_DECAYS = [0.0, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0]
EARLY_STOPS = [None, *range(1, 11)]
SETTINGS = {f.name: f.metadata for f in TrainConfig.settings()}  # each setting's label and help

ss = st.session_state
ss.setdefault("runs", [])


@st.cache_resource
def replays() -> weakref.WeakKeyDictionary:
    """Each run's replay figure, built once (half a second of Plotly work), gone with its run."""
    return weakref.WeakKeyDictionary()


def labelled_runs() -> dict[str, Run]:
    return {lab_ui.run_label(i, r): r for i, r in enumerate(ss["runs"], 1)}


def add_run(run: Run) -> None:
    ss["runs"] = keep_run(ss["runs"], run)
    newest = lab_ui.run_label(len(ss["runs"]), run)
    ss["tr_show"] = newest
    kept = [label for label in ss.get("tr_compare", []) if label in labelled_runs()]
    ss["tr_compare"] = kept[-2:] + [newest]


def setting_label(name: str) -> str:
    return SETTINGS[name]["label"]


def setting_help(name: str) -> str:
    """A setting's help as a sentence."""
    text = SETTINGS[name]["help"]
    return text[0].upper() + text[1:] + "."


def chosen_config() -> TrainConfig:
    """The settings as the widgets say; a ConfigError says what is wrong with them."""
    return TrainConfig(optimizer=ss["tr_optimizer"], lr=ss["tr_lr"], momentum=ss["tr_momentum"],
                       batch_size=ss["tr_batch"], epochs=ss["tr_epochs"], batch_seed=ss["tr_seed"],
                       normalization=ss["tr_normalization"], dataset=lab_ui.dataset().name,
                       train_images=ss["tr_train_images"], validation=ss["tr_validation"],
                       label_noise=ss["tr_label_noise"], weight_decay=ss["tr_weight_decay"],
                       early_stop=ss["tr_early_stop"], split_seed=ss["tr_split_seed"])


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


def start_training(build: lab_ui.Build) -> None:
    try:
        config = chosen_config()
        ss["train_job"] = jobs.TrainingJob(build.network, config, lab_ui.split(True), lab_ui.split(False),
                                           build.device, owner=lab_ui.owner(), record_dynamics=True).start()
        ss.pop("tr_error", None)
        ss.pop("tr_notice", None)
    except LabError as e:
        ss["tr_error"] = str(e)


def finish(job: jobs.TrainingJob) -> None:
    del ss["train_job"]
    if isinstance(job.error, LabError):
        ss["tr_error"] = str(job.error)
    elif job.error is not None:
        ss["tr_error"] = f"Training failed ({type(job.error).__name__}: {job.error})."
    else:
        add_run(job.result)
        if job.stop_reason == "time limit":
            ss["tr_notice"] = (f"Training stopped at this server's limit of {job.time_limit / 60:g} minutes "
                               f"per run; what the network learned until then is kept below. Use fewer "
                               f"epochs or a larger batch.")


def upload_model() -> None:
    """Turn an uploaded model file into a session run; nothing in it is executed (see store)."""
    f = ss.get("tr_upload")
    ss.pop("tr_upload_error", None)
    if f is None:
        return
    try:
        saved = model_files.from_bytes(f.getvalue(), source=f.name)
        saved.name = saved.name or f.name.removesuffix(model_files.SUFFIX)
        # scored on the data set it learned, whichever the sidebar shows: its classes label its results
        add_run(model_files.as_run(saved, lab_ui.split(False, saved.dataset), lab_ui.current_build().device))
    except LabError as e:
        ss["tr_upload_error"] = str(e)


def use_network_here() -> None:
    try:
        arch = network.Architecture.parse(ss["tr_hidden"], ss["tr_activation"])
        lab_ui.set_build(dataclasses.replace(lab_ui.current_build().network, arch=arch))
        ss.pop("tr_build_error", None)
    except LabError as e:
        ss["tr_build_error"] = str(e)


# -- what to train ---------------------------------------------------------------------------------

def network_column(build: lab_ui.Build, busy: bool) -> None:
    """The network Train trains: Build's, with a way to change its shape here."""
    st.subheader("Network")
    net = build.network
    st.markdown(f"**{net.arch.label()}**  \n{net.arch.n_parameters:,} parameters · init "
                f"{net.init.label()} · seed {net.seed} · {lab_ui.device_label(build.device)}")
    if build.is_default:
        st.info("This is the lesson's network, the default. Build another on the Build page, or change "
                "it here.", icon=":material/info:")
    st.page_link("pages/build.py", label="Change it on Build", icon=":material/account_tree:")
    with st.expander("Change it here"):
        ss.setdefault("tr_hidden", ",".join(map(str, net.arch.hidden)))
        ss.setdefault("tr_activation", ",".join(dict.fromkeys(net.arch.activations)))
        st.text_input("Hidden sizes", key="tr_hidden", help="e.g. 128,64")
        st.text_input("Activations", key="tr_activation", help="sigmoid, tanh or relu; one, or one per layer")
        st.button("Use this network", key="tr_use", on_click=use_network_here, disabled=busy)
        if "tr_build_error" in ss:
            st.error(ss["tr_build_error"])


def training_settings(build: lab_ui.Build, busy: bool) -> TrainConfig | None:
    """The training settings and the Train button; the config they make (None, and why, if invalid)."""
    st.subheader("Training")
    c = st.columns(2)
    optimizer = c[0].radio("Optimizer", train_config.OPTIMIZERS, key="tr_optimizer", horizontal=True,
                           format_func={"adam": "Adam", "adamw": "AdamW", "sgd": "SGD + momentum"}.get,
                           disabled=busy,
                           help=f"{setting_help('optimizer')} {train_config.WEIGHT_DECAY_TEXT}")
    c[1].number_input("Momentum", 0.0, 0.99, 0.9, 0.05, key="tr_momentum",
                      disabled=busy or optimizer != "sgd")
    c = st.columns(2)
    c[0].select_slider("Learning rate", LR_SCALE, 1e-3, key="tr_lr", format_func=lambda v: f"{v:g}",
                       disabled=busy)
    c[1].select_slider("Batch size", BATCH_SIZES, 64, key="tr_batch", disabled=busy)
    c = st.columns(2)
    c[0].slider("Epochs", 1, train_config.MAX_EPOCHS, 5, key="tr_epochs", disabled=busy)
    c[1].number_input("Batch order seed", 0, network.MAX_SEED, 0, key="tr_seed", disabled=busy,
                      help="The same seed gives the same batches: compare two networks on equal terms.")
    st.selectbox("Input normalization", list(data.NORMALIZATIONS), key="tr_normalization",
                 format_func=data.NORMALIZATION_TEXT.get, disabled=busy,
                 help="How pixels are scaled before the network reads them; the trained network keeps it, "
                      "and reads drawings the same way. With the lesson's [-1, 1] the black background is "
                      "-1, so Adam moves the weights of the hundreds of pixels that are black in a whole "
                      "batch together, like hundreds of extra biases: the same network learns more "
                      "slowly. Train both with the same seeds and compare the curves.")
    with st.expander("Generalization settings", icon=":material/call_split:"):
        c = st.columns(2)
        rest = train_config.MAX_TRAIN_IMAGES - ss.get("tr_validation", DEFAULT_VALIDATION)
        c[0].selectbox(setting_label("train_images"), TRAIN_SIZES, TRAIN_SIZES.index(None),
                       key="tr_train_images", disabled=busy, help=setting_help("train_images"),
                       format_func=lambda n: f"{n:,} images" if n else f"all {rest:,}")
        c[1].number_input(setting_label("validation"), MIN_VALIDATION, MAX_VALIDATION,
                          DEFAULT_VALIDATION, 1000, key="tr_validation", disabled=busy,
                          help=setting_help("validation"))
        c = st.columns(2)
        c[0].select_slider(setting_label("label_noise"), LABEL_NOISES, 0.0, key="tr_label_noise",
                           disabled=busy, format_func=lambda v: f"{v:.0%}", help=setting_help("label_noise"))
        decay = c[1].select_slider(setting_label("weight_decay"), WEIGHT_DECAYS, 0.0, key="tr_weight_decay",
                                   disabled=busy, format_func=lambda v: f"{v:g}" if v else "0 (off)",
                                   help=f"{setting_help('weight_decay')} {train_config.WEIGHT_DECAY_TEXT}")
        c = st.columns(2)
        c[0].selectbox(setting_label("early_stop"), EARLY_STOPS, key="tr_early_stop", disabled=busy,
                       help=setting_help("early_stop"),
                       format_func=lambda k: f"after {k} epoch{'s' * (k != 1)}" if k else "off")
        c[1].number_input(setting_label("split_seed"), 0, network.MAX_SEED, 0, key="tr_split_seed",
                          disabled=busy, help=setting_help("split_seed"))
        if decay:
            st.caption(train_config.WEIGHT_DECAY_TEXT)
    try:
        config = chosen_config()
    except LabError as e:
        config = None
        st.error(str(e), icon=":material/error:")
    st.button("Train", key="tr_train", type="primary", icon=":material/play_arrow:",
              disabled=busy or config is None, on_click=start_training, args=(build,))
    return config


st.title("Train")
caption = st.empty()  # what the chosen settings train on: written once they are read below
build = lab_ui.current_build()
job = ss.get("train_job")
network_col, settings_col = st.columns([1, 1.3], gap="large")
with network_col:
    network_column(build, busy=job is not None)
with settings_col:
    config = training_settings(build, busy=job is not None)
caption.caption((config or TrainConfig(dataset=lab_ui.dataset().name)).splits_text())

if "tr_error" in ss:
    st.error(ss["tr_error"])
if "tr_notice" in ss:
    st.warning(ss["tr_notice"], icon=":material/timer:")


# -- while it trains -------------------------------------------------------------------------------

def draw_running(job) -> None:
    """The training as it runs: its progress, Stop / Pause / Step / Resume, and its live figures."""
    p = job.latest
    if job.waiting:
        st.progress(0.0, text="Waiting for the server: other visitors' networks are training. "
                              "Yours starts when one finishes.")
    elif p is None:
        st.progress(0.0, text="Starting…")
    else:
        steps, epochs = f"step {p.step:,} of {p.total_steps:,}", f"epoch {p.epoch} of {p.epochs}"
        where = f"Paused at {steps} · {epochs}" if job.paused else f"{epochs.capitalize()} · {steps}"
        st.progress(p.fraction, text=f"{where} · loss {p.loss:.3f} · training accuracy this epoch "
                                     f"{p.accuracy:.1%}")
    held = job.paused and not job.stopping
    why = None if job.pausable else ("Pause and Step work where this server trains itself; trainings "
                                     "sent to a Ray cluster can only be stopped.")
    with st.container(horizontal=True, gap="small"):
        st.button("Stop", key="tr_stop", icon=":material/stop:", on_click=job.stop, disabled=job.stopping)
        st.button("Pause", key="tr_pause", icon=":material/pause:", on_click=job.pause,
                  disabled=not job.pausable or job.waiting or job.paused or job.stopping,
                  help=why or f"Hold training after this batch. A paused run keeps its place on the "
                              f"server, and its {job.time_limit / 60:g}-minute limit keeps counting.")
        st.button("Step one batch", key="tr_step", icon=":material/skip_next:", on_click=job.step,
                  disabled=not held, help=why or "Train one more batch and show it on every chart, "
                                                 "then pause again.")
        st.button("Resume", key="tr_resume", icon=":material/play_arrow:", on_click=job.resume,
                  disabled=not held, help=why or "Train on: to the same weights as a run never paused.")
    curves = {f"Training: {job.arch.label()}, {job.config.label()}": train.progress_curve(job.reports)}
    x, _, accuracy = checked = train.validation_progress_curve(job.reports)
    checks = {next(iter(curves)): checked}
    done, done_checks = split_curves({label: run for label, run in labelled_runs().items()
                                      if label in ss.get("tr_compare", [])})
    title = "While it trains" + (f": validation accuracy {accuracy[-1]:.1%} at epoch {x[-1]:.2f}"
                                 if x else "")
    lab_ui.plot(training_plots.training_curves(curves | done, title=title, epochs=job.config.epochs,
                                               validation=checks | done_checks), key="tr_live_curves")
    series = dynamics.live_series(job.reports)
    lab_ui.plot(training_plots.layer_dynamics({"Training": series}, epochs=job.config.epochs,
                                              title="Each layer while it trains"), key="tr_live_dynamics")
    if ("probe", "loss") in series:
        st.caption(dynamics.init_loss_note(series["probe", "loss"][1][0]))
    if note := dynamics.dead_units_note(key for _, key in series):
        st.caption(note)
    snapshot = job.live_snapshot()
    if snapshot is not None:
        test_split = lab_ui.split(False, job.config.dataset)
        image = test_split.normalized([LIVE_IMAGE], normalization=job.config.normalization)
        lab_ui.plot(network_diagram.network_figure(snapshot, image,
                                                   class_names=test_split.dataset.classes,
                                                   title=f"The network as it learns, on test image "
                                                         f"{LIVE_IMAGE}"), key="tr_live_network")
        st.caption(network_diagram.LEGEND)


if job is not None:
    lab_ui.while_running("train_job", finish, draw_running)


# -- runs and their results ------------------------------------------------------------------------

def runs_table(runs: dict[str, Run]) -> None:
    """Every run of this session, a row each."""
    # The numbers first, each named by its split, so a projector's 1280 px shows them all; the
    # settings' long text comes last. Choose on validation: test only reports.
    early = any(r.config.early_stop and (r.history.steps or r.history.kept_epoch) for r in runs.values())
    st.dataframe(pd.DataFrame([run_row(label, r, early) for label, r in runs.items()]),
        hide_index=True, width="stretch",
        column_config={"run": st.column_config.TextColumn(width=60),
                       "train accuracy": st.column_config.NumberColumn(format="percent", width=105,
                                                                       help="On the images it learned from, "
                                                                            "with their labels (noisy too)"),
                       "validation accuracy": st.column_config.NumberColumn(
                           format="percent", width=135, help="On the images set aside to choose with"),
                       "test accuracy": st.column_config.NumberColumn(
                           format="percent", width=100, help="Held out, not used to choose"),
                       "best epoch": st.column_config.NumberColumn(
                           width=85, help="The epoch with the lowest validation loss"),
                       "kept epoch": st.column_config.NumberColumn(
                           width=85, help="With early stopping: the epoch whose weights the network kept"),
                       "network": st.column_config.TextColumn(width=210),
                       "training": st.column_config.TextColumn(width=300),
                       "seconds": st.column_config.NumberColumn(width=65)})


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
        if d not in replays():
            images = data.normalize(d.replay_images, run.config.normalization)
            replays()[d] = training_plots.replay(d, images, classes=classes,
                                                 title="Replay: press play, or drag the slider (epochs)")
        lab_ui.plot(replays()[d], key="tr_replay")


def show_confusion(run: Run, test_split: data.Split) -> None:
    """Which classes it takes for which, on the test images, and its accuracy per class."""
    e, classes = run.evaluation, run.dataset.classes
    kind = "digit" if run.dataset.things == "digits" else "class"
    lab_ui.plot(plots.confusion_matrix(e.confusion, classes=classes,
                                       title=f"True {kind} (rows) and prediction (columns), on the "
                                             f"{len(test_split):,} test images"))
    st.dataframe(pd.DataFrame([[f"{a:.1%}" for a in e.per_class_accuracy]], index=["test accuracy"],
                              columns=[f"digit {c}" if kind == "digit" else c for c in classes]),
                 width="stretch")


def show_mistakes(run: Run, test_split: data.Split) -> None:
    """The test images it got wrong: a grid, then a page of them with their probability bars."""
    e, classes = run.evaluation, run.dataset.classes
    if e.n_misclassified == 0:
        st.success("No mistakes on the test set.")
    else:
        grid = e.misclassified[:MISTAKES_GRID]
        lab_ui.plot(plots.digit_grid(test_split.normalized(grid), test_split.labels[grid],
                                     predictions=e.misclassified_probabilities[:MISTAKES_GRID].argmax(1),
                                     classes=classes,
                                     title=f"The first {len(grid)} of {e.n_misclassified:,} test "
                                           f"mistakes: true → predicted"))
        pages = math.ceil(e.n_misclassified / GALLERY)
        page = st.number_input(f"Mistakes page (1 to {pages})", 1, pages, 1, key="tr_gallery")
        for k in range((page - 1) * GALLERY, min(page * GALLERY, e.n_misclassified)):
            i = int(e.misclassified[k])
            image, probs = test_split.normalized([i])[0], e.misclassified_probabilities[k]
            lab_ui.plot(plots.view_classify(image, probs, label=int(test_split.labels[i]),
                                            classes=classes, title=f"Test image {i}", height=320))


def show_weights(run: Run) -> None:
    """Its weights before and after training, and fc1's as one image per unit."""
    names = [n for n in run.state if n.endswith((".weight", ".bias"))]
    after = {f"{n} {tuple(run.state[n].shape)}": run.state[n] for n in names}
    if run.initial_state is not None:
        before = {f"{n} {tuple(run.state[n].shape)}": run.initial_state[n] for n in names}
        lab_ui.plot(plots.histograms_before_after(before, after, title="Weights and biases before (grey) "
                                                                       "and after (blue) training"))
    else:
        lab_ui.plot(plots.histograms(after, title="Weights and biases (loaded: no 'before')"))
    units = min(SHOWN_UNITS, run.arch.hidden[0])
    more = f" (first {units} of {run.arch.hidden[0]})" if units < run.arch.hidden[0] else ""
    shared = st.toggle("One colour scale for all units", key="tr_shared_scale",
                       help="Off: each unit on its own scale, so weak units still show their pattern. "
                            "On: one scale, to compare the units' sizes.")
    lab_ui.plot(plots.weight_images(run.state["fc1.weight"], max_units=SHOWN_UNITS, shared_scale=shared,
                                    title=f"fc1 weights after training, one 28×28 image per unit{more}"))


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


runs = labelled_runs()
if runs:
    st.header("Runs")
    runs_table(runs)
    compare_runs(runs)
    shown, run = chosen_run(runs)
    test_split = lab_ui.split(False, run.dataset)  # the run's own data set, whichever the sidebar shows
    if run.dataset != lab_ui.dataset():
        st.info(f"This network learned {run.dataset.title}: its results are on {run.dataset.title}'s test "
                f"images.", icon=":material/info:")
    run_summary(run, test_split)
    dynamics_tab, confusion_tab, mistakes_tab, weights_tab, code_tab, file_tab = st.tabs(
        ["Learning dynamics", "Confusion matrix (test)", "Mistakes (test)", "Weights", "Training code",
         "Model file"])
    with dynamics_tab:
        show_dynamics(run, shown)
    with confusion_tab:
        show_confusion(run, test_split)
    with mistakes_tab:
        show_mistakes(run, test_split)
    with weights_tab:
        show_weights(run)
    with code_tab:
        show_code(run)
    with file_tab:
        show_file(run, shown)

st.subheader("Load a model file")
st.file_uploader("A .safetensors file saved by MNIST Lab", type=["safetensors"], key="tr_upload",
                 on_change=upload_model, max_upload_size=math.ceil(model_files.MAX_FILE_BYTES / 2**20))
if "tr_upload_error" in ss:
    st.error(ss["tr_upload_error"])
