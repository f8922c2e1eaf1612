"""Train: the network from Build learns the chosen data set (MNIST or Fashion-MNIST) while you
watch; then what it gets right and wrong.

Training runs as a job in the server's queue (`jobs.TrainingJob`); a fragment redraws its progress
twice a second, so the page (and every other visitor's) stays responsive and Stop works at once.
"""

import dataclasses
import math

import streamlit as st

import class_ui
import lab_ui
import run_results
from mnistlab import (
    data,
    dynamics,
    jobs,
    model_files,
    network,
    network_diagram,
    train,
    train_config,
    training_plots,
)
from mnistlab.errors import LabError
from mnistlab.layers import Conv
from mnistlab.runs import Run, keep_run
from mnistlab.train_config import TrainConfig

lab_ui.entry_guard()

LR_SCALE = [1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0]
BATCH_SIZES = [8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096]
LIVE_IMAGE = 0  # the test image the live network diagram reads
SETTINGS = {f.name: f for f in TrainConfig.settings()}  # each setting's default, label, help, choices...
# Each setting's widget is "tr_" + its name, but for these two (older keys, which tests use too)
WIDGET_KEYS = {"batch_size": "tr_batch", "batch_seed": "tr_seed"}
# The settings placed above the Generalization settings; every other one with choices is in there
PLACED = ("optimizer", "lr", "momentum", "batch_size", "epochs", "batch_seed", "normalization")

ss = st.session_state
ss.setdefault("runs", [])


def labelled_runs() -> dict[str, Run]:
    return {lab_ui.run_label(i, r): r for i, r in enumerate(ss["runs"], 1)}


def add_run(run: Run) -> None:
    ss["runs"] = keep_run(ss["runs"], run)
    newest = lab_ui.run_label(len(ss["runs"]), run)
    ss["tr_show"] = newest
    kept = [label for label in ss.get("tr_compare", []) if label in labelled_runs()]
    ss["tr_compare"] = kept[-2:] + [newest]


def widget_key(name: str) -> str:
    return WIDGET_KEYS.get(name, f"tr_{name}")


def setting_label(name: str) -> str:
    return SETTINGS[name].metadata["label"]


def setting_help(name: str) -> str:
    """A setting's help as a sentence."""
    text = SETTINGS[name].metadata["help"]
    return text[0].upper() + text[1:] + "."


def setting_widget(place, name: str, busy: bool):
    """A setting's widget as its field says: a slider over its choices (a drop-down for a `menu`),
    each read as its `text` says, its help with what its field `explain`s; its value."""
    f = SETTINGS[name]
    m = f.metadata
    options = dict(key=widget_key(name), disabled=busy, format_func=m["text"],
                   help=f"{setting_help(name)} {m['explain']}".strip())
    if m["menu"]:
        return place.selectbox(m["label"], m["choices"], m["choices"].index(f.default), **options)
    return place.select_slider(m["label"], m["choices"], f.default, **options)


def chosen_config() -> TrainConfig:
    """The settings as the widgets say (a setting with none: its default; the data set: the
    sidebar's); a ConfigError says what is wrong with them."""
    unused = () if ss.get("tr_optimizer", "adam") == "sgd" else ("momentum",)  # SGD's alone
    return TrainConfig(dataset=lab_ui.dataset().name,
                       **{name: lab_ui.typed(ss[widget_key(name)]) for name in SETTINGS
                          if widget_key(name) in ss and name not in unused})


def number_field(place, name: str, busy: bool, step: float = 1.0, off: bool = False, help: str = "") -> bool:
    """A setting's number field with no bounds, so nothing typed is cut or dropped in silence; a value
    the setting refuses stays in its field with why under it, and Train waits until it is fixed.
    A field that is `off` (momentum without SGD) is not read, so it refuses nothing. Whether the value
    is good."""
    key = widget_key(name)
    default = float(SETTINGS[name].default)  # a float: the field then reads any number
    error = None
    try:
        if not off:
            TrainConfig(dataset=lab_ui.dataset().name, **{name: lab_ui.typed(ss.get(key, default))})
    except LabError as e:
        error = f"{e} Train waits until it is fixed."
    # The default as the field's own, not set into the session first: a field given none has 0 as its
    # default, and a browser that redrew it from its default (seen under load) read momentum 0.
    place.number_input(setting_label(name), value=default, key=key, step=step, format="%g", help=help,
                       disabled=busy or off)
    if error:
        place.error(error, icon=":material/error:")
    return error is None


