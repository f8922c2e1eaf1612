"""PyTorch source for an architecture in the lesson's four styles.

The code seeds torch's global RNG and builds the layers in the same order as `network.build`, so
running it gives exactly the weights the app shows for that seed.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from mnistlab import network
from mnistlab.network import Architecture, check_seed

STYLES = {
    "module": "nn.Module class",
    "functional": "torch.nn.functional",
    "indexed": "nn.Sequential, indexed",
    "sequential": "nn.Sequential + OrderedDict",
}


def _modules(arch: Architecture) -> list[tuple[str, str]]:
    """Every layer of `network.build`'s nn.Sequential but the softmax, in order: (name, code)."""
    return [(m.name, m.code) for m in arch.made()[:-1]]


def _module_source(arch: Architecture) -> list[str]:
    lines = ["import torch", "from torch import nn", "", "", "class Network(nn.Module):",
             "    def __init__(self):", "        super().__init__()"]
    lines += [f"        self.{name} = {code}" for name, code in _modules(arch)]
    lines += ["        self.softmax = nn.Softmax(dim=1)", "", "    def forward(self, x):"]
    lines += [f"        x = self.{name}(x)" for name, _ in _modules(arch)]
    lines += ["        x = self.softmax(x)", "        return x"]
    return lines


def _functional_source(arch: Architecture) -> list[str]:
    """Layers with weights (Conv2d, Linear, batch norm: it keeps running statistics) as modules;
    activations, dropout, pooling and flattening as functions; F.dropout drops only while training
    (self.training). A line for each function, the modules before it written inside it:
    `x = F.relu(self.bn1(self.fc1(x)))`."""
    made = arch.made()
    lines = ["import torch", "import torch.nn.functional as F", "from torch import nn", "", "",
             "class Network(nn.Module):", "    def __init__(self):", "        super().__init__()"]
    lines += [f"        self.{m.name} = {m.code}" for m in made if m.function is None]
    lines += ["", "    def forward(self, x):"]
    x = "x"
    for m in made:
        if m.function is None:
            x = f"self.{m.name}({x})"
        else:
            lines.append(f"        x = {m.function.format(x=x)}")
            x = "x"
    return lines + ["        return x"]


def _sequential_source(arch: Architecture) -> list[str]:
    lines = ["model = nn.Sequential(OrderedDict(["]
    lines += [f"    ('{name}', {code})," for name, code in _modules(arch)]
    lines += ["    ('softmax', nn.Softmax(dim=1)),", "]))"]
    return lines


def _indexed_source(arch: Architecture) -> list[str]:
    lines = ["model = nn.Sequential("]
    lines += [f"    {code}," for _, code in _modules(arch)]
    lines += ["    nn.Softmax(dim=1),", ")"]
    return lines


_SOURCES = {"module": _module_source, "functional": _functional_source, "indexed": _indexed_source,
            "sequential": _sequential_source}


def _check_style(style: str) -> str:
    if style not in _SOURCES:
        raise ValueError(f"style must be one of {', '.join(_SOURCES)}; got {style!r}")
    return style


def _refs(arch: Architecture, style: str) -> dict[str, str]:
    """How the style's code names each layer: {"fc1": "model[0]", "bn1": "model[1]", ...} when
    indexed, else {"fc1": "model.fc1", ...} (network.build's names)."""
    if _check_style(style) == "indexed":
        return {name: f"model[{i}]" for i, (name, _) in enumerate(_modules(arch))}
    return {name: f"model.{name}" for name, _ in _modules(arch)}


def layer_refs(arch: Architecture, style: str = "sequential") -> dict[str, str]:
    """How the style's code names each Linear layer: {"fc1": "model[0]", ...} when indexed, else
    {"fc1": "model.fc1", ...} (network.build's names)."""
    refs = _refs(arch, style)
    return {name: refs[name] for name in arch.linear_names()}


def state_dict_for(state: dict[str, torch.Tensor], arch: Architecture, style: str) -> dict[str, torch.Tensor]:
    """`network.build`'s state_dict (fc1.weight, ..., bn1.running_mean, ..., output.bias) with the
    style's keys, e.g. 0.weight for the indexed `nn.Sequential`, so its model loads the app's weights."""
    prefixes = {name: ref.removeprefix("model").strip(".[]").replace("][", ".")
                for name, ref in _refs(arch, style).items()}
    return {prefixes[key.split(".")[0]] + "." + key.split(".", 1)[1]: value for key, value in state.items()}


class Network(nn.Module):
    """Stands for the class the module and functional styles define, to print it (so its repr
    names it as theirs does)."""


def printed(arch: Architecture, style: str = "sequential") -> str:
    """What the style's code prints with `print(model)`, without drawing any weights."""
    layers: list[tuple[str, nn.Module]] = []
    namespace = {"nn": nn, "torch": torch}
    modules = {m.name for m in arch.made() if m.function is None}  # what the functional style keeps
    with torch.device("meta"):  # shapes only
        for name, code in _modules(arch):
            if _check_style(style) != "functional" or name in modules:
                layers.append((name, eval(code, namespace)))  # noqa: S307 - our own code for a layer
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
        refs = _refs(arch, style)
        for ref in (refs[name] for name in arch.weighted_names()):
            if init.zero_bias:
                lines.append(f"{ref}.bias.data.fill_(0)")
            if init.weight_std is not None:
                lines.append(f"{ref}.weight.data.normal_(std={init.weight_std!r})")
    if device != "cpu":
        lines.append(f"model = model.to({device!r})")
    lines += ["print(model)", ""]
    return "\n".join(lines)
