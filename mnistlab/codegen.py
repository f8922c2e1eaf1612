"""PyTorch source for an architecture in the lesson's three styles.

The code seeds torch's global RNG and builds the layers in the same order as `network.build`, so
running it gives exactly the weights the app shows for that seed.
"""

from __future__ import annotations

from mnistlab.network import Architecture, Init, check_seed

STYLES = {
    "module": "nn.Module class",
    "functional": "torch.nn.functional",
    "sequential": "nn.Sequential + OrderedDict",
}
_MODULE = {"sigmoid": "nn.Sigmoid()", "tanh": "nn.Tanh()", "relu": "nn.ReLU()"}
_FUNCTION = {"sigmoid": "torch.sigmoid", "tanh": "torch.tanh", "relu": "F.relu"}


def _linears(arch: Architecture) -> list[tuple[str, int, int]]:
    s = arch.sizes
    return [(name, s[i], s[i + 1]) for i, name in enumerate(arch.linear_names())]


def _module_source(arch: Architecture) -> list[str]:
    lines = ["import torch", "from torch import nn", "", "", "class Network(nn.Module):",
             "    def __init__(self):", "        super().__init__()"]
    for (name, n_in, n_out), act in zip(_linears(arch), (*arch.activations, None)):
        lines.append(f"        self.{name} = nn.Linear({n_in}, {n_out})")
        if act:
            lines.append(f"        self.{act}{name[2:]} = {_MODULE[act]}")
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
        lines.append(f"        x = {_FUNCTION[act]}(self.{name}(x))")
    lines += ["        x = F.softmax(self.output(x), dim=1)", "        return x"]
    return lines


def _sequential_source(arch: Architecture) -> list[str]:
    lines = ["model = nn.Sequential(OrderedDict(["]
    for (name, n_in, n_out), act in zip(_linears(arch), (*arch.activations, None)):
        lines.append(f"    ('{name}', nn.Linear({n_in}, {n_out})),")
        if act:
            lines.append(f"    ('{act}{name[2:]}', {_MODULE[act]}),")
    lines += ["    ('softmax', nn.Softmax(dim=1)),", "]))"]
    return lines


_SOURCES = {"module": _module_source, "functional": _functional_source, "sequential": _sequential_source}


def generate(arch: Architecture, init: Init = Init(), seed: int = 0, style: str = "module",
             device: str = "cpu") -> str:
    """Runnable source that builds `model` from `seed` and applies `init`, as `network.build` does."""
    if style not in _SOURCES:
        raise ValueError(f"style must be one of {', '.join(_SOURCES)}; got {style!r}")
    seed_line = f"torch.manual_seed({check_seed(seed)})"
    if style == "sequential":  # built inline, as the lesson does
        lines = ["from collections import OrderedDict", "", "import torch", "from torch import nn", "",
                 seed_line, *_sequential_source(arch)]
    else:
        lines = [*_SOURCES[style](arch), "", "", seed_line, "model = Network()"]
    if init.zero_bias or init.weight_std is not None:
        lines += ["", f"# Init: {init.label()}"]
        for name in arch.linear_names():
            if init.zero_bias:
                lines.append(f"model.{name}.bias.data.fill_(0)")
            if init.weight_std is not None:
                lines.append(f"model.{name}.weight.data.normal_(std={init.weight_std!r})")
    if device != "cpu":
        lines.append(f"model = model.to({device!r})")
    lines += ["print(model)", ""]
    return "\n".join(lines)