def start_training(build: lab_ui.Build) -> None:
    try:
        config = chosen_config()
        ss["train_job"] = jobs.TrainingJob(build.network, config, lab_ui.split(True), lab_ui.split(False),
                                           build.device, owner=lab_ui.owner(), record_dynamics=True).start()
        class_ui.training_started(f"{build.network.arch.label()}, {config.label()}")  # the teacher's board
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
    if job.error is not None:
        class_ui.training_finished(None)
    else:
        add_run(job.result)
        class_ui.training_finished(job.result)
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
    """The network as the fields say, with Build's batch norm and each hidden layer's dropout (a layer
    added here has none); Build's own convolutions (with their activations and dropout) while their
    field is left as it was."""
    built = lab_ui.current_build().network.arch
    try:
        arch = network.Architecture.parse(ss["tr_hidden"], ss["tr_activation"], conv=ss["tr_conv"],
                                          pool=False)
        kept = tuple(built.dropout[i] if i < len(built.dropout) else 0.0 for i in range(len(arch.hidden)))
        arch = dataclasses.replace(arch, dropout=kept, batch_norm=built.batch_norm)
        if ss["tr_conv"].strip().lower() == built.features_text():
            arch = dataclasses.replace(arch, features=built.features)
        lab_ui.set_build(dataclasses.replace(lab_ui.current_build().network, arch=arch))
        ss.pop("tr_build_error", None)
    except LabError as e:
        ss["tr_build_error"] = str(e)


# -- what to train ---------------------------------------------------------------------------------

