"""Build's convolutions and pools: the widgets that hold them (b_kind_<i> "conv" or "pool"; a
convolution's b_ch_<i>, b_k_<i>, b_pad_<i>, b_cact_<i>, b_cdrop_<i>; a pool's b_pool_<i>; b_features,
how many), their rows with the core's message beside a layer that does not fit, and a CNN's table
of shapes. Layout, as a page is: the layers, their shape check and their counts are `mnistlab`'s."""

import pandas as pd
import streamlit as st

import lab_ui
from mnistlab.activations import ACTIVATIONS
from mnistlab.errors import ConfigError
from mnistlab.layers import MAX_CHANNELS, MAX_DROPOUT, MAX_KERNEL, MAX_POOL, Conv, Pool, shape_text
from mnistlab.network import MAX_CONV_LAYERS, Architecture

FEATURE_KEYS = ("b_kind", "b_ch", "b_k", "b_pad", "b_cact", "b_cdrop", "b_pool")
BATCH = 64  # the batch the shapes table shows, as the lesson's trainloader gives it


def set_feature(i: int, layer: Conv | Pool) -> None:
    ss = st.session_state
    ss[f"b_kind_{i}"] = layer.kind
    if isinstance(layer, Conv):
        ss[f"b_ch_{i}"], ss[f"b_k_{i}"], ss[f"b_pad_{i}"] = map(float, (layer.channels, layer.kernel,
                                                                        layer.padding))
        ss[f"b_cact_{i}"], ss[f"b_cdrop_{i}"] = layer.activation, float(layer.dropout)
    else:
        ss[f"b_pool_{i}"] = float(layer.size)


def load(features: tuple) -> None:
    """Put a network's convolutions and pools into the widgets (before they are drawn)."""
    ss = st.session_state
    for i in range(2 * MAX_CONV_LAYERS):
        for k in FEATURE_KEYS:
            ss.pop(f"{k}_{i}", None)
    for i, layer in enumerate(features):
        set_feature(i, layer)
    ss["b_features"] = len(features)


def conv_count() -> int:
    ss = st.session_state
    return sum(ss[f"b_kind_{i}"] == "conv" for i in range(ss["b_features"]))


def add_feature(kind: str) -> None:
    """A convolution (the last one's channels doubled, 5×5, as ConvNetJS's 8:5 then 16:5) or a 2×2
    pool, after the others."""
    ss, n = st.session_state, st.session_state["b_features"]
    convs = [i for i in range(n) if ss[f"b_kind_{i}"] == "conv"]
    channels = min(2 * int(ss[f"b_ch_{convs[-1]}"]), MAX_CHANNELS) if convs else 8
    default_act = ss["b_act_0"] if ss["b_layers"] else "relu"
    set_feature(n, Conv(channels, 5, activation=default_act) if kind == "conv" else Pool(2))
    ss["b_features"] = n + 1


def swap_features(i: int, j: int) -> None:
    ss = st.session_state
    for k in FEATURE_KEYS:
        a, b = ss.pop(f"{k}_{i}", None), ss.pop(f"{k}_{j}", None)
        if b is not None:
            ss[f"{k}_{i}"] = b
        if a is not None:
            ss[f"{k}_{j}"] = a


def remove_feature(i: int) -> None:
    ss, n = st.session_state, st.session_state["b_features"]
    for j in range(i, n - 1):
        swap_features(j, j + 1)
    for k in FEATURE_KEYS:
        ss.pop(f"{k}_{n - 1}", None)
    ss["b_features"] = n - 1


def read_features() -> tuple[list[Conv | Pool | None], dict[int, str]]:
    """The convolutions and pools as their fields say, and the core's message for each that does not
    fit (a field out of range, or its shape after the layers before it), by position."""
    ss, layers, problems = st.session_state, [], {}
    for i in range(ss["b_features"]):
        try:
            if ss[f"b_kind_{i}"] == "conv":
                layers.append(Conv(lab_ui.typed(ss[f"b_ch_{i}"]), lab_ui.typed(ss[f"b_k_{i}"]),
                                   lab_ui.typed(ss[f"b_pad_{i}"]), ss[f"b_cact_{i}"],
                                   round(ss[f"b_cdrop_{i}"], 12)))
            else:
                layers.append(Pool(lab_ui.typed(ss[f"b_pool_{i}"])))
        except ConfigError as e:
            layers.append(None)
            problems[i] = f"Layer {i + 1}: {e}"
    if not problems:  # the shape check, layer by layer: which one no longer fits
        for i in range(len(layers)):
            try:
                Architecture((), features=tuple(layers[:i + 1]), batch_norm=ss["b_bn"])
            except ConfigError as e:
                problems[i] = str(e)
                break
    return layers, problems


