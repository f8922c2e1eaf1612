"""Explore: sweep many architectures on equal terms and see which shapes win, by how much, at what cost.

The sweep itself (its trials, the queue's turns, storage, the Pareto front) is `mnistlab.sweep`;
this page lays out its settings and draws its records, live while it runs. `?sweep=<id>` opens
a saved sweep.
"""

import pandas as pd
import streamlit as st

import class_ui
import lab_ui
import page_cache
import visitor
from mnistlab import (
    dataset,
    db,
    jobs,
    layers,
    network,
    share,
    sweep,
    sweep_db,
    sweep_plots,
    sweep_results,
    sweep_run,
)
from mnistlab.activations import ACTIVATIONS
from mnistlab.errors import LabError
from mnistlab.train_config import TrainConfig

lab_ui.entry_guard()

WIDTHS = [8, 16, 32, 64, 128, 256, 512, 1024]
LR_SCALE = [1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1]
INITS = ["default", *share.STD_SCALE]
DROPOUTS = [0.0, 0.2, 0.5]
# Convolution stacks to compare with MLPs (each convolution followed by a 2×2 max pool): ConvNetJS's
# MNIST demo (5,994 parameters with no hidden layer), a wider pair, and a padded 3×3 pair (50,186).
CONVS = ["none", "8:5,pool,16:5,pool", "16:5,pool,32:5,pool", "32:3:1,pool,64:3:1,pool"]
# The training settings a sweep can vary, each with a menu from its field (label, help, choices, how a
# value reads) under the key "ex_" + its axis, e.g. ex_weight_decays
SWEPT = {f"ex_{f.metadata['sweep'].axis}": f for f in TrainConfig.swept()}
DEFAULTS = {"ex_depths": [1, 2], "ex_widths": [16, 64, 256], "ex_rule": "same",
            "ex_activations": ["relu", "sigmoid"], "ex_inits": ["default"], "ex_lrs": [1e-3], "ex_seeds": 1,
            "ex_epochs": 1, "ex_search": "grid", "ex_sample": 8, "ex_dropouts": [0.0], "ex_bns": [False],
            "ex_convs": ["none"],
            **{key: [f.default] for key, f in SWEPT.items()}}
# The axes over the network beside its shape and over training settings: widget, SweepSettings axis,
# what a list of its values is called (so an empty one says which).
MORE_AXES = {"ex_convs": ("convs", "Convolutions"), "ex_dropouts": ("dropouts", "Dropouts"),
             "ex_bns": ("batch_norms", "Batch norm"),
             **{key: (f.metadata["sweep"].axis, f.metadata["sweep"].title) for key, f in SWEPT.items()}}

ss = st.session_state


def sweeps() -> sweep_db.SweepDatabase:
    return page_cache.sweeps_at(db.url(), str(sweep_db.old_file()))


def settings_from_widgets() -> sweep.SweepSettings:
    axes = {axis: sweep.parse_list(title, ss[key]) for key, (axis, title) in MORE_AXES.items()}
    return sweep.SweepSettings.of(
        depths=ss["ex_depths"], widths=ss["ex_widths"], width_rule=ss["ex_rule"],
        activations=ss["ex_activations"], inits=[None if i == "default" else i for i in ss["ex_inits"]],
        lrs=ss["ex_lrs"], seeds=ss["ex_seeds"], epochs=ss["ex_epochs"], dataset=lab_ui.dataset().name,
        sample=ss["ex_sample"] if ss["ex_search"] == "random" else None, **axes)


def linked_axes(linked: sweep.SweepSettings) -> dict:
    """The widgets' values for a link's dropouts, batch norm, and training settings it varies (or holds)."""
    return {"ex_convs": list(linked.convs), "ex_dropouts": list(linked.dropouts),
            "ex_bns": list(linked.batch_norms),
            **{key: list(getattr(linked, f.metadata["sweep"].axis) or (getattr(linked.base, f.name),))
               for key, f in SWEPT.items()}}


def conv_text(stack: str) -> str:
    """A convolution stack as a menu shows it: "conv 8:5 → pool → conv 16:5 → pool"."""
    if stack == "none":
        return "none (an MLP)"
    return " → ".join(p if p.startswith("pool") else f"conv {p}" for p in stack.split(","))


