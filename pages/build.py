"""Build: put a network together layer by layer and see everything `nn` makes of it.

The architecture, init and seed are mirrored in the address bar, so a copied link rebuilds the
same network, weight for weight, in another browser.
"""

import pandas as pd
import streamlit as st

import build_layers
import lab_ui
import page_cache
from mnistlab import activations, codegen, conv_plots, network, network_diagram, notebook, share
from mnistlab.activations import ACTIVATIONS
from mnistlab.errors import ConfigError
from mnistlab.layers import shape_text
from mnistlab.network import (
    MAX_DROPOUT,
    MAX_HIDDEN_LAYERS,
    MAX_SEED,
    MAX_WIDTH,
    Architecture,
    Init,
    available_devices,
    check_seed,
    parameter_table,
)

DEFAULT_INIT, NORMAL_INIT = "PyTorch default", "Normal(0, std)"

lab_ui.entry_guard()

# What the page shows of a network (its figures, its code) is built once per server and shared: page_cache.

# -- widget state: the layer list lives in keyed widgets b_size_<i>, b_act_<i>, b_drop_<i> -----------
# (the convolutions and pools before them: build_layers). Sizes and the seed are held as floats, the
# type of their fields (lab_ui.whole_field).
LAYER_KEYS = ("b_size", "b_act", "b_drop")


def load(state: network.Network, device: str) -> None:
    """Put a Build state into the page's widgets (before they are drawn)."""
    ss = st.session_state
    for i in range(MAX_HIDDEN_LAYERS):
        for k in LAYER_KEYS:
            ss.pop(f"{k}_{i}", None)
    for i, (size, act, p) in enumerate(zip(state.arch.hidden, state.arch.activations, state.arch.dropout)):
        ss[f"b_size_{i}"], ss[f"b_act_{i}"], ss[f"b_drop_{i}"] = float(size), act, float(p)
    build_layers.load(state.arch.features)
    ss["b_layers"] = len(state.arch.hidden)
    ss["b_bn"] = state.arch.batch_norm
    ss["b_init"] = DEFAULT_INIT if state.init.weight_std is None else NORMAL_INIT
    ss["b_std"] = state.init.weight_std or 0.01
    ss["b_zero_bias"] = state.init.zero_bias
    ss["b_seed"] = float(state.seed)
    ss["b_device"] = device if device in available_devices() else available_devices()[0]


def add_layer() -> None:
    ss, n = st.session_state, st.session_state["b_layers"]
    ss[f"b_size_{n}"] = 64.0
    ss[f"b_act_{n}"], ss[f"b_drop_{n}"] = (ss[f"b_act_{n - 1}"], ss[f"b_drop_{n - 1}"]) if n else \
        ("relu", 0.0)
    ss["b_layers"] = n + 1


def remove_layer(i: int) -> None:
    ss, n = st.session_state, st.session_state["b_layers"]
    for k in LAYER_KEYS:
        for j in range(i, n - 1):
            ss[f"{k}_{j}"] = ss[f"{k}_{j + 1}"]
        del ss[f"{k}_{n - 1}"]
    ss["b_layers"] = n - 1


def chosen_image() -> int | None:
    """The test image the Network and Forward pass tabs run through the network (one choice for both);
    None, with a message under the field, when it is not one of the test images."""
    last = lab_ui.shown_test_images() - 1  # the hidden test images are never shown one by one
    column = st.columns(3)[0]
    index = lab_ui.whole_field(column, f"Test image (0 to {last:,})", "b_image", help=lab_ui.hidden_note())
    if isinstance(index, int) and 0 <= index <= last:
        return index
    column.error(f"The test image must be a whole number from 0 to {last:,}; got {index:g}. "
                 f"{lab_ui.hidden_note()}")
    return None


# A link's values win when they differ from what this page last wrote (a new link, or an edited
# address); otherwise the visitor's own Build comes back, e.g. after visiting another page.
ds = lab_ui.dataset()
from_url = {k: v for k, v in st.query_params.to_dict().items() if k in share.KEYS}
if from_url and from_url != st.session_state.get("b_url"):
    decoded, notices = share.decode(from_url)
    load(decoded, lab_ui.current_build().device)
    st.session_state["b_notices"] = (share.encode(decoded), notices)
elif "b_seed" not in st.session_state:
    b = lab_ui.current_build()
    load(b.network, b.device)

st.title("Build a network")
outputs = f"10 outputs (its classes{': ' + ', '.join(ds.classes) if ds.things != 'digits' else ''})"
if st.session_state["b_features"]:
    st.caption(f"Each {ds.title} image ({shape_text(ds.image_shape)}) → your convolutions and pools → "
               f"flattened → your hidden layers → {outputs} → softmax, as the lesson's `nn.Sequential`.")