def network_column(build: lab_ui.Build, busy: bool) -> None:
    """The network Train trains: Build's, with a way to change its shape here."""
    st.subheader("Network")
    net = build.network
    macs = f" · {net.arch.macs:,} multiply-adds an image" if net.arch.is_cnn else ""
    st.markdown(f"**{net.arch.label()}**  \n{net.arch.n_parameters:,} parameters{macs} · init "
                f"{net.init.label()} · seed {net.seed} · {lab_ui.device_label(build.device)}")
    if build.is_default:
        ds = lab_ui.dataset()
        what = ("This is the lesson's network, the default." if ds.things == "digits" else
                f"This is the default network, here learning {ds.title}'s {ds.things}.")
        st.info(f"{what} Build another on the Build page, or change it here.", icon=":material/info:")
    st.page_link("pages/build.py", label="Change it on Build", icon=":material/account_tree:")
    with st.expander("Change it here"):
        ss.setdefault("tr_conv", net.arch.features_text())
        ss.setdefault("tr_hidden", ",".join(map(str, net.arch.hidden)))
        convs = [f.activation for f in net.arch.features if isinstance(f, Conv)]  # no hidden layer: theirs
        ss.setdefault("tr_activation", ",".join(dict.fromkeys(net.arch.activations or convs[:1] or ["relu"])))
        st.text_input("Convolutions and pools", key="tr_conv",
                      help="e.g. 8:5,pool,16:5,pool: channels:kernel or channels:kernel:padding, and pool "
                           "(2×2) or pool3 (3×3), in order; empty for none (an MLP)")
        st.text_input("Hidden sizes", key="tr_hidden", help="e.g. 128,64; empty for none after convolutions")
        st.text_input("Activations", key="tr_activation", help="sigmoid, tanh or relu; one, or one per layer")
        st.button("Use this network", key="tr_use", on_click=use_network_here, disabled=busy,
                  help="Keeps Build's batch norm and each hidden layer's dropout; a layer added here has "
                       "none (Build sets them).")
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
    good = number_field(c[1], "momentum", busy, step=0.05, off=optimizer != "sgd",
                        help=setting_help("momentum"))
    c = st.columns(2)
    c[0].select_slider("Learning rate", LR_SCALE, 1e-3, key="tr_lr", format_func=lambda v: f"{v:g}",
                       disabled=busy)
    c[1].select_slider("Batch size", BATCH_SIZES, 64, key="tr_batch", disabled=busy)
    c = st.columns(2)
    c[0].slider("Epochs", 1, train_config.MAX_EPOCHS, 5, key="tr_epochs", disabled=busy)
    good &= number_field(c[1], "batch_seed", busy, help=f"0 to {network.MAX_SEED:,}. The same seed gives the "
                                                        f"same batches: compare two networks on equal terms.")
    st.selectbox("Input normalization", list(data.NORMALIZATIONS), key="tr_normalization",
                 format_func=data.NORMALIZATION_TEXT.get, disabled=busy,
                 help="How pixels are scaled before the network reads them; the trained network keeps it, "
                      "and reads drawings the same way. With the lesson's [-1, 1] the black background is "
                      "-1, so Adam moves the weights of the hundreds of pixels that are black in a whole "
                      "batch together, like hundreds of extra biases: the same network learns more "
                      "slowly. Train both with the same seeds and compare the curves.")
    with st.expander("Generalization settings", icon=":material/call_split:"):
        c = st.columns(2)
        inside = number_field(c[0], "validation", busy, step=1000.0, help=setting_help("validation"))
        inside &= number_field(c[1], "split_seed", busy, help=f"0 to {network.MAX_SEED:,}: "
                                                              f"{setting_help('split_seed')}")
        chosen = {}  # every other setting with choices, two to a row in the order of its fields
        for i, name in enumerate(n for n, f in SETTINGS.items() if f.metadata["choices"] and n not in PLACED):
            if i % 2 == 0:
                c = st.columns(2)
            chosen[name] = setting_widget(c[i % 2], name, busy)
        for name, value in chosen.items():  # what a setting does, once it is on
            if SETTINGS[name].metadata["explain"] and value != SETTINGS[name].default:
                st.caption(SETTINGS[name].metadata["explain"])
    if not inside:  # told under its field, in a section that may be closed: say where
        st.error("A generalization setting is refused: open Generalization settings to see which. Train "
                 "waits until it is fixed.", icon=":material/error:")
    good &= inside
    try:
        config = chosen_config()
    except LabError as e:
        config = None
        if good:  # a field's own error is told under it; this one is about settings together
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
        if job.held:  # resting after the batch it reported: a step moves it one batch from here
            where = f"Paused at {steps} · {epochs}"
        elif job.paused and not job.stopping:  # still training the batch it will rest after
            where = f"Pausing after this batch · {epochs} · {steps}"
        else:
            where = f"{epochs.capitalize()} · {steps}"
        st.progress(p.fraction, text=f"{where} · loss {p.loss:.3f} · training accuracy this epoch "
                                     f"{p.accuracy:.1%}")
    held = job.held and not job.stopping
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
                  disabled=not job.paused or job.stopping,
                  help=why or "Train on: to the same weights as a run never paused.")
    curves = {f"Training: {job.arch.label()}, {job.config.label()}": train.progress_curve(job.reports)}
    x, _, accuracy = checked = train.validation_progress_curve(job.reports)
    checks = {next(iter(curves)): checked}
    done, done_checks = run_results.split_curves({label: run for label, run in labelled_runs().items()
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


runs = labelled_runs()
if runs:
    st.header("Runs")
    run_results.runs_table(runs)
    run_results.compare_runs(runs)
    shown, run = run_results.chosen_run(runs)
    test_split = lab_ui.split(False, run.dataset)  # the run's own data set, whichever the sidebar shows
    if run.dataset != lab_ui.dataset():
        st.info(f"This network learned {run.dataset.title}: its results are on {run.dataset.title}'s test "
                f"images.", icon=":material/info:")
    run_results.run_summary(run, test_split)
    dynamics_tab, confusion_tab, mistakes_tab, weights_tab, code_tab, file_tab = st.tabs(
        ["Learning dynamics", "Confusion matrix (test)", "Mistakes (test)", "Weights", "Training code",
         "Model file"])
    with dynamics_tab:
        run_results.show_dynamics(run, shown)
    with confusion_tab:
        run_results.show_confusion(run, test_split)
    with mistakes_tab:
        run_results.show_mistakes(run, test_split)
    with weights_tab:
        run_results.show_weights(run)
    with code_tab:
        run_results.show_code(run)
    with file_tab:
        run_results.show_file(run, shown)

st.subheader("Load a model file")
st.file_uploader("A .safetensors file saved by MNIST Lab", type=["safetensors"], key="tr_upload",
                 on_change=upload_model, max_upload_size=math.ceil(model_files.MAX_FILE_BYTES / 2**20))
if "tr_upload_error" in ss:
    st.error(ss["tr_upload_error"])