def setting_menu(place, key: str) -> None:
    """The menu of a training setting's values to compare, as its field says (None sorts last: all
    training images)."""
    f = SWEPT[key]
    options = sorted({*f.metadata["choices"], *ss[key]}, key=lambda v: (v is None, v))
    help_ = f.metadata["help"]
    place.multiselect(f.metadata["label"], options, key=key, format_func=f.metadata["text"],
                      help=help_[0].upper() + help_[1:] + ".")


def start(settings: sweep.SweepSettings) -> None:
    try:
        data = settings.base.data  # a resumed sweep's own, whichever the sidebar shows
        ss["ex_sweep"] = sweep_run.Sweep(settings, lab_ui.split(True, data), lab_ui.split(False, data),
                                         sweeps(), owner=lab_ui.owner(),
                                         saved_for=visitor.visitor_id(),  # ends if the visitor leaves
                                         class_code=seat.code if (seat := class_ui.seat()) else None).start()
        show(ss["ex_sweep"].id)
        ss.pop("ex_error", None)
        ss.pop("ex_notices", None)  # the link's notices were about the settings before this sweep
    except LabError as e:
        ss["ex_error"] = str(e)


def show(sweep_id: str) -> None:
    ss["ex_shown"] = sweep_id
    ss.pop("ex_pick", None)
    st.query_params["sweep"] = sweep_id


def finish(run: sweep_run.Sweep) -> None:
    del ss["ex_sweep"]
    if run.error is not None:
        ss["ex_error"] = str(run.error) if isinstance(run.error, LabError) else \
            f"The sweep failed ({type(run.error).__name__}: {run.error})."
    elif run.stop_reason == "time limit":
        ss["ex_error"] = (f"A trial reached this server's limit of {jobs.MAX_RUN_SECONDS / 60:g} minutes per "
                          f"run; the sweep stopped. Its finished trials are kept below.")


def picked_from_chart(key: str) -> None:
    points = ss[key].selection.points if ss.get(key) else []
    if points and "customdata" in points[0]:
        ss["ex_pick"] = int(points[0]["customdata"])


def picked_from_table() -> None:
    chosen = ss["ex_table"].selection.rows if ss.get("ex_table") else []
    if chosen:
        ss["ex_pick"] = chosen[0]  # rows are numbered as summarize() gave them, whatever the sort


def row_network(row: dict, data) -> network.Network:
    """A results row's network (seed 0) for the sweep's data set, its convolutions, dropout and batch
    norm included."""
    dropout = row.get("dropout") or 0.0
    convs = (row.get("convs") or "none").replace("none", "")
    dropout = tuple(dropout) if isinstance(dropout, list) else dropout
    arch = network.Architecture(tuple(row["hidden"]), tuple(row["activations"]), data.image_shape,
                                data.n_classes, dropout=dropout, batch_norm=bool(row.get("batch_norm")),
                                features=layers.parse_features(convs, row["activation"], False))
    return network.Network(arch, network.Init(weight_std=row["weight_std"]), 0)


def train_fully(row: dict, data_name: str) -> None:
    lab_ui.set_build(row_network(row, dataset.get(data_name)))
    ss["lab_dataset"] = data_name  # Train trains it on the data set the sweep used
    ss["ex_goto_train"] = True


