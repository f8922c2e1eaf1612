"""Inputs nobody thought of: every parser of outside input, fuzzed with Hypothesis.

For any input, a parser returns a valid value or raises the app's own error (a LabError) whose
message says what was wrong; nothing else escapes, nothing hangs (a deadline per example), and
memory stays bounded. Random bytes are rarely more than "not a model file", so valid files and
images are mutated too: bytes flipped, cut short, header fields replaced with any JSON value.

CI runs a bounded number of examples per parser (seconds each). Before a release:

    HYPOTHESIS_PROFILE=release pytest -m fuzz      # 50x the examples, minutes
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import resource
import struct

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from mnistlab import __main__ as cli
from mnistlab import data, layers, model_files, network, preprocess, share, sweep, train_config
from mnistlab.activations import ACTIVATIONS
from mnistlab.errors import LabError
from mnistlab.network import Architecture, Init
from mnistlab.train_config import TrainConfig

settings.register_profile("ci", max_examples=150, deadline=5000,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.register_profile("release", parent=settings.get_profile("ci"), max_examples=7500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

pytestmark = pytest.mark.fuzz

# A parser may use a few MB per example (a model file is at most ~20 MB); more than this over a
# whole test means something grows with what the input claims rather than with what it is.
MEMORY_GROWTH_MB = 400


@pytest.fixture(autouse=True)
def bounded_memory():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    yield
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before
    assert grown < MEMORY_GROWTH_MB, f"the process's peak memory grew by {grown:.0f} MB"


def message_of(error: LabError) -> str:
    """The user's message: non-empty, one paragraph, no traceback."""
    text = str(error)
    assert text.strip() and "Traceback" not in text
    return text


def parses_or_explains(parse, *args, **kwargs):
    """`parse(...)`'s value, or None when it raised a LabError with a message; anything else fails."""
    try:
        return parse(*args, **kwargs)
    except LabError as e:
        message_of(e)
        return None


# -- any JSON value, for header and settings fields --------------------------------------------

scalars = (st.none() | st.booleans() | st.integers() | st.integers(-3, 3000)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12)
           | st.sampled_from(["relu", "tanh", "adam", "sgd", "F32", "F16", "lesson", "none", "mnist", "",
                             "1e3"]))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=8)


# -- model files: model_files.from_bytes and the CLI's eval ------------------------------------------

ARCH = Architecture((16, 8), ("relu", "tanh"))


def _valid_file(arch: Architecture = ARCH) -> bytes:
    state = network.build(arch, Init(), 3).state_dict()
    saved = model_files.SavedModel(network.Network(arch, Init(), 3), state, TrainConfig(epochs=1),
                                   {"test_loss": 0.3, "test_accuracy": 0.9, "per_class_accuracy": [0.9] * 10},
                                   "fuzzed")
    return model_files.to_bytes(saved)


VALID = _valid_file()
HEADER_LEN = struct.unpack("<Q", VALID[:8])[0]
HEADER = json.loads(VALID[8:8 + HEADER_LEN])
META = json.loads(HEADER["__metadata__"]["mnistlab"])
TENSORS = sorted(k for k in HEADER if k != "__metadata__")


def with_header(header: dict, body: bytes = VALID[8 + HEADER_LEN:]) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + body


def loads_or_explains(content: bytes):
    saved = parses_or_explains(model_files.from_bytes, content, source="upload.safetensors")
    if saved is not None:  # a file that loads is a network the pages can show and use
        assert set(saved.state) == set(model_files.expected_shapes(saved.arch))
        saved.label()
        saved.model()
        if saved.config:
            saved.config.label()
    return saved


@given(st.binary(max_size=4096))
def test_random_bytes_are_never_a_model_and_always_explained(content):
    assert loads_or_explains(content) is None


@given(st.data())
def test_a_valid_file_with_bytes_flipped_or_cut_loads_or_is_explained(pick):
    content = bytearray(VALID)
    for _ in range(pick.draw(st.integers(1, 8), label="flips")):
        content[pick.draw(st.integers(0, len(content) - 1))] = pick.draw(st.integers(0, 255))
    cut = pick.draw(st.integers(0, len(content)) | st.just(len(content)), label="length")
    loads_or_explains(bytes(content[:cut]))


@given(tensor=st.sampled_from(TENSORS), field=st.sampled_from(["dtype", "shape", "data_offsets", "extra"]),
       value=json_values)
