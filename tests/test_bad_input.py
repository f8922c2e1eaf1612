"""Whatever anyone in a classroom types: every user-facing input, its bad values, and the message.

One table for the whole app. Each row feeds a bad value through the function the app itself calls
for that input (a widget, the share URL, an upload, the data folder, the command line) and expects
an error written for the user: it must say what is allowed. Nothing here may raise anything else.
"""

import io
import math
import pickle
import struct

import numpy as np
import pytest
from PIL import Image

from mnistlab import model_files, network, preprocess, share
from mnistlab.errors import ConfigError, ImageError, LabError, ModelFileError
from mnistlab.network import Architecture, Init
from mnistlab.train_config import TrainConfig


class RunsCode:
    """Unpickling this would run a command; a model file must never be unpickled."""

    def __reduce__(self):
        return (exec, ("raise SystemExit('unpickled!')",))


def _png(width, height, colour=0) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (width, height), colour).save(buffer, "PNG")
    return buffer.getvalue()


def _bomb_png() -> bytes:
    """A valid PNG header claiming 20000×20000 pixels, with almost no data behind it."""
    content = bytearray(_png(8, 8))
    content[16:24] = struct.pack(">II", 20000, 20000)  # IHDR width and height
    return bytes(content)


def _model_file(shapes: bool = False) -> bytes:
    saved = model_files.SavedModel(network.Network(Architecture((16,), ("relu",)), Init(), 0),
                             network.build(Architecture((16,), ("relu",))).state_dict(), None, {}, "m")
    content = model_files.to_bytes(saved)
    if shapes:  # same description, weights of another network
        other = model_files.SavedModel(network.Network(Architecture((32,), ("relu",)), Init(), 0),
                                 network.build(Architecture((32,), ("relu",))).state_dict(), None, {}, "m")
        wrong = model_files.to_bytes(other)
        # keep the 16-unit description but the 32-unit tensors
        return wrong.replace(b'\\"hidden\\": [32]', b'\\"hidden\\": [16]')  # same length
    return content