def results(records: list[dict], settings: sweep.SweepSettings, live: bool) -> None:
    """The charts, the table and the selected network's links, for the records so far."""
    rows = sweep_results.summarize(records)
    if not rows:
        return
    suffix = "_live" if live else ""
    plots = st.columns(2)
    with plots[0]:
        lab_ui.plot(sweep_plots.accuracy_vs_parameters(rows, title="Validation accuracy against size"),
                    key="ex_params" + suffix, on_select=lambda: picked_from_chart("ex_params" + suffix),
                    selection_mode="points")
    with plots[1]:
        lab_ui.plot(sweep_plots.accuracy_vs_time(rows, title="Validation accuracy against time"),
                    key="ex_time" + suffix, on_select=lambda: picked_from_chart("ex_time" + suffix),
                    selection_mode="points")
    if len({r["family"] for r in rows}) > 1:  # both families: what each costs to run, too
        lab_ui.plot(sweep_plots.accuracy_vs_macs(rows, title="Validation accuracy against multiply-adds an "
                                                             "image"),
                    key="ex_macs" + suffix, on_select=lambda: picked_from_chart("ex_macs" + suffix),
                    selection_mode="points")
    seeds = f"mean of {settings.seeds} seeds; " if settings.seeds > 1 else ""
    st.caption(f"Each point is one network ({seeds}error bars: ± one standard deviation), placed by its "
               f"validation accuracy: validation chooses, the test set is kept for the report (in the "
               f"table and each point's hover). The dotted line is the Pareto front: no network is more "
               f"accurate on validation with as few parameters. Click a point to open it."
               + (" Blue: MLPs, orange: CNNs. A CNN reuses each weight all over the image, so it has few "
                  "parameters for the multiply-adds it runs: the second map prices what each costs to run."
                  if len({r["family"] for r in rows}) > 1 else ""))
    if live:
        return
    capacity(rows)
    lab_ui.plot(sweep_plots.width_depth_heatmaps(rows, title="Best validation accuracy (%) by width and "
                                                             "depth"))
    if len(rows) > 1:
        lab_ui.plot(sweep_plots.parallel_coordinates(rows, title="Every setting at once, coloured by "
                                                                 "validation accuracy (drag along an axis "
                                                                 "to filter)"))
    table(rows, settings)


def capacity(rows: list[dict]) -> None:
    """Training against validation accuracy as networks grow: for one depth and activation at a time."""
    st.subheader("Capacity: where training and validation part")
    depths = sorted({r["depth"] for r in rows})
    acts = list(dict.fromkeys(r["activation"] for r in rows))
    families = list(dict.fromkeys(r["family"] for r in rows))
    for key, options in (("ex_cap_depth", depths), ("ex_cap_act", acts), ("ex_cap_family", families)):
        if ss.get(key) not in options:  # another sweep's choice
            ss.pop(key, None)
    choose = len(depths) > 1 or len(acts) > 1 or len(families) > 1
    c = st.columns([1, 1, 1, 3]) if choose else [None, None, None, st.container()]  # text full width else
    family = c[2].selectbox("Family", families, key="ex_cap_family") if len(families) > 1 else families[0]
    depth = c[0].selectbox("Hidden layers", depths, key="ex_cap_depth") if len(depths) > 1 else depths[0]
    act = c[1].selectbox("Activation", acts, key="ex_cap_act") if len(acts) > 1 else acts[0]
    c = [None, None, c[3]]
    sized = len({r.get("train_images") for r in rows}) > 1
    c[2].caption("Each network's accuracy on the images it learned from (solid) and on validation images "
                 "it never saw (dashed), against its size"
                 + (", one pair per training-set size" if sized else "") + ". As networks grow"
                 + (" and the training set shrinks" if sized else "") + ", the solid line climbs away "
                 "from the dashed one: the gap is what was memorized, not learned. Where several settings "
                 "share a size, the one validation chooses is drawn.")
    which = f"{family}, " if len(families) > 1 else ""
    lab_ui.plot(sweep_plots.capacity(rows, depth, act, family=family,
                                     title=f"Training and validation accuracy, {which}{depth} hidden "
                                           f"layer{'s' * (depth != 1)}, {act}"),
                key="ex_capacity")


