"""PyTorch source for an architecture in the lesson's four styles.

The code seeds torch's global RNG and builds the layers in the same order as `network.build`, so
running it gives exactly the weights the app shows for that seed.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from mnistlab import network
from mnistlab.activations import ACTIVATIONS
from mnistlab.network import Architecture, check_seed

STYLES = {
    "module": "nn.Module class",
    "functional": "torch.nn.functional",
    "indexed": "nn.Sequential, indexed",
    "sequential": "nn.Sequential + OrderedDict",
}


def _linears(arch: Architecture) -> list[tuple[str, int, int]]:
    s = arch.sizes
    return [(name, s[i], s[i + 1]) for i, name in enumerate(arch.linear_names())]


def _module_source(arch: Architecture) -> list[str]:
    lines = ["import torch", "from torch import nn", "", "", "class Network(nn.Module):",
             "    def __init__(self):", "        super().__init__()"]
    for (name, n_in, n_out), act in zip(_linears(arch), (*arch.activations, None)):
        lines.append(f"        self.{name} = nn.Linear({n_in}, {n_out})")
        if act:
            lines.append(f"        self.{act}{name[2:]} = {ACTIVATIONS[act].code_module}")
    lines += ["        self.softmax = nn.Softmax(dim=1)", "", "    def forward(self, x):"]
    for name, act in zip(arch.linear_names(), arch.activations):
        lines += [f"        x = self.{name}(x)", f"        x = self.{act}{name[2:]}(x)"]
    lines += ["        x = self.output(x)", "        x = self.softmax(x)", "        return x"]
    return lines


def _functional_source(arch: Architecture) -> list[str]:
    lines = ["import torch", "import torch.nn.functional as F", "from torch import nn", "", "",
             "class Network(nn.Module):", "    def __init__(self):", "        super().__init__()"]
    lines += [f"        self.{name} = nn.Linear({n_in}, {n_out})" for name, n_in, n_out in _linears(arch)]
    lines += ["", "    def forward(self, x):"]
    for name, act in zip(arch.linear_names(), arch.activations):
        lines.append(f"        x = {ACTIVATIONS[act].code_function}(self.{name}(x))")
    lines += ["        x = F.softmax(self.output(x), dim=1)", "        return x"]
    return lines


def _sequential_source(arch: Architecture) -> list[str]:
    lines = ["model = nn.Sequential(OrderedDict(["]
    for (name, n_in, n_out), act in zip(_linears(arch), (*arch.activations, None)):
        lines.append(f"    ('{name}', nn.Linear({n_in}, {n_out})),")
        if act:
            lines.append(f"    ('{act}{name[2:]}', {ACTIVATIONS[act].code_module}),")
    lines += ["    ('softmax', nn.Softmax(dim=1)),", "]))"]
    return lines


def _indexed_source(arch: Architecture) -> list[str]:
    lines = ["model = nn.Sequential("]
    for (_, n_in, n_out), act in zip(_linears(arch), (*arch.activations, None)):
        lines.append(f"    nn.Linear({n_in}, {n_out}),")
        if act:
            lines.append(f"    {ACTIVATIONS[act].code_module},")
    lines += ["    nn.Softmax(dim=1),", ")"]
    return lines


_SOURCES = {"module": _module_source, "functional": _functional_source, "indexed": _indexed_source,
            "sequential": _sequential_source}


def _check_style(style: str) -> str:
    if style not in _SOURCES:
        raise ValueError(f"style must be one of {', '.join(_SOURCES)}; got {style!r}")
    return style


def layer_refs(arch: Architecture, style: str = "sequential") -> dict[str, str]:
    """How the style's code names each Linear layer: {"fc1": "model[0]", ...} when indexed, else
    {"fc1": "model.fc1", ...} (network.build's names)."""
    if _check_style(style) == "indexed":
        return {name: f"model[{2 * i}]" for i, name in enumerate(arch.linear_names())}
    return {name: f"model.{name}" for name in arch.linear_names()}


def state_dict_for(state: dict[str, torch.Tensor], arch: Architecture, style: str) -> dict[str, torch.Tensor]:
    """`network.build`'s state_dict (fc1.weight, ..., output.bias) with the style's keys, e.g.
    0.weight for the indexed `nn.Sequential`, so its model loads the app's weights."""
    prefixes = {name: ref.removeprefix("model").strip(".[]").replace("][", ".")
                for name, ref in layer_refs(arch, style).items()}
    return {prefixes[key.split(".")[0]] + "." + key.split(".", 1)[1]: value for key, value in state.items()}


class Network(nn.Module):
    """Stands for the class the module and functional styles define, to print it (so its repr
    names it as theirs does)."""


def printed(arch: Architecture, style: str = "sequential") -> str:
    """What the style's code prints with `print(model)`, without drawing any weights."""
    layers: list[tuple[str, nn.Module]] = []
    with torch.device("meta"):  # shapes only
        for (name, n_in, n_out), act in zip(_linears(arch), (*arch.activations, None)):
            layers.append((name, nn.Linear(n_in, n_out)))
            if act and _check_style(style) != "functional":
                layers.append((f"{act}{name[2:]}", ACTIVATIONS[act].module()))
        if style != "functional":
            layers.append(("softmax", nn.Softmax(dim=1)))
    if style == "indexed":
        return repr(nn.Sequential(*(layer for _, layer in layers)))
    if style == "sequential":
        return repr(nn.Sequential(OrderedDict(layers)))
    model = Network()
    for name, layer in layers:
        model.add_module(name, layer)
    return repr(model)


def generate(net: network.Network, style: str = "module", device: str = "cpu") -> str:
    """Runnable source that builds `model` from its seed and applies its init, as `network.build` does."""
    arch, init = net.arch, net.init
    seed_line = f"torch.manual_seed({check_seed(net.seed)})"
    if _check_style(style) == "sequential":  # built inline, as the lesson does
        lines = ["from collections import OrderedDict", "", "import torch", "from torch import nn", "",
                 seed_line, *_sequential_source(arch)]
    elif style == "indexed":
        lines = ["import torch", "from torch import nn", "", seed_line, *_indexed_source(arch)]
    else:
        lines = [*_SOURCES[style](arch), "", "", seed_line, "model = Network()"]
    if init.zero_bias or init.weight_std is not None:
        lines += ["", f"# Init: {init.label()}"]
        for ref in layer_refs(arch, style).values():
            if init.zero_bias:
                lines.append(f"{ref}.bias.data.fill_(0)")
            if init.weight_std is not None:
                lines.append(f"{ref}.weight.data.normal_(std={init.weight_std!r})")
    if device != "cpu":
        lines.append(f"model = model.to({device!r})")
    lines += ["print(model)", ""]
    return "\n".join(lines)