# (input, bad value, how the app reads it, error type, what the message must say)
TABLE = [
    # Build page / CLI: hidden sizes and activations
    ("hidden sizes", "0", lambda: Architecture.parse("0"), ConfigError, "from 1 to 2,048"),
    ("hidden sizes", "-3", lambda: Architecture.parse("-3"), ConfigError, "whole number"),
    ("hidden sizes", "10**9", lambda: Architecture.parse(str(10**9)), ConfigError, "from 1 to 2,048"),
    ("hidden sizes", "text", lambda: Architecture.parse("wide"), ConfigError, "whole number"),
    ("hidden sizes", "a comma alone", lambda: Architecture.parse(","), ConfigError, "single commas"),
    ("hidden sizes", "doubled commas", lambda: Architecture.parse("128,,64"), ConfigError, "single commas"),
    ("hidden sizes", "dozens of layers", lambda: Architecture.parse(",".join(["32"] * 40)), ConfigError,
     "At most 8 hidden layers"),
    ("hidden sizes", "too many parameters", lambda: Architecture((2048,) * 4, "relu"), ConfigError,
     "at most 5,000,000"),
    ("activation", "gelu", lambda: Architecture.parse("64", "gelu"), ConfigError, "sigmoid, tanh, relu"),
    # init std
    ("std", "0", lambda: Init(weight_std=0), ConfigError, "above 0 and at most 10"),
    ("std", "negative", lambda: Init(weight_std=-0.1), ConfigError, "above 0 and at most 10"),
    ("std", "NaN", lambda: Init(weight_std=math.nan), ConfigError, "finite"),
    ("std", "infinity", lambda: Init(weight_std=math.inf), ConfigError, "finite"),
    ("std", "huge", lambda: Init(weight_std=1e30), ConfigError, "at most 10"),
    ("seed", "negative", lambda: network.check_seed(-1), ConfigError, "from 0 to 2,147,483,647"),
    # Train page / CLI
    ("learning rate", "0", lambda: TrainConfig(lr=0), ConfigError, "above 0"),
    ("learning rate", "negative", lambda: TrainConfig(lr=-0.01), ConfigError, "above 0"),
    ("learning rate", "NaN", lambda: TrainConfig(lr=math.nan), ConfigError, "Learning rate"),
    ("batch size", "0", lambda: TrainConfig(batch_size=0), ConfigError, "Batch size"),
    ("batch size", "10**7", lambda: TrainConfig(batch_size=10**7), ConfigError, "from 1 to 4,096"),
    ("epochs", "0", lambda: TrainConfig(epochs=0), ConfigError, "Epochs"),
    ("epochs", "10**6", lambda: TrainConfig(epochs=10**6), ConfigError, "from 1 to 20"),
    # uploaded model files
    ("model file", "empty", lambda: model_files.from_bytes(b""), ModelFileError, "empty"),
    ("model file", "random bytes", lambda: model_files.from_bytes(np.random.default_rng(0).bytes(5000)),
     ModelFileError, "safetensors"),
    ("model file", "a pickle that runs code", lambda: model_files.from_bytes(pickle.dumps(RunsCode())),
     ModelFileError, "never opens them"),
    ("model file", "wrong shapes", lambda: model_files.from_bytes(_model_file(shapes=True)), ModelFileError,
     "does not match its architecture"),
    ("model file", "header claiming gigabytes",
     lambda: model_files.from_bytes(struct.pack("<Q", 3 * 2**30) + b"{}"), ModelFileError, "header claims"),
    ("model file", "truncated", lambda: model_files.from_bytes(_model_file()[:-100]), ModelFileError,
     "truncated"),
    # uploaded images
    ("image", "not an image", lambda: preprocess.read_image(b"%PDF-1.4 hello"), ImageError, "PNG or JPEG"),
    ("image", "empty", lambda: preprocess.read_image(b""), ImageError, "empty"),
    ("image", "20000x20000", lambda: preprocess.read_image(_bomb_png()), ImageError, "4096×4096"),
    ("image", "1x1", lambda: preprocess.read_image(_png(1, 1)), ImageError, "from 8×8"),
]


@pytest.mark.parametrize("what, value, call, error, says", TABLE,
                         ids=[f"{row[0]}: {row[1]}" for row in TABLE])
def test_bad_input_gets_a_message_that_says_what_is_allowed(what, value, call, error, says):
    with pytest.raises(error) as caught:
        call()
    assert isinstance(caught.value, LabError)
    assert says in str(caught.value)
    assert "Traceback" not in str(caught.value)


@pytest.mark.parametrize("params", [
    {"hidden": "0"}, {"hidden": "99999999999"}, {"hidden": "a,b"}, {"hidden": ",".join(["9"] * 50)},
    {"act": "softplus"}, {"std": "nan"}, {"std": "-1"}, {"std": "inf"}, {"bias": "maybe"},
    {"seed": "-4"}, {"seed": "1e99"}, {"hidden": "x" * 10_000},
])
def test_bad_share_url_values_fall_back_to_defaults_with_a_notice(params):
    state, notices = share.decode(params)
    assert notices and all("was not used" in n or "not on the page's scale" in n for n in notices)
    network.build(state.arch, state.init, state.seed)  # the fallback is a network that builds


def test_an_upload_that_claims_a_huge_picture_is_never_decoded():
    with pytest.raises(ImageError, match="4096×4096"):
        preprocess.read_image(_bomb_png())


def test_a_dark_on_light_upload_is_read_not_refused():
    image = np.full((64, 64), 255, np.uint8)
    image[16:48, 28:36] = 0  # a black "1" on white paper
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG")
    result = preprocess.preprocess(preprocess.read_image(buffer.getvalue()))
    assert not result.blank and result.image.max() > 200 and result.image[0, 0] == 0