def table(rows: list[dict], settings: sweep.SweepSettings) -> None:
    """Every config, best first by validation; the settings the sweep varied as columns."""
    st.subheader("All networks")
    varied = sweep_results.varied(rows)

    def pct(x):
        return None if x is None else x * 100

    spread = settings.seeds > 1
    # what tells rows apart and the accuracies first, so a narrow screen shows them without scrolling
    # sideways (a network's name says its dropout and batch norm; their columns, to sort by, come later)
    trained = [s for s in varied if s[1] not in ("dropout", "batch_norm")]
    table = pd.DataFrame([{
        "network": r["network"],
        **{label: show(sweep_results.setting_value(r, name)) for label, name, show in trained},
        "validation (chooses)": pct(r["validation_accuracy"]),
        **({"± (seeds)": pct(r.get("validation_std"))} if spread else {}),
        "test (held out, not used to choose)": pct(r["test_accuracy"]), "train": pct(r["train_accuracy"]),
        "best epoch": r["best_epoch"], "Pareto": "★" if r["pareto"] else "", "parameters": r["parameters"],
        "init": r["init"], "lr": r["lr"],
        **{label: show(sweep_results.setting_value(r, name)) for label, name, show in varied if
           (label, name, show) not in trained},
        "stack's seconds": round(r["stack_seconds"], 1), "trained together": r["stacked"]} for r in rows])
    # Short headers (what each means is its help) and widths that fit beside the sidebar at 1280 px;
    # a setting every network shares (e.g. one learning rate) is in the sweep's label, not a column.
    number = st.column_config.NumberColumn
    st.dataframe(table, hide_index=True, key="ex_table", on_select=picked_from_table,
                 selection_mode="single-row",
                 column_order=[c for c in table.columns if c not in ("init", "lr") or table[c].nunique() > 1],
                 column_config={"network": st.column_config.TextColumn(width=180),
                                "validation (chooses)": number(
                                    "validation", format="%.2f%%", width=82,
                                    help="Accuracy on the validation images: it chooses (the ranking, the "
                                         "best network, the Pareto front)."),
                                "± (seeds)": number(format="%.2f", width=60,
                                                    help="Validation's spread over the seeds (std)."),
                                "test (held out, not used to choose)": number(
                                    "test", format="%.2f%%", width=68,
                                    help="Accuracy on the test images: held out, only reported, never used "
                                         "to choose."),
                                "train": number("train", format="%.2f%%", width=68,
                                                help="On the images it learned from."),
                                "best epoch": number(
                                    "epoch", width=52,
                                    help="The epoch with the lowest validation loss (median over seeds)."),
                                "Pareto": st.column_config.TextColumn(
                                    "★", width=36, help="On the Pareto front: no network is as accurate on "
                                                        "validation with fewer parameters."),
                                "parameters": number(format="localized", width=88),
                                "init": st.column_config.TextColumn(width=70),
                                "lr": number(format="%g", width=58),
                                "stack's seconds": number(
                                    "seconds", width=66,
                                    help="The training time of its stack: networks of one shape train "
                                         "together."),
                                "trained together": number(
                                    "stack", width=52,
                                    help="How many networks trained together in its stack.")})
    st.caption("Ranked by validation accuracy: validation chooses the best network; the test set is held out "
               "and only reported. ★ the Pareto front.")

    labels = [f"{r['network']} · init {r['init']} · lr {r['lr']:g}"
              + "".join(f" · {label} {show(sweep_results.setting_value(r, name))}"
                        for label, name, show in trained)
              + (f": validation {r['validation_accuracy']:.2%}" if r["validation_accuracy"] is not None else
                 f": test {r['test_accuracy']:.2%}") for r in rows]
    if ss.get("ex_pick") is not None and ss["ex_pick"] < len(rows):
        ss["ex_open"] = labels[ss.pop("ex_pick")]
    if ss.get("ex_open") not in labels:
        ss["ex_open"] = labels[0]
    choice = st.selectbox("Open a network (or click a point or a row)", labels, key="ex_open")
    row = rows[labels.index(choice)]
    state = row_network(row, settings.base.data)
    c = st.columns([1, 1, 2])
    c[0].page_link("pages/build.py", label="Open it on Build", icon=":material/account_tree:",
                   query_params=share.encode(state, settings.base.data))
    c[1].button("Train it fully", key="ex_train", icon=":material/model_training:", on_click=train_fully,
                args=(row, settings.base.data.name))
    ds = settings.base.data
    own = "your own digits" if ds.things == "digits" else f"drawings and uploaded pictures of {ds.things}"
    c[2].caption(f"Build shows its layers and weights (seed 0) and a link to share; Train trains it with "
                 f"the settings you choose, then Draw can test it on {own}.")


# -- the page --------------------------------------------------------------------------------------

if ss.pop("ex_goto_train", False):
    st.switch_page("pages/train.py")

st.title("Explore")
lab_ui.require_database()  # sweeps are saved there as each trial finishes
st.caption(f"Train many networks on {lab_ui.dataset().title}, on equal terms (the same "
           f"{lab_ui.dataset().things} in the same order), and see which shapes win, by how much, and at "
           f"what cost.")

