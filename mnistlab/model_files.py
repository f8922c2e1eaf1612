"""Saving and loading trained networks, without pickle.

A model is ONE `.safetensors` file: the Linear layers' weights and biases as float32 tensors named as
in the network (fc1.weight, fc1.bias, ..., output.bias; with batch norm also bn1.weight, ...,
bn1.running_var as float32 and bn1.num_batches_tracked as int64), and under the header's `__metadata__` key
"mnistlab" a JSON document with the architecture, init, seed, training settings and test metrics.
One file is easy to download and upload, and safetensors holds only numbers: loading a file never
runs code from it. Every file is checked (size, header, metadata, names, shapes) before its weights
are used; a file that fails gives a ModelFileError that says what is wrong with it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import struct
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from mnistlab import network, train, train_config
from mnistlab.dataset import Dataset
from mnistlab.errors import ConfigError, ModelFileError
from mnistlab.network import Network
from mnistlab.runs import Run
from mnistlab.train_config import TrainConfig

FORMAT, VERSION = "mnistlab-model", 1
SUFFIX = ".safetensors"
TEMP_SUFFIX = ".tmp"  # a save in progress (see _write_atomically); never a model
STALE_TEMP_S = 3600  # a temporary file this old was left by a save that was killed: removed
DEFAULT_FOLDER = Path("~/.mnistlab/models")
MAX_HEADER_BYTES = 64 * 1024
# The largest network allowed (network.MAX_PARAMETERS float32 numbers, and batch norm's running
# statistics and batch counts) plus its header (also in the README).
MAX_FILE_BYTES = (4 * network.MAX_PARAMETERS + (2 * 4 * network.MAX_WIDTH + 8) * network.MAX_HIDDEN_LAYERS
                  + MAX_HEADER_BYTES + 8)
MAX_NAME = 64
_NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.-]{{0,{MAX_NAME - 1}}}")
_ACCEPTED = ("MNIST Lab loads only the .safetensors model files it saves (from the Train page or "
             "`python -m mnistlab train`).")


@dataclass
class SavedModel(network.HasWeights):
    """A trained network as stored: what it is, how it was trained, how well it did, its weights."""

    network: Network
    state: dict[str, torch.Tensor]  # CPU float32, named as in the network
    config: TrainConfig | None = None  # None in a file saved without its settings
    # test_loss, test_accuracy, per_class_accuracy; since validation: train_accuracy, validation_accuracy,
    # validation_loss, best_epoch, and with early stopping kept_epoch (the epoch whose weights these are)
    metrics: dict = field(default_factory=dict)
    name: str = ""

    @classmethod
    def from_run(cls, run: Run, name: str = "") -> SavedModel:
        return cls(run.network, run.state, run.config, run.metrics(), name)

    @property
    def settings(self) -> TrainConfig:
        """How it was trained; a file without settings holds an MNIST network on the lesson's inputs."""
        return self.config or TrainConfig()

    @property
    def normalization(self) -> str:
        """How the network reads images (data.NORMALIZATIONS); the lesson's if the file has no settings."""
        return self.settings.normalization

    @property
    def dataset(self) -> Dataset:
        """What it learned to classify; MNIST for every file saved before there was a choice."""
        return self.settings.data

    def label(self) -> str:
        acc = self.metrics.get("test_accuracy")
        return f"{self.name or 'model'}: {self.arch.label()}" + (f", test accuracy {acc:.1%}" if acc else "")


def expected_shapes(arch: network.Architecture) -> dict[str, tuple[int, ...]]:
    """Every tensor a model file for `arch` must hold, with its shape: each Linear's and Conv2d's
    weight and bias, and with batch norm each batch norm layer's weight, bias, running mean and
    variance and batch count (so a loaded network predicts as the trained one did). Dropout and
    pooling hold nothing."""
    return network.state_shapes(arch)


def _dtype(key: str) -> tuple[torch.dtype, str]:
    """A tensor's type in a file: batch counts are whole numbers (I64), everything else F32."""
    return (torch.int64, "I64") if key.endswith(".num_batches_tracked") else (torch.float32, "F32")


# -- bytes (download / upload) --------------------------------------------------------------------

def to_bytes(saved: SavedModel) -> bytes:
    """The model file's contents."""
    meta = {"format": FORMAT, "version": VERSION, "name": saved.name, **saved.network.to_dict(),
            "training": saved.config.to_dict() if saved.config else None, "metrics": saved.metrics}
    tensors = {k: saved.state[k].detach().to("cpu", _dtype(k)[0]).contiguous()
               for k in expected_shapes(saved.arch)}
    return st_save(tensors, metadata={"mnistlab": json.dumps(meta)})


