"""Drawings and uploads become MNIST-like digits: tested on real MNIST digits, redrawn big on a canvas."""

import io
import pickle
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from mnistlab import data, network
from mnistlab import preprocess as pp
from mnistlab.errors import ImageError

CANVAS = 280  # the Draw page's canvas


def predict(model, tensors) -> torch.Tensor:
    with torch.no_grad():
        return network.probabilities(model, torch.cat(tensors)).argmax(1)


def on_canvas(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An MNIST digit's ink enlarged to a longer side of 100-250 px, anywhere fully inside a black canvas."""
    rows, cols = np.flatnonzero(digit.any(1)), np.flatnonzero(digit.any(0))
    ink = digit[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    longer = int(rng.integers(100, 251))
    h, w = ink.shape
    size = (max(1, round(w * longer / max(h, w))), max(1, round(h * longer / max(h, w))))
    big = np.asarray(Image.fromarray(ink).resize(size, Image.Resampling.BILINEAR))
    canvas = np.zeros((CANVAS, CANVAS), np.uint8)
    top, left = int(rng.integers(0, CANVAS - size[1] + 1)), int(rng.integers(0, CANVAS - size[0] + 1))
    canvas[top:top + size[1], left:left + size[0]] = big
    return canvas


def strokes(digit: int, width: int, rgba: bool = False, ink=255, paper=0) -> np.ndarray:
    """A digit drawn with lines of `width` px on a 280×280 canvas, as a person would draw it."""
    if rgba:
        img = Image.new("RGBA", (CANVAS, CANVAS), (0, 0, 0, 0))
        color = (ink, ink, ink, 255)
    else:
        img, color = Image.new("L", (CANVAS, CANVAS), paper), ink
    pen = ImageDraw.Draw(img)
    if digit == 0:
        pen.ellipse((90, 50, 190, 230), outline=color, width=width)
    elif digit == 1:
        pen.line((140, 40, 140, 240), fill=color, width=width)
    elif digit == 7:
        pen.line((80, 50, 200, 50), fill=color, width=width)
        pen.line((200, 50, 120, 240), fill=color, width=width)
    elif digit == 4:
        pen.line((170, 40, 170, 240), fill=color, width=width)
        pen.line((170, 40, 80, 170), fill=color, width=width)
        pen.line((80, 170, 210, 170), fill=color, width=width)
    return np.asarray(img)


def png(array: np.ndarray, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, fmt, **kw)
    return buf.getvalue()


# -- the MNIST procedure ---------------------------------------------------------------------------

def test_digits_redrawn_big_anywhere_on_the_canvas_are_read_right(trained_relu, test_split):
    rng = np.random.default_rng(0)
    picks = rng.choice(len(test_split), 1000, replace=False)
    canvases = [on_canvas(test_split.images[i].numpy(), rng) for i in picks]
    labels = test_split.labels[picks]

    processed = [pp.preprocess(c) for c in canvases]
    assert all(p.input().shape == (1, 1, 28, 28) for p in processed)
    accuracy = (predict(trained_relu, [p.input() for p in processed]) == labels).float().mean().item()
    naive = [pp.naive(c).input() for c in canvases]
    naive_accuracy = (predict(trained_relu, naive) == labels).float().mean().item()

    assert accuracy >= 0.95, f"preprocessed canvases: {accuracy:.1%} right"
    assert accuracy >= naive_accuracy + 0.3, f"preprocessed {accuracy:.1%}, naive resize {naive_accuracy:.1%}"


def shifted(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    return np.roll(np.roll(image, dy, 0), dx, 1)  # MNIST's border is black: rolling only moves black


def test_an_mnist_digit_is_changed_little(trained_relu, test_split):
    """MNIST digits are already cropped, 20 px and centered: at most a one-pixel shift, a tiny brightening."""
    picks = torch.arange(0, 10_000, 10)  # 1,000 digits
    originals = test_split.images[picks].numpy().astype(float) / 255
    processed = [pp.preprocess(d).image.astype(float) / 255 for d in originals]

    unchanged = np.mean([np.array_equal(p, d) for p, d in zip(processed, originals)])
    change = np.array([min(np.abs(shifted(d, dy, dx) - p).mean() for dy in (-1, 0, 1) for dx in (-1, 0, 1))
                       for p, d in zip(processed, originals)])
    assert unchanged > 0.5, f"only {unchanged:.0%} came through exactly unchanged"
    assert np.percentile(change, 99) < 0.002, f"99th percentile change {np.percentile(change, 99):.4f}"
    assert change.max() < 0.05, f"largest change {change.max():.3f} of the 0-1 range"

    as_trained = predict(trained_relu, [test_split.normalized(picks)])
    same = (predict(trained_relu, [pp.preprocess(d).input() for d in originals]) == as_trained).float().mean()
    assert same >= 0.99, f"the prediction changed for {1 - same:.1%} of the digits"


def test_the_network_sees_the_training_normalization(test_split):
    """An unchanged MNIST digit gives exactly the tensor training gives it."""
    digit = test_split.images[0]
    tensor = pp.preprocess(digit.numpy()).input()
    assert torch.equal(tensor, test_split.normalized([0]))
    lesson_transform = data.make_transform("lesson")
    assert torch.equal(tensor, lesson_transform(Image.fromarray(digit.numpy()))[None])
    for normalization in data.NORMALIZATIONS:  # and each other choice a network may have been trained on
        assert torch.equal(pp.preprocess(digit.numpy()).input(normalization),
                           test_split.normalized([0], normalization=normalization))


def test_each_stage_is_kept_for_the_page():
    result = pp.preprocess(strokes(7, 20))
    names = [s.name for s in result.stages]
    assert names == ["grayscale", "cropped to the ink", "scaled to 20 px", "padded to 28×28",
                     "centered by mass"]
    assert result.stages[0].image.shape == (CANVAS, CANVAS)
    assert max(result.stages[2].image.shape) == 20
    assert all(s.image.dtype == np.uint8 for s in result.stages)
    assert result.image.shape == (28, 28)
    assert [s.name for s in pp.naive(strokes(7, 20)).stages] == ["grayscale", "resized to 28×28"]


def test_the_digit_is_20px_and_its_center_of_mass_is_mnists(test_split):
    image = pp.preprocess(on_canvas(test_split.images[3].numpy(), np.random.default_rng(1))).image
    rows, cols = np.flatnonzero(image.any(1)), np.flatnonzero(image.any(0))
    assert max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1) == 20
    row, col = pp.center_of_mass(image.astype(float))
    assert abs(row - pp.CENTER) <= 0.5 and abs(col - pp.CENTER) <= 0.5


# -- edge cases ----------------------------------------------------------------------------------

@pytest.mark.parametrize("image", [
    np.zeros((CANVAS, CANVAS), np.uint8),
    np.zeros((CANVAS, CANVAS, 4), np.uint8),  # the canvas before any stroke: all transparent
    np.full((CANVAS, CANVAS), 255, np.uint8),  # all white
    np.full((CANVAS, CANVAS, 3), 128, np.uint8),  # all gray
    (np.random.default_rng(0).random((CANVAS, CANVAS)) * 20).astype(np.uint8),  # faint noise
], ids=["black", "transparent", "white", "gray", "faint-noise"])
def test_a_blank_canvas_asks_for_a_digit(image):
    for result in (pp.preprocess(image), pp.naive(image)):
        assert result.blank and result.input() is None
        assert result.image.shape == image.shape[:2]  # the grayscale stage is still there to show


@pytest.mark.parametrize("radius", [1, 5, 10])
def test_a_single_dot_is_not_a_digit(radius):
    canvas = Image.new("L", (CANVAS, CANVAS))
    ImageDraw.Draw(canvas).ellipse((140 - radius, 140 - radius, 140 + radius, 140 + radius), fill=255)
    assert pp.preprocess(np.asarray(canvas)).blank


@pytest.mark.parametrize("digit", [0, 1, 4, 7])
@pytest.mark.parametrize("width", [3, 20, 40], ids=["thin", "usual", "thick"])
def test_drawn_digits_are_read_whatever_the_stroke_width(trained_relu, digit, width):
    result = pp.preprocess(strokes(digit, width))
    assert predict(trained_relu, [result.input()]).item() == digit


def test_a_stroke_touching_the_border(trained_relu):
    canvas = Image.new("L", (CANVAS, CANVAS))
    pen = ImageDraw.Draw(canvas)
    pen.line((60, 0, 220, 0), fill=255, width=20)  # the 7's bar along the top edge
    pen.line((220, 0, 130, 279), fill=255, width=20)  # its stem down to the bottom edge
    result = pp.preprocess(np.asarray(canvas))
    assert result.stages[1].image.shape[0] == CANVAS  # cropped to the whole height
    assert predict(trained_relu, [result.input()]).item() == 7


def test_transparent_background_is_the_same_as_black():
    """streamlit-drawable-canvas returns RGBA: white strokes, transparent elsewhere."""
    rgba = strokes(4, 20, rgba=True)
    assert rgba[0, 0, 3] == 0 and rgba.shape == (CANVAS, CANVAS, 4)
    assert torch.equal(pp.preprocess(rgba).input(), pp.preprocess(strokes(4, 20)).input())


def test_dark_ink_is_read_like_white_ink():
    white_on_black = pp.preprocess(strokes(0, 20)).input()
    black_on_white = pp.preprocess(strokes(0, 20, ink=0, paper=255)).input()
    black_on_transparent = strokes(0, 20, rgba=True, ink=0)
    assert torch.equal(black_on_white, white_on_black)
    assert torch.equal(pp.preprocess(black_on_transparent).input(), white_on_black)


# -- uploads -------------------------------------------------------------------------------------

def test_an_uploaded_png_is_read_like_the_array(test_split):
    digit = test_split.images[7].numpy()
    assert np.array_equal(pp.read_image(png(digit)), digit)


def test_a_dark_on_light_photo_is_inverted_and_read_right(trained_relu, test_split):
    picks = range(20)
    uploads = []
    for i in picks:
        big = np.asarray(Image.fromarray(test_split.images[i].numpy()).resize((300, 300)))
        rgb = np.stack([255 - big] * 3, -1)  # black ink on white paper
        uploads.append(pp.read_image(png(rgb, "JPEG", quality=85)))
    assert all(u[0, 0].mean() > 200 for u in uploads)
    results = [pp.preprocess(u) for u in uploads]
    assert all(r.image[0, 0] == 0 and r.image.max() == 255 for r in results)  # white ink on black now
    predicted = predict(trained_relu, [r.input() for r in results])
    assert (predicted == test_split.labels[list(picks)]).sum().item() >= 19


def claims_size(width: int, height: int) -> bytes:
    """A small, valid 8×8 PNG whose header is rewritten to claim another size (a decompression bomb)."""
    data = bytearray(png(np.zeros((8, 8), np.uint8)))
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


@pytest.mark.parametrize("upload, says", [
    (b"", "empty"),
    (b"hello, this is text and not a picture", "not a PNG or JPEG"),
    (pickle.dumps({"a": 1}), "not a PNG or JPEG"),
    (png(np.zeros((40, 40), np.uint8), "GIF"), "not a PNG or JPEG"),
    (png(np.zeros((1, 1), np.uint8)), "1×1 pixels"),
    (claims_size(5000, 5000), "5000×5000 pixels"),
    (claims_size(4096, 4097), "4096×4097 pixels"),
    (claims_size(20_000, 20_000), "far more than 4096×4096 pixels; it was not opened"),
    (png(np.zeros((200, 200), np.uint8))[:60], "could not be read"),  # truncated
    (b"\x89PNG\r\n\x1a\n" + bytes(6 * 2**20), "too big"),
], ids=["empty", "text", "pickle", "gif", "1x1", "big", "tall", "bomb", "truncated", "too-many-bytes"])
def test_uploads_that_are_not_usable_images_get_a_clear_message(upload, says):
    with pytest.raises(ImageError, match=says) as e:
        pp.read_image(upload, "digit.png")
    assert "digit.png" in str(e.value) and "PNG or JPEG" in str(e.value)


def test_a_big_photo_is_shrunk_before_work():
    photo = np.full((3000, 2000, 3), 255, np.uint8)
    photo[1000:2000, 800:1200] = 0
    image = pp.read_image(png(photo, "JPEG"))
    assert max(image.shape[:2]) == pp.WORK_SIDE
    assert not pp.preprocess(image).blank


def test_a_16_bit_png_keeps_its_gray_levels():
    deep = np.zeros((64, 64), np.uint16)
    deep[10:50, 28:36] = 40_000
    image = pp.read_image(png(deep))
    assert 0.55 < image.max() < 0.65
    assert not pp.preprocess(image).blank


def test_a_fine_pen_gives_mnists_stroke_width_not_a_hairline():
    thin, usual = (pp.preprocess(strokes(7, width)).image.astype(float) for width in (3, 20))
    assert 0.6 < thin.sum() / usual.sum() < 1.6  # about as much ink; unthickened, a third
    assert pp.stroke_width(strokes(7, 3) / 255) < 4 < pp.stroke_width(pp.thicken(strokes(7, 3) / 255))