else:
    st.caption(f"784 inputs (a {ds.title} image's 28×28 pixels) → your hidden layers → {outputs} → softmax, "
               f"as the lesson's `nn.Sequential`.")

# The controls take nearly half: at 1280 px beside the sidebar a narrower share wraps a hidden layer's
# labels ("drop / out") and a CNN's layers have more fields still.
controls, model_view = st.columns([1, 1.12], gap="large")
with controls:
    st.subheader("Convolutions")
    n_layers, n_features = st.session_state["b_layers"], st.session_state["b_features"]
    features, feature_problems = build_layers.read_features()
    build_layers.feature_rows(features, feature_problems, n_layers)
    build_layers.add_buttons()
    if not n_features:
        st.caption("None: every pixel goes straight to fc1, as in the lesson. A convolution slides small "
                   "filters over the image; a pool keeps the largest value of each window.")

    st.subheader("Hidden layers")
    sizes, drops = [], []
    for i in range(n_layers):
        # "sigmoid" and every label whole at 1280 px: the fields close together, the bin narrow
        c = st.columns([1.6, 2.1, 1.45, 0.5], gap="xsmall", vertical_alignment="bottom")
        sizes.append(lab_ui.whole_field(c[0], f"fc{i + 1} units", f"b_size_{i}", help=f"1 to {MAX_WIDTH:,}"))
        c[1].selectbox(f"activation {i + 1}", list(ACTIVATIONS), key=f"b_act_{i}")
        drops.append(c[2].number_input("dropout", step=0.1, format="%g", key=f"b_drop_{i}",
                                       help=f"0 to {MAX_DROPOUT:g}"))
        c[3].button("", icon=":material/delete:", key=f"b_remove_{i}", on_click=remove_layer, args=(i,),
                    disabled=n_layers == 1 and not n_features, help=f"Remove hidden layer {i + 1}")
    if not n_layers:
        st.caption("None: the last layer's maps, flattened, go straight to the output.")
    fitting = tuple(features[:min(feature_problems, default=len(features))])  # the layers before a misfit
    try:  # no bounds on the number inputs, where the browser would refuse a value silently: this says why
        arch = Architecture(tuple(sizes), tuple(st.session_state[f"b_act_{i}"] for i in range(n_layers)),
                            dropout=tuple(round(p, 12) for p in drops),  # the steps' 0.30000000000000004
                            batch_norm=st.session_state["b_bn"], features=fitting)
    except ConfigError as e:
        arch = None
        st.error(str(e))
    if feature_problems:  # told beside the layer that does not fit
        arch = None
    st.button("Add hidden layer", icon=":material/add:", on_click=add_layer, key="b_add",
              disabled=n_layers >= MAX_HIDDEN_LAYERS,
              help=f"At most {MAX_HIDDEN_LAYERS} hidden layers")
    st.toggle("Batch norm", key="b_bn")
    st.caption(f"Dropout p: the share of a layer's units dropped at random while training (0 to "
               f"{MAX_DROPOUT:g}; 0: no `nn.Dropout`). Batch norm: `nn.BatchNorm1d` after each hidden "
               f"Linear, before its activation" + ("; `nn.BatchNorm2d` after each convolution." if n_features
                                                  else "."))

    st.subheader("Initial weights")
    init_kind = st.radio("Weights", [DEFAULT_INIT, NORMAL_INIT], key="b_init", horizontal=True)
    std = st.select_slider("std (log scale)", share.STD_SCALE, key="b_std", format_func=lambda s: f"{s:g}",
                           disabled=init_kind == DEFAULT_INIT)
    zero_bias = st.checkbox("Zero biases", key="b_zero_bias")
    c = st.columns(2)
    seed = lab_ui.whole_field(c[0], "Seed", "b_seed", help=f"0 to {MAX_SEED:,}")
    try:
        seed = check_seed(seed)
    except ConfigError as e:
        seed = None
        c[0].error(str(e))
    device = c[1].selectbox("Device", available_devices(), key="b_device")

try:
    init = Init(zero_bias, std if init_kind == NORMAL_INIT else None)
except ConfigError as e:
    model_view.error(str(e))
    st.stop()
if arch is None or seed is None:  # told under the field
    st.stop()

state = network.Network(arch, init, int(seed))
params = share.encode(state, ds)
lab_ui.set_build(state, device)
if from_url != params:
    st.query_params.from_dict(params)
st.session_state["b_url"] = params

link_state, notices = st.session_state.get("b_notices", (None, []))
if notices and link_state == params:
    for notice in notices:
        model_view.warning(notice, icon=":material/link_off:")

