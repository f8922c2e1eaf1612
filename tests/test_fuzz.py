"""Inputs nobody thought of: every parser of outside input, fuzzed with Hypothesis.

For any input, a parser returns a valid value or raises the app's own error (a LabError) whose
message says what was wrong; nothing else escapes, nothing hangs (a deadline per example), and
memory stays bounded. Random bytes are rarely more than "not a model file", so valid files and
images are mutated too: bytes flipped, cut short, header fields replaced with any JSON value.

CI runs a bounded number of examples per parser (seconds each). Before a release:

    HYPOTHESIS_PROFILE=release pytest -m fuzz      # 50x the examples, minutes
"""

from __future__ import annotations

import io
import json
import os
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
from mnistlab import data, model_files, network, preprocess, share, sweep, train_config
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


def _valid_file() -> bytes:
    saved = model_files.SavedModel(network.Network(ARCH, Init(), 3), network.build(ARCH, Init(),
                                                                                   3).state_dict(),
                             TrainConfig(epochs=1), {"test_loss": 0.3, "test_accuracy": 0.9,
                                                     "per_class_accuracy": [0.9] * 10}, "fuzzed")
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
    assert part in (1, 2) and (notice is None or (isinstance(notice, str) and 0 < len(notice) < 300))
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