def from_bytes(content: bytes, source: str = "The file") -> SavedModel:
    """A model from a file's contents, checked before anything in it is used; never unpickled."""
    header = _read_header(content, source)
    meta = _read_metadata(header, source)
    net, config = _read_settings(meta, source)
    _check_tensors(header, net.arch, source)
    try:
        state = st_load(bytes(content))
    except SafetensorError as e:  # _read_header checks the layout; this catches what is left
        raise ModelFileError(f"{source} is damaged: {e}. {_ACCEPTED}") from None
    for k, t in state.items():
        if not torch.isfinite(t).all():
            raise ModelFileError(f"{source} holds weights that are not numbers (NaN or infinite) in {k}; "
                                 f"this network cannot be used.")
        if k.endswith(("running_var", "num_batches_tracked")) and (t < 0).any():
            raise ModelFileError(f"{source} holds negative numbers in {k}, which cannot be negative; "
                                 f"this network cannot be used.")
    name = meta.get("name") if isinstance(meta.get("name"), str) and _NAME.fullmatch(meta["name"]) else ""
    metrics = _read_metrics(meta.get("metrics"), (config or TrainConfig()).data)
    return SavedModel(net, state, config, metrics, name)


def _fraction(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and 0 <= x <= 1


def _read_metrics(metrics, dataset: Dataset) -> dict:
    """The test metrics a file states, each kept only if it is a number that can be one (they are
    shown, never computed with): a damaged or hand-edited value is dropped, not displayed. Per-class
    accuracies: one for each of `dataset`'s classes (the file's data set)."""
    if not isinstance(metrics, dict):
        return {}
    kept = {}
    loss, acc, per_class = (metrics.get(k) for k in ("test_loss", "test_accuracy", "per_class_accuracy"))
    if isinstance(loss, (int, float)) and not isinstance(loss, bool) and math.isfinite(loss) and loss >= 0:
        kept["test_loss"] = float(loss)
    if _fraction(acc):
        kept["test_accuracy"] = float(acc)
    if isinstance(per_class, list) and len(per_class) == dataset.n_classes and all(map(_fraction, per_class)):
        kept["per_class_accuracy"] = [float(a) for a in per_class]
    for key in ("train_accuracy", "validation_accuracy"):
        if _fraction(metrics.get(key)):
            kept[key] = float(metrics[key])
    loss = metrics.get("validation_loss")
    if isinstance(loss, (int, float)) and not isinstance(loss, bool) and math.isfinite(loss) and loss >= 0:
        kept["validation_loss"] = float(loss)
    for key in ("best_epoch", "kept_epoch"):
        epoch = metrics.get(key)
        if isinstance(epoch, int) and not isinstance(epoch, bool) and 1 <= epoch <= train_config.MAX_EPOCHS:
            kept[key] = epoch
    return kept


def _too_big(source: str, size: int) -> str:
    return (f"{source} is {size:,} bytes; model files are at most {MAX_FILE_BYTES:,} bytes "
            f"(about {MAX_FILE_BYTES / 1e6:.0f} MB, the largest network allowed).")


def _read_header(content: bytes, source: str) -> dict:
    size = len(content)
    if size == 0:
        raise ModelFileError(f"{source} is empty. {_ACCEPTED}")
    if size > MAX_FILE_BYTES:
        raise ModelFileError(_too_big(source, size))
    # A pickle starts with 0x80, a torch.save zip with "PK"; but so can a safetensors file, whose first
    # 8 bytes are its header's length (one in 256 lengths starts with 0x80), and its header is JSON.
    n = struct.unpack("<Q", content[:8])[0] if size >= 8 else None
    safetensors_like = n is not None and n <= MAX_HEADER_BYTES and content[8:9] == b"{"  # maybe truncated
    if (content[:1] == b"\x80" or content[:2] == b"PK") and not safetensors_like:
        raise ModelFileError(f"{source} looks like a PyTorch pickle (torch.save) file. Pickles can run code "
                             f"when loaded, so MNIST Lab never opens them. {_ACCEPTED}")
    if size < 8:
        raise ModelFileError(f"{source} is only {size} bytes, too short to be a model file. {_ACCEPTED}")
    if n > MAX_HEADER_BYTES:
        raise ModelFileError(f"{source} is not a MNIST Lab model file: its header claims {n:,} bytes "
                             f"(at most {MAX_HEADER_BYTES:,} are allowed). {_ACCEPTED}")
    if 8 + n > size:
        raise ModelFileError(f"{source} is truncated: its header needs {n:,} bytes but only "
                             f"{size - 8:,} follow. Download or save it again.")
    try:
        header = json.loads(content[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        header = None
    if not isinstance(header, dict):
        raise ModelFileError(f"{source} is not a model file (its header is not readable). {_ACCEPTED}")
    data_bytes = size - 8 - n
    end = max((t.get("data_offsets", [0, 0])[1] for k, t in header.items()
               if k != "__metadata__" and isinstance(t, dict) and _offsets_ok(t)), default=0)
    if end > data_bytes:
        raise ModelFileError(f"{source} is truncated: its weights need {end:,} bytes but only "
                             f"{data_bytes:,} are there. Download or save it again.")
    return header


def _offsets_ok(t: dict) -> bool:
    off = t.get("data_offsets")
    return isinstance(off, list) and len(off) == 2 and all(isinstance(o, int) for o in off)


def _read_metadata(header: dict, source: str) -> dict:
    meta = header.get("__metadata__")
    text = meta.get("mnistlab") if isinstance(meta, dict) else None
    if text is None:
        raise ModelFileError(f"{source} has no MNIST Lab description (architecture and settings), so its "
                             f"weights cannot be placed in a network. {_ACCEPTED}")
    try:
        meta = json.loads(text)
    except (TypeError, ValueError):
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(f"{source} has a damaged MNIST Lab description. {_ACCEPTED}")
    if meta.get("version") != VERSION:
        raise ModelFileError(f"{source} is in model format version {meta.get('version')!r}; this MNIST Lab "
                             f"reads version {VERSION}.")
    return meta


def _read_settings(meta: dict, source: str):
    try:
        arch = network.Architecture.from_dict(meta.get("arch"))
    except (ConfigError, TypeError) as e:
        raise ModelFileError(f"{source} declares an architecture MNIST Lab cannot build: {e}") from None
    try:
        init = network.Init.from_dict(meta.get("init") or {})
        seed = network.check_seed(meta.get("seed", 0))
        config = TrainConfig.from_dict(meta["training"]) if meta.get("training") else None
    except (ConfigError, TypeError) as e:
        raise ModelFileError(f"{source} has settings MNIST Lab does not accept: {e}") from None
    return Network(arch, init, seed), config


def _check_tensors(header: dict, arch: network.Architecture, source: str) -> None:
    expected = expected_shapes(arch)
    found = {k: v for k, v in header.items() if k != "__metadata__"}
    missing = [k for k in expected if k not in found]
    extra = [k for k in found if k not in expected]
    if missing or extra:
        what = (f"lacks {', '.join(missing)}" if missing else "") + \
               ("; " if missing and extra else "") + (f"has unexpected {', '.join(extra)}" if extra else "")
        raise ModelFileError(f"{source} does not match its architecture {arch.label()}: it {what}.")
    for k, shape in expected.items():
        t, (_, dtype) = found[k], _dtype(k)
        if not isinstance(t, dict) or t.get("dtype") != dtype:
            what = "64-bit whole numbers (I64)" if dtype == "I64" else "32-bit floats (F32)"
            raise ModelFileError(f"{source}: {k} must hold {what}; found "
                                 f"{t.get('dtype') if isinstance(t, dict) else t!r}.")
        found_shape = t.get("shape")
        if not isinstance(found_shape, list) or not all(isinstance(d, int) for d in found_shape):
            raise ModelFileError(f"{source} is damaged: {k}'s shape must be a list of whole numbers; "
                                 f"found {found_shape!r:.40}. {_ACCEPTED}")
        if tuple(found_shape) != shape:
            raise ModelFileError(f"{source} does not match its architecture {arch.label()}: {k} has shape "
                                 f"{tuple(found_shape)}, expected {shape}.")


# -- files in the models folder --------------------------------------------------------------------

def models_dir() -> Path:
    """$MNISTLAB_MODELS, else ~/.mnistlab/models."""
    return Path(os.environ.get("MNISTLAB_MODELS") or DEFAULT_FOLDER).expanduser()


def check_name(name) -> str:
    """A model's name: up to MAX_NAME letters, digits, '_', '-', '.'; no folders; drops a trailing
    .safetensors."""
    text = str(name).strip()
    if text.endswith(SUFFIX):
        text = text[: -len(SUFFIX)]
    if not _NAME.fullmatch(text) or ".." in text:
        raise ModelFileError(f"A model name is 1 to {MAX_NAME} letters, digits, '_', '-' or '.', starting "
                             f"with a letter or digit (no folders); got {str(name)!r}.")
    return text


def default_name(arch: network.Architecture, prefix: str = "") -> str:
    """A name `check_name` accepts for a model of `arch`, from its label, e.g.
    "run3-784-512-512-10-relu-dropout-0.5-batch-norm": spaces, commas and slashes become one '-', and
    a label too long for a name is cut at a '-'."""
    text = re.sub(r"[^A-Za-z0-9_.]+", "-", f"{prefix} {arch.label()}").strip("-._")
    text = re.sub(r"\.{2,}", ".", text)
    if len(text) > MAX_NAME:
        text = text[:MAX_NAME + 1].rsplit("-", 1)[0].rstrip("-._")
    return check_name(text or "model")


def path_for(name, folder=None) -> Path:
    return Path(folder or models_dir()) / f"{check_name(name)}{SUFFIX}"


def save(saved: SavedModel, name, folder=None) -> Path:
    """Write the model as NAME.safetensors in the models folder (replacing one of that name)."""
    path = path_for(name, folder)
    saved.name = check_name(name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(path, to_bytes(saved))
        _remove_stale_temp_files(path.parent)
    except OSError as e:
        raise ModelFileError(f"Cannot save the model to {path}: {e.strerror or e}. Set MNISTLAB_MODELS "
                             f"to a folder you can write to.") from None
    return path


def _write_atomically(path: Path, content: bytes) -> None:
    """`path` holds either its old contents or all of `content`, even if the process is killed or the
    machine loses power mid-write: the bytes go to a temporary file of its own in the same folder
    (".NAME.<random>.tmp", which `list_models` never lists), reach the disk (fsync), then replace
    `path` in one rename. Two saves of one name at once cannot mix: each has its own temporary file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=TEMP_SUFFIX)
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide the model from others sharing the folder
        with os.fdopen(fd, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # the rename itself reaches the disk (not possible everywhere)
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def _remove_stale_temp_files(folder: Path) -> None:
    """Temporary files of saves killed mid-write (never listed, never loaded) do not pile up."""
    for tmp in folder.glob(f".*{TEMP_SUFFIX}"):
        with contextlib.suppress(OSError):
            if time.time() - tmp.stat().st_mtime > STALE_TEMP_S:
                tmp.unlink()


def load(name, folder=None) -> SavedModel:
    """The model saved as NAME in the models folder."""
    path = path_for(name, folder)
    if not path.is_file():
        known = list_models(folder)
        hint = f"Saved models: {', '.join(known)}." if known else f"No models are saved in {path.parent}."
        raise ModelFileError(f"No model named {check_name(name)!r} in {path.parent}. {hint}")
    return load_file(path)


def load_file(path) -> SavedModel:
    """A model from any path, checked like an upload; its size is checked before it is read."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ModelFileError(_too_big(path.name, size))
        content = path.read_bytes()
    except OSError as e:
        raise ModelFileError(f"{path} cannot be read: {e.strerror or e}.") from None
    saved = from_bytes(content, source=path.name)
    saved.name = saved.name or path.stem
    return saved


def list_models(folder=None) -> list[str]:
    folder = Path(folder or models_dir())
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob(f"*{SUFFIX}") if _NAME.fullmatch(p.stem))


@dataclass
class LoadedRun(Run):
    """A model loaded from a file, as a session's `Run`. It has no curves and no training or validation
    split to score again, so what its file recorded of them (training and validation accuracy,
    validation loss, best epoch) is carried as recorded; its test results are scored here."""

    recorded: dict = field(default_factory=dict)  # the file's metrics (see SavedModel.metrics)

    @property
    def best_epoch(self) -> int | None:
        """The epoch with the lowest validation loss, as its file recorded it (None if it does not)."""
        return self.recorded.get("best_epoch")

    def metrics(self) -> dict:
        """Its file's metrics, the test results scored here in place of the recorded ones."""
        return {**self.recorded, **super().metrics()}


def as_run(saved: SavedModel, test_split, device="cpu") -> LoadedRun:
    """A loaded model as a session's `Run` (no training curves), evaluated here on `test_split`, which
    must be of the data set it learned; the training and validation results and the epochs its file
    recorded go with it. (No file records how long it trained.)"""
    train.check_split(saved.settings, test_split)
    model = saved.model(device)
    history = train.History(steps_per_epoch=1, kept_epoch=saved.metrics.get("kept_epoch"))
    return LoadedRun(network=saved.network, config=saved.settings, history=history, state=saved.state,
                     device=str(device), name=saved.name or "uploaded model",
                     evaluation=train.evaluate(model, test_split, normalization=saved.normalization),
                     recorded=dict(saved.metrics))
