"""The devices a network can train on here: which are present, and a name resolved to one."""

from __future__ import annotations

import torch

from mnistlab.errors import ConfigError


def available_devices() -> list[str]:
    """The devices present here, best first, always ending with "cpu"."""
    found = []
    if torch.cuda.is_available():
        found.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return found + ["cpu"]


def resolve_device(name="auto") -> torch.device:
    """"auto" picks the best present; naming an absent one is an error that says what is present."""
    if isinstance(name, torch.device):
        name = name.type if name.index is None else str(name)
    name = str(name).strip().lower()
    present = available_devices()
    if name == "auto":
        return torch.device(present[0])
    if name.split(":")[0] not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"Device must be auto, {', '.join(present)}; got {name!r}.")
    if name.split(":")[0] not in present:
        raise ConfigError(f"Device {name!r} is not available on this machine; available: "
                          f"{', '.join(present)} (or auto).")
    return torch.device(name)