def test_a_tensor_entry_edited_loads_or_is_explained(tensor, field, value):
    header = json.loads(json.dumps(HEADER))
    header[tensor][field] = value
    loads_or_explains(with_header(header))


SETTINGS_PATHS = [("format",), ("version",), ("name",), ("arch",), ("arch", "hidden"),
                  ("arch", "activations"), ("init",), ("init", "zero_bias"), ("init", "weight_std"),
                  ("seed",), ("training",),
                  ("training", "optimizer"), ("training", "lr"), ("training", "momentum"),
                  ("training", "batch_size"), ("training", "epochs"), ("training", "seed"),
                  ("training", "normalization"), ("metrics",), ("metrics", "test_accuracy"),
                  ("metrics", "test_loss"), ("metrics", "per_class_accuracy")]


@given(edits=st.lists(st.tuples(st.sampled_from(SETTINGS_PATHS), json_values), min_size=1, max_size=3))
def test_a_description_edited_loads_or_is_explained(edits):
    meta = json.loads(json.dumps(META))
    for path, value in edits:
        place = meta
        for key in path[:-1]:
            if not isinstance(place.get(key), dict):
                place[key] = {}
            place = place[key]
        place[path[-1]] = value
    header = json.loads(json.dumps(HEADER))
    header["__metadata__"]["mnistlab"] = json.dumps(meta)
    loads_or_explains(with_header(header))


@given(header=st.dictionaries(st.sampled_from([*TENSORS, "__metadata__", "other"]), json_values, max_size=6))
def test_any_json_header_is_explained(header):
    loads_or_explains(with_header(header))


def test_a_shape_given_as_a_number_is_the_files_error_not_a_type_error():
    """Found by mutating valid files: `shape: 3.5` raised TypeError from the shape check."""
    header = json.loads(json.dumps(HEADER))
    header["fc1.weight"]["shape"] = 3.5
    with pytest.raises(LabError, match="fc1.weight's shape must be a list of whole numbers"):
        model_files.from_bytes(with_header(header))


def test_shown_metrics_that_are_not_numbers_are_dropped():
    """Found by mutating valid files: a text accuracy loaded, then failed when its label was shown."""
    meta = {**META, "metrics": {"test_accuracy": "97%", "test_loss": 0.25}}
    header = {**HEADER, "__metadata__": {"mnistlab": json.dumps(meta)}}
    saved = model_files.from_bytes(with_header(header))
    assert saved.metrics == {"test_loss": 0.25} and "test accuracy" not in saved.label()


@given(st.dictionaries(st.sampled_from(["train_accuracy", "validation_accuracy", "validation_loss",
                                        "best_epoch", "kept_epoch"]), json_values, max_size=5))
def test_validation_metrics_a_file_states_are_kept_only_when_they_can_be_true(metrics):
    meta = {**META, "metrics": metrics}
    saved = model_files.from_bytes(with_header({**HEADER, "__metadata__": {"mnistlab": json.dumps(meta)}}))
    for key, value in saved.metrics.items():
        if key in ("best_epoch", "kept_epoch"):
            assert type(value) is int and 1 <= value <= train_config.MAX_EPOCHS
        else:
            assert isinstance(value, float) and value >= 0 and (key == "validation_loss" or value <= 1)
    saved.label()


@pytest.fixture(scope="module")
def eval_env(tmp_path_factory):
    """The CLI's eval needs the real test split; every fuzzed file is written to this folder."""
    folder = tmp_path_factory.mktemp("fuzz-eval")
    data.load_split(False)  # MNIST read once before the timed examples
    return folder