running = ss.get("ex_sweep")
url_sweep = st.query_params.get("sweep")
if url_sweep and url_sweep != ss.get("ex_shown") and running is None:
    if url_sweep in sweeps():  # a link opens a sweep for whoever has it, whoever saved it
        ss["ex_shown"] = url_sweep
    else:
        st.error(f"The link asks for sweep {url_sweep[:40]!r}, which this server has not saved. "
                 f"Choose a saved sweep below or start a new one.")

if "ex_depths" not in ss:  # first run: a link's settings (?depths=1,2&widths=16,64&act=relu...) if any
    linked, ss["ex_notices"], refused = sweep.from_link(st.query_params.to_dict())
    for k in refused:  # a clean address: what is left opens what the page shows
        del st.query_params[k]
    if linked is not None:
        ss.update(ex_depths=list(linked.depths), ex_widths=list(linked.widths), ex_rule=linked.width_rule,
                  ex_activations=list(linked.activations),
                  ex_inits=["default" if s is None else s for s in linked.inits], ex_lrs=list(linked.lrs),
                  ex_seeds=linked.seeds, ex_epochs=linked.epochs,
                  ex_search="random" if linked.sample else "grid", ex_sample=linked.sample or 8,
                  **linked_axes(linked))
for key, value in DEFAULTS.items():
    ss.setdefault(key, value)
for notice in ss.get("ex_notices", []):
    st.warning(notice, icon=":material/link_off:")

st.subheader("What to try")
# Two menus to a row: at 1280 px, with the sidebar open, a menu a quarter of the page wide shows two
# or three of its values and cuts the rest ("sigm…"); half the page shows every depth and activation.
c = st.columns(2)
c[0].multiselect("Hidden layers", list(range(0, sweep.MAX_DEPTH + 1)), key="ex_depths",
                 help="0: no hidden layer (softmax regression, or a CNN straight from its last pool to the "
                      "output).")
c[1].multiselect("Widths", sorted({*WIDTHS, *ss["ex_widths"]}), key="ex_widths")
c = st.columns(2)
c[0].multiselect("Activations", list(ACTIVATIONS), key="ex_activations")
c[1].radio("A deeper network uses its width", list(sweep.WIDTH_RULES), key="ex_rule",
           format_func=sweep.WIDTH_RULES.get)
st.multiselect("Convolutions before the hidden layers",
               [*CONVS, *(v for v in ss["ex_convs"] if v not in CONVS)],
               key="ex_convs", format_func=conv_text,
               help="Each stack's convolutions, channels:kernel[:padding], each followed by a 2×2 max pool; "
                    "none: an MLP. Choose several to compare both families on one map (a CNN's epoch takes "
                    "about 10-35 times an MLP's).")
c = st.columns(2)
c[0].multiselect("Weight init", INITS, key="ex_inits",
                 format_func=lambda v: "PyTorch's default" if v == "default" else f"std {v:g}",
                 help="PyTorch's default (Kaiming uniform), or std s: weights drawn from normal(0, s), s "
                      "from Build's scale.")
c[1].multiselect("Learning rates (Adam)", sorted({*LR_SCALE, *ss["ex_lrs"]}), key="ex_lrs",
                 format_func=lambda v: f"{v:g}")
c = st.columns(2)
c[0].slider("Seeds per config", 1, sweep.MAX_SEEDS, key="ex_seeds",
            help="Each config trained with this many weight seeds: the spread shows how much is luck.")
c[1].slider("Epochs per trial", 1, sweep.MAX_TRIAL_EPOCHS, key="ex_epochs")
c = st.columns([1.3, 1.3, 2.2])
search = c[0].radio("Search", ["grid", "random"], key="ex_search", horizontal=True,
                    format_func={"grid": "Full grid", "random": "Random sample"}.get,
                    help="A random sample of the grid finds the good regions with fewer trials.")
c[1].number_input("Configs in the sample", 1, sweep.MAX_TRIALS, key="ex_sample", disabled=search != "random")
st.caption("Regularization and the data: choose several values of one to compare them (every value "
           "multiplies the trials).")
