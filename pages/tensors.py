"""From tensors: the lesson's network by hand — `torch.randn` weights, `torch.mm`, sigmoid, softmax —
on a batch of the chosen data set."""

import pandas as pd
import streamlit as st

import lab_ui
import page_cache
from mnistlab import lesson_step
from mnistlab.network import MAX_SEED, MAX_WIDTH

lab_ui.entry_guard()


# The lesson's network for one (n_hidden, seed) and its figures are built once per server and shared
# (page_cache): moving the image slider or coming back to the page rebuilds nothing but the chosen
# image's figure.

st.title("A network from tensors")
st.caption("Before `nn`: weights are plain tensors, a layer is a matrix multiplication plus a bias, "
           "and the activation is a formula. Each step shows its code, then what it gives.")

c = st.columns(3)
n_hidden = int(c[0].number_input("Hidden units (n_hidden)", 1, MAX_WIDTH, 256, key="t_hidden"))
seed = int(c[1].number_input("Seed (torch.manual_seed)", 0, MAX_SEED, lesson_step.SEED, key="t_seed"))
index = int(c[2].slider("Image in the batch", 0, lesson_step.BATCH - 1, 0, key="t_index"))

ds = lab_ui.dataset()
images, labels, t, hidden_figure = page_cache.lesson_network(n_hidden, seed, ds.name)


def step(title: str, code: str):
    """A numbered step, notebook-like: its code, then a container for what it gives."""
    st.subheader(title)
    st.code(code, language="python")
    return st.container()


with step("1. A batch, flattened", "dataiter = iter(trainloader)\nimages, labels = next(dataiter)\n\n"
          f"# {ds.inputs} inputs per image\ninputs = images.view(images.shape[0], -1)"):
    st.code(f">>> images.shape\n{t['images'].shape}\n>>> inputs.shape\n{t['inputs'].shape}",
            language="python")

with step("2. Weights and biases from torch.randn",
          f"torch.manual_seed({seed})\n\nn_input = {ds.inputs}\nn_hidden = {n_hidden}\n"
          f"n_output = {ds.n_classes}\n\n"
          "W1 = torch.randn(n_input, n_hidden)\nW2 = torch.randn(n_hidden, n_output)\n"
          "B1 = torch.randn((1, n_hidden))\nB2 = torch.randn((1, n_output))"):
    names = ["images", "inputs", "W1", "B1", "hidden", "W2", "B2", "scores", "probabilities"]
    st.dataframe(pd.DataFrame({"tensor": names, "shape": [str(t[n].shape) for n in names]}),
                 hide_index=True, width="stretch")
    st.caption(f"`torch.mm(inputs, W1)` needs inputs' {ds.inputs} columns to match W1's {ds.inputs} rows; "
               f"B1's shape (1, n_hidden) is broadcast over the batch's rows.")

with step("3. Hidden layer: sigmoid of inputs × W1 + B1",
          "def activation(x):\n    return 1 / (1 + torch.exp(-x))\n\n"
          "hidden = activation(torch.mm(inputs, W1) + B1)"):
    lab_ui.plot(hidden_figure)
    st.caption(f"Each hidden unit adds up {ds.inputs} inputs times unscaled `randn` weights, so its input is "
               "far from 0 and the sigmoid sits at 0 or 1, where its slope (and learning) is almost nil. "
               "That is why `nn.Linear` scales its initial weights by 1/√inputs.")

with step("4. Output scores and softmax",
          "def softmax(x):\n    # minus each row's max: the same result, and exp cannot overflow\n"
          "    e = torch.exp(x - x.max(dim=1, keepdim=True).values)\n"
          "    return e / torch.sum(e, dim=1).view(-1, 1)\n\n"
          "scores = torch.mm(hidden, W2) + B2\nprobabilities = softmax(scores)\n\n"
          "probabilities.shape\nprobabilities.sum(dim=1)"):
    ps = t["probabilities"]
    lab_ui.plot(page_cache.image_figure(n_hidden, seed, index, ds.name))
    sums = ", ".join(f"{v:.4f}" for v in ps.sum(dim=1).tolist())
    st.code(f">>> probabilities.shape\n{ps.shape}\n>>> probabilities.sum(dim=1)\ntensor([{sums}])",
            language="python", wrap_lines=True)
    named = f" ({', '.join(ds.classes)})" if ds.things != "digits" else ""
    st.caption(f"Every row sums to 1: a probability for each of the {ds.n_classes} classes{named}. With "
               f"random weights the guess means nothing yet.")