@settings(max_examples=max(10, settings.default.max_examples // 5))
@given(pick=st.data())
def test_cli_eval_of_any_file_is_a_result_or_one_line(eval_env, pick, capsys, monkeypatch):
    monkeypatch.setenv("MNISTLAB_MODELS", str(eval_env))
    content = bytearray(VALID)
    for _ in range(pick.draw(st.integers(0, 6), label="flips")):
        content[pick.draw(st.integers(0, len(content) - 1))] = pick.draw(st.integers(0, 255))
    content = bytes(content[:pick.draw(st.integers(0, len(content)), label="length")])
    path = eval_env / "fuzzed.safetensors"
    path.write_bytes(content)
    capsys.readouterr()
    code = cli.main(["eval", str(path)])
    out, err = capsys.readouterr()
    if code == 0:
        assert "test accuracy:" in out and not err
    else:
        assert code == 1 and err.startswith("mnistlab: error: ") and err.count("\n") == 1, err


# -- command-line arguments --------------------------------------------------------------------

class ReachedTraining(Exception):
    """Every argument was accepted: the fuzz stops where the real work would start."""


OPTIONS = ["--hidden", "--activation", "--epochs", "--optimizer", "--lr", "--momentum", "--batch-size",
           "--seed", "--weight-std", "--normalize", "--device", "--threads", "--out", "--zero-bias",
           "--dry-run", "--help", "-h", "--", "--hid", "--nope", "--depth", "--width-rule", "--init",
           "--seeds", "--sample", "--sample-seed", "--batch-seed", "--train-images", "--engine", "--json",
           "--validation", "--split-seed", "--label-noise", "--weight-decay", "--early-stop", "--evaluations",
           "--history", "--dataset", "--dropout", "--batch-norm"]
argument_text = st.text(max_size=20) | st.sampled_from(
    ["128,64", "relu", "tanh,relu", "0", "1", "5", "-1", "1e-3", "nan", "inf", "cpu", "cuda", "auto", "mnist",
     "none", "lesson", "sgd", "adam", "adamw", "../x", "name.safetensors", "²", "1" * 5000, "0.5", "1.5",
     "0,0.1", "100,all", "1000", "20000", "50001", "off", "run.json", "fashion", "on", "off,on", "0.2,0.5",
     "0.9"])


@given(argv=st.tuples(st.sampled_from(["train", "eval", "sweep", "nope", "", "-h"]),
                      st.lists(st.sampled_from(OPTIONS) | argument_text, max_size=8)))
def test_any_command_line_is_run_or_refused_in_one_line(argv, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("MNISTLAB_MODELS", str(tmp_path))

    def stop(*args, **kwargs):
        raise ReachedTraining

    monkeypatch.setattr(data, "load_split", stop)  # the commands import it when they run
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)  # keep this process's threads
    capsys.readouterr()
    command, rest = argv
    try:
        code = cli.main([command, *rest])
    except SystemExit as e:  # argparse: a refused argument (2) or --help (0)
        code = e.code
    except ReachedTraining:
        return
    out, err = capsys.readouterr()
    if code == 0:
        assert "usage:" in out
    else:
        assert code in (1, 2) and err.count("\n") == 1 and "error: " in err, err


def test_a_newline_typed_into_an_argument_stays_one_line(capsys):
    """Found by the release profile: argparse echoed the argument's newline into its message."""
    with pytest.raises(SystemExit):
        cli.main(["train", "\n", "--hidden", "64\tx"])
    err = capsys.readouterr().err
    assert err == "mnistlab: error: unrecognized arguments: \\n (see --help)\n"


# -- uploaded images: preprocess.read_image, then preprocess (digits) and preprocess_garment ----

def _digit_image(fmt: str, mode: str) -> bytes:
    split = data.load_split(False)
    digit = Image.fromarray(split.images[0].numpy().reshape(28, 28)).resize((64, 64))
    buffer = io.BytesIO()
    digit.convert(mode).save(buffer, fmt)
    return buffer.getvalue()


IMAGES = {(fmt, mode): _digit_image(fmt, mode) for fmt in ("PNG", "JPEG") for mode in ("L", "RGB")}
IMAGES[("PNG", "RGBA")] = _digit_image("PNG", "RGBA")
IMAGES[("PNG", "I;16")] = _digit_image("PNG", "I;16")


def reads_or_explains(content: bytes):
    image = parses_or_explains(preprocess.read_image, content, "upload.png")
    if image is None:
        return None
    assert image.ndim in (2, 3) and max(image.shape[:2]) <= preprocess.WORK_SIDE
    for prepared in (preprocess.preprocess(image), preprocess.naive(image)):
        if not prepared.blank:
            assert prepared.image.shape == (28, 28) and prepared.image.dtype == np.uint8
            assert prepared.input().shape == (1, 1, 28, 28)
    garment_or_explained(image)
    return image


def garment_or_explained(image):
    """A 28×28 garment in the paper's seven stages, or an ImageError ("nothing to see")."""
    garment = parses_or_explains(preprocess.preprocess_garment, image)
    if garment is not None:
        assert len(garment.stages) == 7 and not garment.blank
        assert garment.image.shape == (28, 28) and garment.image.dtype == np.uint8
        assert garment.input().shape == (1, 1, 28, 28)


@given(st.binary(max_size=4096) | st.sampled_from([b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a"]).flatmap(
    lambda magic: st.binary(max_size=2048).map(lambda rest: magic + rest)))
def test_random_bytes_as_an_upload_are_explained(content):
    reads_or_explains(content)


@given(st.sampled_from(sorted(IMAGES)), st.data())
def test_a_png_or_jpeg_with_bytes_flipped_or_cut_is_read_or_explained(kind, pick):
    content = bytearray(IMAGES[kind])
    for _ in range(pick.draw(st.integers(1, 8), label="flips")):
        content[pick.draw(st.integers(0, len(content) - 1))] = pick.draw(st.integers(0, 255))
    reads_or_explains(bytes(content[:pick.draw(st.integers(1, len(content)), label="length")]))


@given(kind=st.sampled_from([k for k in sorted(IMAGES) if k[0] == "PNG"]),
       width=st.integers(0, 2**32 - 1) | st.integers(0, 9000),
       height=st.integers(0, 2**32 - 1) | st.integers(0, 9000))
def test_a_png_claiming_any_size_is_refused_before_it_is_decoded(kind, width, height):
    content = bytearray(IMAGES[kind])
    content[16:24] = struct.pack(">II", width, height)  # IHDR's width and height
    reads_or_explains(bytes(content))


@given(arrays(np.uint8, st.tuples(st.integers(8, 40), st.integers(8, 40))),
       st.sampled_from(["L", "RGB", "RGBA"]))
def test_any_small_picture_is_a_digit_or_blank(pixels, mode):
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buffer, "PNG")
    assert reads_or_explains(buffer.getvalue()) is not None


@given(arrays(np.uint8, st.tuples(st.integers(1, 60), st.integers(1, 60), st.sampled_from([1, 3, 4])))
       | arrays(np.float32, st.tuples(st.integers(1, 60), st.integers(1, 60))))
def test_any_array_is_a_garment_or_nothing_to_see(pixels):  # the canvas's and tests' way in
    garment_or_explained(pixels)


# -- share links: share.decode never fails -----------------------------------------------------

link_values = st.text(max_size=30) | st.sampled_from(
    ["128,64", "16", "2048,2048", "relu", "sigmoid,tanh", "0.01", "default", "zero", "1e-9", "nan", "-0",
     "7", "2147483648", "²", "x" * 101, "8:5,pool,16:5,pool", "8:5,16:5:2", "pool3,4:3", "256:11:10",
     "8:5,pool,16:5,pool,16:5", "none", "tanh,relu", "0.2,0", ""]) \
    | st.lists(st.text(max_size=10), max_size=3)


@given(st.dictionaries(st.sampled_from([*share.KEYS, "other"]) | st.text(max_size=5), link_values,
                       max_size=6))
def test_any_share_link_gives_a_network_that_builds_with_notices(params):
    state, notices = share.decode(params)
    assert isinstance(state, network.Network) and all(isinstance(n, str) and n for n in notices)
    assert state.init.weight_std is None or state.init.weight_std in share.STD_SCALE
    assert share.decode(share.encode(state)) == (state, [])  # the page's own link round-trips
    network.build(state.arch, state.init, state.seed)


@given(st.dictionaries(st.sampled_from(share.KEYS), link_values, max_size=6))
def test_a_share_link_without_the_values_its_notices_name_opens_without_a_notice(params):
    """Every value that could not be used is named: what the notices leave of a link is clean."""
    _, notices = share.decode(params)
    named = {n.removeprefix("Link value ").split("=", 1)[0] for n in notices}
    assert all(n.startswith("Link value ") for n in notices) and named <= set(params)
    assert share.decode({k: v for k, v in params.items() if k not in named})[1] == []


# -- architecture, init and training settings: as typed, and from a file's JSON ------------------

@given(st.text(max_size=40) | st.sampled_from(["128,64", " 1 , 2 ", "+5", "²", "١٢", "1" * 5000, "0x10"]),
       st.text(max_size=30) | st.sampled_from(["relu", "RELU ,tanh", "sigmoid,tanh,relu"]))
def test_typed_hidden_sizes_and_activations_parse_or_are_explained(hidden, activation):
    arch = parses_or_explains(Architecture.parse, hidden, activation)
    if arch is not None:
        assert 0 <= len(arch.hidden) <= network.MAX_HIDDEN_LAYERS  # none: softmax regression
        assert all(1 <= h <= network.MAX_WIDTH for h in arch.hidden)
        assert arch.n_parameters <= network.MAX_PARAMETERS
        assert Architecture.parse(",".join(map(str, arch.hidden)), ",".join(arch.activations)) == arch


@given(json_values)
def test_an_architecture_from_any_json_is_built_or_explained(value):
    parses_or_explains(Architecture.from_dict, value)
    if isinstance(value, dict):
        parses_or_explains(Architecture.from_dict, {"hidden": [16], "activations": "relu", **value})


@given(zero_bias=json_values, weight_std=json_values | st.text(max_size=10))
def test_an_init_from_anything_is_made_or_explained(zero_bias, weight_std):
    init = parses_or_explains(Init, zero_bias, weight_std)
    if init is not None and init.weight_std is not None:
        assert 0 < init.weight_std <= 10
    parses_or_explains(Init.from_dict, {"zero_bias": zero_bias, "weight_std": weight_std})


@given(st.dictionaries(st.sampled_from(list(TrainConfig.__dataclass_fields__)),
                       json_values | st.text(max_size=10), max_size=7))
def test_training_settings_from_anything_are_made_or_explained(fields):
    config = parses_or_explains(TrainConfig.from_dict, fields)
    if config is not None:
        assert 1 <= config.epochs <= train_config.MAX_EPOCHS
        assert 1 <= config.batch_size <= train_config.MAX_BATCH_SIZE
        assert 0 < config.lr <= train_config.MAX_LR
        config.label()
        assert TrainConfig.from_dict(config.to_dict()) == config


@given(json_values | st.text(max_size=12) | st.sampled_from(["²", "١٢", " 7 ", "1" * 5000]))
def test_a_seed_from_anything_is_a_seed_or_explained(value):
    seed = parses_or_explains(network.check_seed, value)
    assert seed is None or 0 <= seed <= network.MAX_SEED


# -- layer lists: typed (Build, the CLI's --conv), from a file's or key's JSON, and what they build -----

def _conv_text(channels, kernel, padding):
    return f"{channels}:{kernel}" + ("" if padding is None else f":{padding}")


layer_items = (st.builds(_conv_text, st.integers(1, 32) | st.integers(0, 300),
                         st.integers(1, 7) | st.integers(0, 13),
                         st.none() | st.integers(0, 3) | st.integers(0, 12))
               | st.sampled_from(["pool", "pool2", "pool3", "pool4", "pool5", "pool1", "pool0", "POOL",
                                  " pool ", "poolx", "pool-1", "pool²", "pool 3", "pool02"])
               | st.text(max_size=8))
layer_texts = (st.lists(layer_items, max_size=14).map(",".join) | st.text(max_size=40) | st.sampled_from(
    ["", "none", " None ", "8:5,16:5", "32:3:1,64:3:1", "8:5,pool,16:5,pool", "1" * 5000, "8:5:1:1", "8:²",
     "٨:5", "+8:5", "8 : 5", "8:5,,16:5", ",", "0:5", "8:0", "8:5:5", "256:11:10", "256:11,256:11", "8:-5",
     "1e1:5", "8:5,pool,pool,pool,pool", ",".join(["4:1"] * 7), "pool," * 13 + "pool"]))
conv_activations = st.sampled_from(["relu", "tanh", "sigmoid", " ReLU ", "bogus", ""]) | st.text(max_size=8)


def counted_as_torch_counts(arch: Architecture) -> None:
    """A valid network is within the caps, and its table is what torch builds: each layer's output
    shape, the parameters, the multiply-adds and every tensor a model file holds."""
    assert 0 < arch.n_parameters <= network.MAX_PARAMETERS and 0 < arch.macs <= network.MAX_MACS
    assert sum(isinstance(f, layers.Conv) for f in arch.features) <= layers.MAX_CONV_LAYERS
    assert all(min(shape) >= 1 for shape in arch.shapes())
    model = network.build(arch, Init(), 0)
    assert arch.n_parameters == sum(p.numel() for p in model.parameters())
    assert network.state_shapes(arch) == {k: tuple(v.shape) for k, v in model.state_dict().items()}
    shapes, macs = [], []

    def seen(module, args, output):
        shapes.append(tuple(output.shape[1:]))
        if isinstance(module, torch.nn.Conv2d):
            macs.append(output.numel() * module.in_channels * module.kernel_size[0] * module.kernel_size[1])
        elif isinstance(module, torch.nn.Linear):
            macs.append(module.in_features * module.out_features)

    for name, module in model.named_children():  # the first module of each layer: its output shape
        if re.fullmatch(r"(conv|pool|fc)\d+|flatten|output", name):
            module.register_forward_hook(seen)
    x = torch.zeros(1, *arch.image) if arch.is_cnn else torch.zeros(1, arch.inputs)
    with torch.no_grad():
        probs = model.eval()(x)
    assert shapes == arch.shapes()[1:] and sum(macs) == arch.macs
    assert probs.shape == (1, arch.outputs) and torch.allclose(probs.sum(), torch.tensor(1.0))


@given(layer_texts, conv_activations, st.booleans())
def test_a_typed_layer_list_parses_or_is_explained(text, activation, pool):
    features = parses_or_explains(layers.parse_features, text, activation, pool)
    if features is not None:
        for f in features:
            assert isinstance(f, (layers.Conv, layers.Pool))
            if isinstance(f, layers.Conv):
                assert 1 <= f.channels <= layers.MAX_CHANNELS and 1 <= f.kernel <= layers.MAX_KERNEL
                assert 0 <= f.padding < f.kernel and f.activation in ACTIVATIONS
            else:
                assert 2 <= f.size <= layers.MAX_POOL
        typed = ",".join(f.text() for f in features)  # as the Build page shows it back
        assert layers.parse_features(typed, activation) == features
        assert tuple(map(layers.feature_from_dict, [f.to_dict() for f in features])) == features


@given(conv=layer_texts, pool=st.booleans(), activation=conv_activations | st.just("relu,tanh"),
       hidden=st.sampled_from(["", "16", "128,64", "0", "x", "2048,2048", ",", "10,"]) | st.text(max_size=10),
       dropout=st.sampled_from(["0", "0.5", "0.2,0.1", "2", ""]), batch_norm=st.booleans())
def test_an_architecture_typed_with_any_layer_list_is_made_or_explained(conv, pool, activation, hidden,
                                                                       dropout, batch_norm):
    arch = parses_or_explains(Architecture.parse, hidden, activation, dropout, batch_norm, conv=conv,
                              pool=pool)
    if arch is not None:
        assert arch.n_parameters <= network.MAX_PARAMETERS and arch.macs <= network.MAX_MACS
        assert all(min(shape) >= 1 for shape in arch.shapes())
        assert arch.is_cnn == bool(arch.features)
        arch.label(), arch.table()
        assert Architecture.from_dict(arch.to_dict()) == arch  # as a model file or sweep key holds it
        assert layers.parse_features(arch.features_text(), activation.split(",")[0]) == arch.features


small = st.integers(-1, 12) | st.integers(0, 300)
layer_dicts = st.fixed_dictionaries(
    {"type": st.sampled_from(["conv", "pool", "linear", "Conv", ""]) | json_values},
    optional={"channels": small | json_values, "kernel": small | json_values, "padding": small | json_values,
              "activation": st.sampled_from(["relu", "tanh", "sigmoid", "RELU", "x"]) | json_values,
              "dropout": st.sampled_from([0, 0.5, 0.95, -1, "0.2"]) | json_values,
              "size": small | json_values, "other": json_values})
layer_lists = st.lists(layer_dicts | json_values, max_size=14) | json_values
image_values = st.sampled_from([[1, 28, 28], [3, 32, 32], [1, 1, 784], [2, 28, 28], [1, 64, 64], [1, 4096, 1],
                                [28, 28], [1, 28, 28, 1], "1,28,28", [1, 28, 28.0]]) \
    | st.lists(st.integers(-1, 70) | json_values, max_size=4) | json_values
ARCH_BASES = [{"hidden": [16], "activations": "relu"}, {"hidden": [], "activations": []},
              {"hidden": [32, 16], "activations": ["relu", "tanh"], "dropout": [0.1, 0.2],
               "batch_norm": True}]


@given(base=st.sampled_from(ARCH_BASES), layers_=layer_lists, image=st.none() | image_values)
def test_an_architecture_with_any_layers_and_image_in_its_json_is_made_or_explained(base, layers_, image):
    d = {**base, "layers": layers_, **({} if image is None else {"image": image})}
    arch = parses_or_explains(Architecture.from_dict, d)
    if arch is not None:
        assert arch.n_parameters <= network.MAX_PARAMETERS and arch.macs <= network.MAX_MACS
        assert arch.inputs <= network.MAX_INPUTS
        assert Architecture.from_dict(arch.to_dict()) == arch


def test_a_layer_whose_type_is_a_list_is_explained():
    """Found by the fuzzer above: a list as a layer's type was a dict lookup's TypeError, not a message."""
    with pytest.raises(LabError, match="A layer must be a mapping with 'type' one of conv, pool"):
        Architecture.from_dict({"hidden": [16], "activations": "relu", "layers": [{"type": []}]})


CNN = Architecture.parse("16", "relu", conv="4:5,8:3:1")
VALID_CNN = _valid_file(CNN)
CNN_BODY = VALID_CNN[8 + struct.unpack("<Q", VALID_CNN[:8])[0]:]
CNN_HEADER = json.loads(VALID_CNN[8:8 + len(VALID_CNN) - len(CNN_BODY) - 8])
CNN_META = json.loads(CNN_HEADER["__metadata__"]["mnistlab"])


def with_arch(header: dict, meta: dict, body: bytes, **arch) -> bytes:
    meta = {**meta, "arch": {**meta["arch"], **arch}}
    return with_header({**header, "__metadata__": {"mnistlab": json.dumps(meta)}}, body)


@given(cnn=st.booleans(), layers_=layer_lists, image=st.none() | image_values)
def test_a_model_file_whose_arch_has_any_layers_loads_or_is_explained(cnn, layers_, image):
    header, meta, body = (CNN_HEADER, CNN_META, CNN_BODY) if cnn else (HEADER, META, VALID[8 + HEADER_LEN:])
    image = {} if image is None else {"image": image}
    loads_or_explains(with_arch(header, meta, body, layers=layers_, **image))


@given(index=st.integers(0, 3), field=st.sampled_from(["type", "channels", "kernel", "padding", "activation",
                                                       "dropout", "size", "other"]),
       value=json_values | small)
def test_a_model_files_layer_edited_loads_or_is_explained(index, field, value):
    edited = json.loads(json.dumps(CNN_META["arch"]["layers"]))
    edited[index][field] = value
    saved = loads_or_explains(with_arch(CNN_HEADER, CNN_META, CNN_BODY, layers=edited))
    if saved is not None:  # e.g. padding 1 before a pool that floors 13 and 12 alike: the same tensors
        assert network.state_shapes(saved.arch) == network.state_shapes(CNN)


def test_the_cnn_file_fuzzed_from_loads_as_saved():
    saved = model_files.from_bytes(VALID_CNN)
    assert saved.arch == CNN and model_files.from_bytes(with_arch(CNN_HEADER, CNN_META, CNN_BODY)).arch == CNN


convs = st.builds(_conv_text, st.sampled_from([1, 2, 4, 8, 16, 32]) | st.integers(1, 256),
                  st.integers(1, 5) | st.integers(1, 11), st.none() | st.integers(0, 2))
cnn_texts = st.lists(convs | st.sampled_from(["pool", "pool3", "pool4"]), min_size=1,
                     max_size=8).map(",".join)


@settings(max_examples=max(10, settings.default.max_examples // 3))
@given(conv=cnn_texts, pool=st.booleans(), hidden=st.sampled_from(["", "10", "64,32", "256"]),
       activation=st.sampled_from(["relu", "tanh", "sigmoid"]), dropout=st.sampled_from(["0", "0.5"]),
       batch_norm=st.booleans(), image=st.sampled_from([(1, 28, 28), (3, 16, 16), (1, 64, 64), (2, 8, 8)]))
def test_any_valid_cnn_builds_and_counts_as_torch_counts(conv, pool, hidden, activation, dropout, batch_norm,
                                                         image):
    typed = parses_or_explains(Architecture.parse, hidden, activation, dropout, batch_norm, conv=conv,
                               pool=pool)
    if typed is not None:
        counted_as_torch_counts(typed)
        arch = parses_or_explains(dataclasses.replace, typed, image=image)  # another data set's images
        if arch is not None:
            counted_as_torch_counts(arch)


# -- sweep settings (Explore page links, `mnistlab sweep`) and the lesson's link -------------------

sweep_values = json_values | st.text(max_size=20) | st.sampled_from(
    ["1,2", "16,64,256", "relu,tanh", "default,0.1", "0.001,0.01", "same", "halving", "3", "²", "1" * 5000,
     "8,16,24,32,48,64,96,128", "0", "-1", "1e-3", "nan", "100,1000,all", "0,0.2,1", "0.5", "2000", "all",
     "off,on", "fashion", "mnist", "0.9"])


@given(st.dictionaries(st.sampled_from(["depths", "widths", "width_rule", "activations", "inits", "lrs",
                                        "seeds", "epochs", "sample", "sample_seed", "optimizer", "batch_size",
                                        "normalization", "batch_seed", "train_images", "weight_decays",
                                        "train_sizes", "label_noises", "validation", "split_seed",
                                        "label_noise", "weight_decay", "early_stop", "evaluations",
                                        "dropouts", "batch_norms", "dataset", "momentum"]),
                       sweep_values, max_size=6))
def test_sweep_settings_from_anything_are_made_or_explained(fields):
    from mnistlab import sweep

    settings = parses_or_explains(sweep.SweepSettings.from_dict, fields)
    if settings is not None:
        assert 1 <= settings.n_trials <= sweep.MAX_TRIALS
        assert all(a.n_parameters <= network.MAX_PARAMETERS for a in settings.architectures())
        settings.label()
        assert sweep.SweepSettings.from_dict(settings.to_dict()) == settings


@given(st.dictionaries(st.sampled_from([*sweep.PARAMS, "other"]) | st.text(max_size=6),
                       link_values | st.sampled_from(["0,0.5", "off,on", "1e-4,0", "all,300", "0.2", "on"]),
                       max_size=6))
def test_any_explore_link_gives_settings_or_one_message(params):
    settings = parses_or_explains(sweep.from_params, params)
    if settings is not None:
        again = sweep.from_params(sweep.to_params(settings))
        assert again.to_dict() == settings.to_dict()


data_set_names = st.sampled_from(["fashion", " MNIST ", "Fashion", "fashion-mnist", "kmnist"])


@given(link_values | st.none() | data_set_names)
def test_any_data_set_in_a_link_is_a_data_set_or_explained(value):
    from mnistlab.dataset import DATASETS

    dataset = parses_or_explains(share.linked_dataset, {} if value is None else {"data": value})
    if dataset is not None:
        assert dataset in DATASETS.values()
        assert share.linked_dataset({"data": dataset.name}) is dataset  # the app's own links round-trip


@given(link_values | st.none() | st.integers())
def test_any_lesson_part_in_a_link_is_a_part_with_or_without_a_notice(value):
    from mnistlab import lesson

    part, notice = lesson.parse_part(value)
    assert part in (1, 2, 3) and (notice is None or (isinstance(notice, str) and 0 < len(notice) < 300))
    assert lesson.PARTS[part - 1].steps


@given(step=link_values | st.none() | st.integers(), present=link_values | st.none())
def test_any_lesson_step_in_a_link_is_a_step_with_or_without_a_notice(step, present):
    from mnistlab import lesson

    number, notice = lesson.parse_step(step)
    assert 1 <= number <= lesson.N_STEPS and (notice is None or (isinstance(notice, str) and notice))
    assert lesson.step(number) is not None
    assert lesson.parse_present(present) in (True, False)


@given(st.dictionaries(st.sampled_from(["units", "layers", "seed", "std", "image", "step", "other"]),
                       link_values | st.sampled_from(["1_000", "٣", "0x10", "1e2", " 7 ", "64,", ",", "0.1"]),
                       max_size=6))
def test_any_lesson_link_values_are_used_or_fall_back_with_a_notice(params):
    from mnistlab import lesson
    from mnistlab.lesson_step import LessonValues

    values, notices = lesson.decode_values(params)
    assert isinstance(values, LessonValues) and all(isinstance(n, str) and n for n in notices)
    assert lesson.decode_values(lesson.encode_values(values)) == (values, [])