model = None
with model_view, lab_ui.show_errors():
    # the visitor's device, built once per server (page_cache): an unavailable one is an error
    model = page_cache.built(arch, init, int(seed), device)
    if arch.is_cnn:
        build_layers.shapes_table(arch)
    else:
        table = parameter_table(model)
        st.subheader("Parameters")
        st.dataframe(pd.DataFrame([{**r, "weight": str(r["weight"]), "bias": str(r["bias"])} for r in table]),
                     hide_index=True, width="stretch",
                     column_config={"parameters": st.column_config.NumberColumn(format="localized")})
        st.metric("Total", f"{sum(r['parameters'] for r in table):,}")
    url = st.context.url
    st.caption("The address bar holds this network: copy the link to share it"
               + (f": {url}?{'&'.join(f'{k}={v}' for k, v in params.items())}" if url else "."))

if model is None:
    st.stop()

st.subheader("print(model)")
style = st.radio("Code style", list(codegen.STYLES), format_func=codegen.STYLES.get, horizontal=True,
                 key="b_style", index=list(codegen.STYLES).index("sequential"),
                 help="How the code below writes this network; the indexed nn.Sequential numbers its "
                      "layers (0) to (n), the others name them.")
st.code(page_cache.printed(arch, style), language="text")

# Only the open tab's content runs (on_change="rerun"): an edit on the Code tab builds no figures.
# A CNN's filters and feature maps have tabs of their own; its activations are those feature maps.
names = ["Code", "Network", *(["Filters"] if arch.conv_names() else []),
         *(["Feature maps"] if arch.is_cnn else []), "Weights and biases",
         "Forward pass", *([] if arch.is_cnn else ["Activations"])]
tabs = dict(zip(names, st.tabs(names, key="b_tab", on_change="rerun")))
for key in ("b_shared_scale", "b_image"):  # a closed tab's widgets keep their values meanwhile
    if key in st.session_state:
        st.session_state[key] = st.session_state[key]

if tabs["Code"].open:
    tabs["Code"].code(page_cache.generated(state, style, device), language="python")
    tabs["Code"].download_button(
        "Download as Jupyter notebook", icon=":material/download:", key="b_notebook",
        data=lambda: notebook.to_bytes(notebook.build(state, style)),
        file_name=f"mnist-lab-{arch.label().replace(' ', '-').replace('/', '-')}.ipynb",
        mime="application/x-ipynb+json", on_click="ignore",
        help="This code as a notebook: it prints the same model and draws the same weights.")

if tabs["Network"].open:
    with tabs["Network"]:
        index = chosen_image()
        if index is not None:
            lab_ui.plot(page_cache.network_view(arch, init, int(seed), index, ds.name))
            st.caption(network_diagram.LEGEND)

if "Filters" in tabs and tabs["Filters"].open:
    with tabs["Filters"]:
        st.caption(f"{conv_plots.FILTERS_LEGEND} Untrained, they are the init's random numbers: train this "
                   f"network on Train to watch them become edge and stroke detectors.")
        lab_ui.plot(page_cache.filters_view(arch, init, int(seed)))

if "Feature maps" in tabs and tabs["Feature maps"].open:
    with tabs["Feature maps"]:
        index = chosen_image()
        if index is not None:
            st.caption(conv_plots.MAPS_LEGEND)
            lab_ui.plot(page_cache.feature_maps_view(arch, init, int(seed), index, ds.name))

if tabs["Weights and biases"].open:
    with tabs["Weights and biases"]:
        histograms = st.empty()
        shared = not arch.is_cnn and st.toggle(
            "One colour scale for all units", key="b_shared_scale",
            help="Off: each unit on its own scale, so every unit's pattern shows. On: one scale, to compare "
                 "the units' sizes.")
        histogram_figure, images_figure = page_cache.weight_figures(arch, init, int(seed), shared)
        with histograms:
            lab_ui.plot(histogram_figure)
        if images_figure is not None:
            lab_ui.plot(images_figure)

if tabs["Forward pass"].open:
    with tabs["Forward pass"]:
        index = chosen_image()
        if index is not None:
            lab_ui.plot(page_cache.forward_figure(arch, init, int(seed), index, ds.name))

if "Activations" in tabs and tabs["Activations"].open:
    with tabs["Activations"]:
        rows, figure = page_cache.activation_view(arch, init, int(seed), ds.name)
        st.caption(f"Each hidden layer's outputs for the first {page_cache.ACTIVATION_BATCH} {ds.title} test "
                   f"images. Saturated: a sigmoid or tanh output where its slope is under "
                   f"{activations.SATURATION:.0%} of its peak. Dead: a ReLU unit that outputs 0 for every "
                   f"image.")
        st.dataframe(rows, hide_index=True, width="stretch")
        lab_ui.plot(figure)