def feature_rows(layers: list, problems: dict[int, str], n_hidden: int) -> None:
    """Each convolution and pool: its fields, its output shape, move up or down, remove; the core's
    message beside a layer that does not fit."""
    ss, n, counts = st.session_state, len(layers), {"conv": 0, "pool": 0}
    shape = None
    for i, layer in enumerate(layers):
        kind = ss[f"b_kind_{i}"]
        counts[kind] += 1
        if layer is not None and not any(j <= i for j in problems):
            shape = Architecture((), features=tuple(layers[:i + 1])).shapes()[i + 1]
        with st.container(border=True):
            with st.container(horizontal=True, vertical_alignment="center", gap="small", wrap=False):
                fits = shape and not any(j <= i for j in problems)
                out = f":gray[→ {shape_text(shape)}]" if fits else ""  # where it does not fit: why, below
                st.markdown(f"**Layer {i + 1}**: {kind}{counts[kind]}  \n{out}", width="stretch")
                st.button("", icon=":material/arrow_upward:", key=f"b_up_{i}", on_click=swap_features,
                          args=(i - 1, i), disabled=i == 0, help="Move up", width="content", type="tertiary")
                st.button("", icon=":material/arrow_downward:", key=f"b_down_{i}", on_click=swap_features,
                          args=(i, i + 1), disabled=i == n - 1, help="Move down", width="content",
                          type="tertiary")
                last = n == 1 and n_hidden == 0
                st.button("", icon=":material/delete:", key=f"b_fremove_{i}", on_click=remove_feature,
                          args=(i,), disabled=last, width="content", type="tertiary",
                          help="Add a hidden layer first: without convolutions a network needs one" if last
                          else f"Remove layer {i + 1}")
            if kind == "conv":
                c = st.columns(3, vertical_alignment="bottom")
                lab_ui.whole_field(c[0], "channels", f"b_ch_{i}", help=f"1 to {MAX_CHANNELS} feature maps")
                lab_ui.whole_field(c[1], "kernel", f"b_k_{i}", help=f"1 to {MAX_KERNEL}: a k×k filter")
                lab_ui.whole_field(c[2], "padding", f"b_pad_{i}", help="0 to kernel − 1 zeros on each side")
                c = st.columns([2, 1], vertical_alignment="bottom")
                c[0].selectbox("activation", list(ACTIVATIONS), key=f"b_cact_{i}")
                c[1].number_input("dropout", step=0.1, format="%g", key=f"b_cdrop_{i}",
                                  help=f"0 to {MAX_DROPOUT:g}")
            else:
                c = st.columns(3, vertical_alignment="bottom")
                lab_ui.whole_field(c[0], "pool size", f"b_pool_{i}", help=f"2 to {MAX_POOL}: the largest of "
                                                                          f"each n×n window")
            if i in problems:
                st.error(problems[i])


def add_buttons() -> None:
    n = st.session_state["b_features"]
    with st.container(horizontal=True, gap="small"):
        st.button("Convolution", icon=":material/add:", key="b_add_conv", on_click=add_feature,
                  args=("conv",), disabled=conv_count() >= MAX_CONV_LAYERS or n >= 2 * MAX_CONV_LAYERS,
                  help=f"Add a convolution after the layers above (at most {MAX_CONV_LAYERS})")
        st.button("Pool", icon=":material/add:", key="b_add_pool", on_click=add_feature, args=("pool",),
                  disabled=n >= 2 * MAX_CONV_LAYERS,
                  help=f"Add a 2×2 max pool after the layers above (at most {2 * MAX_CONV_LAYERS} "
                       f"convolutions and pools)")


def batch_shape(shape: tuple, keep: str = " ") -> str:
    """(64, 8, 24, 24): a shape with the batch; `keep` between its numbers ("\N{NO-BREAK SPACE}" keeps
    one shape on one line where a long chain of them wraps)."""
    return str((BATCH, *shape)).replace(" ", keep)


def shapes_table(arch: Architecture) -> None:
    """A CNN's layers as the lesson writes a batch's shapes, (64, 1, 28, 28) → (64, 8, 24, 24) → …, each
    with its parameters and multiply-adds per image (`Architecture.table`), and the totals."""
    st.subheader("Layers and shapes")
    st.code(" → ".join(batch_shape(s, "\N{NO-BREAK SPACE}") for s in arch.shapes()), language=None,
            wrap_lines=True)
    counts, rows = {}, []
    for row in arch.table():
        counts[row["layer"]] = counts.get(row["layer"], 0) + 1
        name = {"conv": "conv", "pool": "pool", "linear": "fc"}.get(row["layer"], "")
        rows.append({"layer": f"{name}{counts[row['layer']]}" if name else row["layer"],
                     "output shape": batch_shape(row["shape"]), "parameters": row["parameters"],
                     "multiply-adds": row["macs"]})
    number = st.column_config.NumberColumn
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch",  # fits its column at 1280 px
                 column_config={"layer": st.column_config.TextColumn(width=58),
                                "output shape": st.column_config.TextColumn(width=108),
                                "parameters": number("params", format="localized", width=72,
                                                     help="Its weights and biases"),
                                "multiply-adds": number(format="localized", width=110,
                                                        help="Multiply-adds per image")})
    c = st.columns(2)
    c[0].metric("Total parameters", f"{arch.n_parameters:,}")
    c[1].metric("Multiply-adds per image", f"{arch.macs:,}")