menus = st.columns(2)  # two to a row, as above: three show only two values each at 1280 px
menus[0].multiselect("Dropout", sorted({*DROPOUTS, *ss["ex_dropouts"]}), key="ex_dropouts",
                     format_func=lambda v: "none" if v == 0 else f"{v:g}",
                     help="The probability of zeroing each hidden unit's output while training, in every "
                          "hidden layer (never when evaluating).")
menus[1].multiselect("Batch norm", [False, True], key="ex_bns", format_func={False: "off", True: "on"}.get,
                     help="Batch norm in every hidden layer, between its Linear and its activation.")
for i, key in enumerate(SWEPT, start=2):
    if i % 2 == 0:
        menus = st.columns(2)
    setting_menu(menus[i % 2], key)

start_col, saved_col = st.columns([1.6, 1], gap="large")
with start_col:
    try:
        settings = settings_from_widgets()
        trials = settings.trials()
        seconds = sweep_run.estimate_seconds(trials, jobs.default_queue().slots)
        st.markdown(f"**{settings.n_trials} trials** ({settings.n_configs} configs × {settings.seeds} seed"
                    f"{'s' * (settings.seeds != 1)}), {settings.epochs} epoch{'s' * (settings.epochs != 1)} "
                    f"each: {sweep_run.about(seconds)} on this server at its pace just now.")
    except LabError as e:
        settings = None
        st.error(str(e))
    st.button("Start the sweep", key="ex_start", type="primary", icon=":material/play_arrow:",
              disabled=settings is None or running is not None, on_click=start, args=(settings,))
    if "ex_error" in ss:
        st.error(ss["ex_error"])

with saved_col:
    own = sweeps().sweeps(owner=visitor.visitor_id())
    everyone = [s for s in sweeps().sweeps(owner=sweep_db.SHARED) if s["id"] not in {o["id"] for o in own}]
    by_id = {s["id"]: s for s in own + everyone}
    if not by_id:
        st.caption("**Saved sweeps:** none yet. Every trial is saved as it finishes, so a sweep that was "
                   "interrupted can be resumed.")
    else:
        if ss.get("ex_shown") in by_id:
            ss["ex_saved"] = ss["ex_shown"]
        shared = {s["id"] for s in everyone}
        st.selectbox("Saved sweeps", list(by_id), key="ex_saved",
                     format_func=lambda i: ("Everyone's: " if i in shared else "")
                     + f"{by_id[i]['label']} ({by_id[i]['finished']} done)")
        st.button("Open", key="ex_open_saved", on_click=show, args=(ss["ex_saved"],),
                  disabled=running is not None)
    st.caption("Listed: the sweeps you started in this browser, then everyone's: those saved before sweeps "
               "had owners and those run on the server's command line. A sweep's link (its address) opens "
               "it for anyone who has it.")


# -- while it runs ---------------------------------------------------------------------------------

def draw_running(run) -> None:
    """The sweep as it runs: its progress, a Stop button and the results so far."""
    p = run.progress()
    text = p.text()
    if run.waiting:
        text += " · waiting for a free slot: other visitors' networks are training"
    st.progress(p.finished / max(1, p.total), text=text)
    st.button("Stop", key="ex_stop", icon=":material/stop:", on_click=run.stop,
              help="Keeps every trial that has finished.")
    results(run.records, run.settings, live=True)


if running is not None:
    lab_ui.while_running("ex_sweep", finish, draw_running)


# -- results ---------------------------------------------------------------------------------------

shown = ss.get("ex_shown")
if shown is not None and running is None:
    try:
        shown_settings = sweeps().settings(shown)
    except LabError as e:
        st.error(str(e))
    else:
        records = sweeps().records(shown)
        st.header("Results")
        missing = shown_settings.n_trials - len({r["key"] for r in records})
        label = shown_settings.label()
        title = shown_settings.base.data.title
        named = "" if f" on {title}" in label else f"**{title}**: "  # the label names all but MNIST
        st.markdown(f"{named}**{label}** · "
                    f"{len(records)} trained"
                    + (f", {missing} missing" if missing else ""))
        if missing:
            st.button(f"Resume: train the {missing} missing", key="ex_resume", on_click=start,
                      args=(shown_settings,), icon=":material/replay:")
        results(records, shown_settings, live=False)
