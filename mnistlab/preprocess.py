"""A drawing or an uploaded picture turned into a digit the network can read, the way MNIST was made.

MNIST's digits were cropped to their ink, scaled (keeping the aspect ratio, with antialiasing) so
the longer side is 20 pixels, put in a 28×28 field and shifted so their center of mass is at the
field's center. `preprocess` does the same to any image and keeps every stage so a page can show
what the network is given; `naive` just shrinks the whole image, for comparison. The field is the
data set's image (`Dataset.image_shape`: MNIST's 28×28), never a size written here.

`preprocess_garment` prepares a picture of a garment the way Fashion-MNIST's product photos were
(Xiao, Rasul & Vollgraf 2017, section 2): trim the background, subsample the longer side to 28,
sharpen, extend to 28×28 centred, negate, 8-bit greyscale.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageFilter, ImageOps

from mnistlab.data import normalize
from mnistlab.dataset import FASHION, MNIST, Dataset
from mnistlab.errors import ImageError

BOX = 20  # the longer side of the digit inside MNIST's field
# Where MNIST's centers of mass are: the field's center (row, column; measured: 13.99, 14.01).
CENTER = MNIST.height / 2
MIN_CONTRAST = 0.2  # brightest ink minus background, on a 0-1 scale, below which nothing is drawn
INK_LEVEL = 0.2  # a pixel counts as ink from this level up, once the background is 0 and the ink 1
MIN_STROKE = 2.0  # MNIST's pen is about 2-3 px wide in the 20 px box; thinner drawings are thickened
MIN_EXTENT = 0.1  # ink spanning less than this fraction of the image's longer side is a dot, not a digit

# Upload limits (also in the README): big enough for a phone photo, small enough for a shared server.
UPLOAD_FORMATS = ("PNG", "JPEG")
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
MAX_SIDE = 4096
MIN_SIDE = 8
WORK_SIDE = 1024  # bigger uploads are shrunk to this first: the digit ends up 20 px tall anyway

# Fashion-MNIST's conversion (Xiao et al. 2017, section 2). A pixel is background when its RGB
# distance to the corners' colour is at most 5% of the largest possible one (black to white).
TRIM_DISTANCE = 0.05
# Unsharp masking with a Gaussian of radius and std 1: the image plus (image - blurred), so the
# effect grows near outlines (the paper quotes ImageMagick's unsharp mask; its defaults for the rest:
# gain 1, threshold 5% of the range).
SHARPEN = ImageFilter.UnsharpMask(radius=1, percent=100, threshold=13)


def garment_stages(dataset: Dataset = FASHION) -> tuple[str, ...]:
    """The paper's seven steps, named for `dataset`'s field (Fashion-MNIST's 28×28)."""
    return ("converted to PNG", "trimmed", f"longer side subsampled to {_side(dataset)}", "sharpened",
            f"extended to {dataset.shape_text()}, centred", "negated", "8-bit greyscale")


def _field(dataset: Dataset) -> tuple[int, int]:
    """(height, width) of `dataset`'s images: the field a drawing is made into."""
    return dataset.height, dataset.width


def _side(dataset: Dataset) -> int:
    """The longest side a picture is subsampled to so that it fits `dataset`'s field."""
    return min(_field(dataset))


@dataclass(frozen=True)
class Stage:
    """One step on the way to the network's input: a name for the page and a grayscale image."""

    name: str
    image: np.ndarray  # (H, W) uint8 grayscale: white ink on black once it is the network's input

    def __repr__(self) -> str:
        return f"Stage({self.name!r}, {self.image.shape[1]}×{self.image.shape[0]})"


@dataclass(frozen=True, eq=False)
class Preprocessed:
    """Every stage from the input to the image the network reads (a 28×28 digit for MNIST).

    `blank` when the image holds no digit (blank, or a speck): there is nothing to predict.
    """

    stages: tuple[Stage, ...]
    blank: bool

    def input(self, normalization: str = "lesson") -> torch.Tensor | None:
        """The (1, 1, height, width) tensor a network reads: the last stage stored as its data set
        stores it (8 bits), then normalized by the training code's own function, as the network was
        trained."""
        if self.blank:
            return None
        return normalize(torch.from_numpy(self.image)[None], normalization)

    @property
    def image(self) -> np.ndarray:
        """The last stage: the data set's image (or the grayscale input, when blank)."""
        return self.stages[-1].image

    def __repr__(self) -> str:
        steps = " → ".join(s.name for s in self.stages)
        return f"Preprocessed({'blank: ' if self.blank else ''}{steps})"


# -- the stages ----------------------------------------------------------------------------------

def _luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., :3] @ np.array([0.299, 0.587, 0.114])  # ITU-R 601, as PIL's convert("L")


def _unit(image) -> np.ndarray:
    """A PIL image or an array as floats in [0, 1]: (H, W), (H, W, 3) RGB or (H, W, 4) RGBA."""
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGBA"))  # an opaque image gets alpha 1: the same grays
    a = np.asarray(image)
    if a.dtype == np.uint8:
        a = a.astype(np.float64) / 255
    elif np.issubdtype(a.dtype, np.floating) or a.dtype == bool:
        a = np.clip(np.nan_to_num(a.astype(np.float64)), 0, 1)
    else:
        raise ImageError(f"An image must hold 8-bit or 0-1 values; got {a.dtype}.")
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.size == 0:
        raise ImageError(f"The image has no pixels (shape {a.shape}).")
    if a.ndim != 2 and (a.ndim != 3 or a.shape[-1] not in (3, 4)):
        raise ImageError(f"An image must be grayscale, RGB or RGBA; got an array of shape {a.shape}.")
    return a


def _underneath(gray: np.ndarray, alpha: np.ndarray) -> float:
    """What shows through transparent pixels: the opposite of the ink's color (the mean gray of the
    opaque pixels, weighted by opacity), black under light ink and white under dark."""
    ink = (gray * alpha).sum() / alpha.sum() if alpha.sum() > 0 else 1.0
    return 0.0 if ink >= 0.5 else 1.0


def to_grayscale(image) -> np.ndarray:
    """Any image as (H, W) floats in [0, 1].

    Accepts a PIL image or an array: (H, W), (H, W, 3) RGB or (H, W, 4) RGBA, uint8 or floats in
    [0, 1]. Transparent pixels become the opposite of the ink's color: black under the canvas's
    white strokes (the usual compositing over black), white under dark ink on a transparent PNG.
    """
    a = _unit(image)
    if a.ndim == 2:
        return a
    gray = _luminance(a)
    if a.shape[-1] == 3:
        return gray
    alpha = a[..., 3]
    return gray * alpha + _underneath(gray, alpha) * (1 - alpha)


def to_rgb(image) -> np.ndarray:
    """Any image as (H, W, 3) uint8 RGB, read as `to_grayscale` reads it (transparent pixels white
    under a dark garment, black under the canvas's white strokes)."""
    a = _unit(image)
    if a.ndim == 2:
        a = a[..., None].repeat(3, -1)
    elif a.shape[-1] == 4:
        alpha = a[..., 3:]
        a = a[..., :3] * alpha + _underneath(_luminance(a), a[..., 3]) * (1 - alpha)
    return _u8(a)


def _background(gray: np.ndarray) -> float:
    """The paper's level: the median of the image's outermost pixels."""
    border = np.concatenate([gray[0], gray[-1], gray[1:-1, 0], gray[1:-1, -1]])
    return float(np.median(border))


def ink_on_black(gray: np.ndarray) -> np.ndarray:
    """White ink on black, background 0 and brightest ink 1; dark-on-light images are inverted."""
    if _background(gray) > 0.5:
        gray = 1 - gray
    background, top = _background(gray), float(gray.max())
    if top - background < MIN_CONTRAST:
        return np.zeros_like(gray)
    return np.clip((gray - background) / (top - background), 0, 1)


def ink_box(ink: np.ndarray) -> tuple[int, int, int, int] | None:
    """(top, left, bottom, right) around the pixels at INK_LEVEL or above; None when too little ink."""
    rows = np.flatnonzero((ink >= INK_LEVEL).any(1))
    cols = np.flatnonzero((ink >= INK_LEVEL).any(0))
    if rows.size == 0:
        return None
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    if max(bottom - top, right - left) < MIN_EXTENT * max(ink.shape):
        return None
    return int(top), int(left), int(bottom), int(right)


def stroke_width(ink: np.ndarray) -> float:
    """About how many pixels wide the pen was: a stroke of width w and length L has area wL and
    about 2L pixels on its edge."""
    mask = ink >= INK_LEVEL
    inner = mask.copy()
    inner[1:] &= mask[:-1]
    inner[:-1] &= mask[1:]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    edge = int(mask.sum() - inner.sum())
    return 2 * float(mask.sum()) / max(edge, 1)


def thicken(digit: np.ndarray, box: int = BOX) -> np.ndarray:
    """Strokes too thin to survive the shrink to `box` pixels widened (a max filter), so a fine pen
    still gives a digit with MNIST's stroke width instead of a faint hairline."""
    needed = MIN_STROKE * max(digit.shape) / box  # the pen width, in this image's pixels, MNIST would show
    grow = int(round(needed - stroke_width(digit)))
    if grow < 1:
        return digit
    r = (grow | 1) // 2  # an odd window, 2r+1 wide, centred on each pixel
    h, w = digit.shape
    padded = np.pad(digit, r)
    wide = np.max([padded[:, r + dx:r + dx + w] for dx in range(-r, r + 1)], axis=0)  # rows, then
    return np.max([wide[r + dy:r + dy + h] for dy in range(-r, r + 1)], axis=0)  # columns: a square


def scale_to_box(digit: np.ndarray, box: int = BOX) -> np.ndarray:
    """The longer side to `box` pixels, keeping the aspect ratio, with Lanczos antialiasing."""
    h, w = digit.shape
    size = _fit((w, h), box)
    if size == (w, h):
        return digit.copy()
    resized = Image.fromarray(digit.astype(np.float32)).resize(size, Image.Resampling.LANCZOS)
    out = np.clip(np.asarray(resized, dtype=np.float64), 0, 1)  # Lanczos rings slightly past 0 and 1
    return out / out.max() if out.max() > 0 else out  # thin strokes fade when shrunk: ink back to 1


def pad(digit: np.ndarray, top: int | None = None, left: int | None = None,
        field_shape: tuple[int, int] = _field(MNIST)) -> np.ndarray:
    """`digit` in a black field of `field_shape` (height, width) at (top, left); centered by its box
    when not given."""
    h, w = digit.shape
    top = (field_shape[0] - h) // 2 if top is None else top
    left = (field_shape[1] - w) // 2 if left is None else left
    field = np.zeros(field_shape)
    field[top:top + h, left:left + w] = digit
    return field


def center_of_mass(image: np.ndarray) -> tuple[float, float]:
    """(row, column) of the ink's center of mass, each pixel weighted by its brightness."""
    total = image.sum()
    rows, cols = np.indices(image.shape)
    return float((rows * image).sum() / total), float((cols * image).sum() / total)


def center_by_mass(digit: np.ndarray, field_shape: tuple[int, int] = _field(MNIST)) -> np.ndarray:
    """`digit` placed in the field so its center of mass lands on the field's center, as MNIST's do
    (whole-pixel shift, as MNIST).

    The digit is never pushed out of the field: a lopsided digit stops at the edge.
    """
    h, w = digit.shape
    row, col = center_of_mass(digit)
    top = min(max(round(field_shape[0] / 2 - row), 0), field_shape[0] - h)
    left = min(max(round(field_shape[1] / 2 - col), 0), field_shape[1] - w)
    return pad(digit, top, left, field_shape)


def _u8(image: np.ndarray) -> np.ndarray:
    return np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)


# -- the two ways in -----------------------------------------------------------------------------

def preprocess(image, dataset: Dataset = MNIST) -> Preprocessed:
    """The MNIST procedure, one stage at a time: grayscale, crop, scale, pad, center, normalize, into
    `dataset`'s field."""
    field_shape = _field(dataset)
    gray = ink_on_black(to_grayscale(image))
    stages = [Stage("grayscale", _u8(gray))]
    box = ink_box(gray)
    if box is None:
        return Preprocessed(tuple(stages), blank=True)
    top, left, bottom, right = box
    cropped = thicken(gray[top:bottom, left:right])
    scaled = scale_to_box(cropped)
    centered = center_by_mass(scaled, field_shape)
    stages += [Stage("cropped to the ink", _u8(cropped)), Stage(f"scaled to {BOX} px", _u8(scaled)),
               Stage(f"padded to {dataset.shape_text()}", _u8(pad(scaled, field_shape=field_shape))),
               Stage("centered by mass", _u8(centered))]
    return Preprocessed(tuple(stages), blank=False)


def naive(image, dataset: Dataset = MNIST) -> Preprocessed:
    """The whole image shrunk to `dataset`'s image size, no cropping or centering: what preprocessing
    is compared to."""
    gray = ink_on_black(to_grayscale(image))
    stages = [Stage("grayscale", _u8(gray))]
    if ink_box(gray) is None:
        return Preprocessed(tuple(stages), blank=True)
    size = (dataset.width, dataset.height)  # PIL's order
    small = Image.fromarray(gray.astype(np.float32)).resize(size, Image.Resampling.LANCZOS)
    field = np.clip(np.asarray(small, dtype=np.float64), 0, 1)
    stages.append(Stage(f"resized to {dataset.shape_text()}", _u8(field)))
    return Preprocessed(tuple(stages), blank=False)


def _corner_color(rgb: np.ndarray) -> np.ndarray:
    """The background's colour: the median of the four corner pixels (one may be covered)."""
    return np.median(rgb[[0, 0, -1, -1], [0, -1, 0, -1]].astype(np.float64), axis=0)


def garment_box(rgb: np.ndarray) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) around the pixels farther than TRIM_DISTANCE from the corners'
    colour: the paper's trim. An ImageError when nothing, or only a speck, differs from it."""
    distance = np.linalg.norm(rgb - _corner_color(rgb), axis=-1) / (255 * np.sqrt(3))
    content = distance > TRIM_DISTANCE
    rows, cols = np.flatnonzero(content.any(1)), np.flatnonzero(content.any(0))
    h, w = content.shape
    if rows.size == 0:
        raise ImageError(f"There is nothing to see in this {w}×{h} picture: every pixel is within "
                         f"{TRIM_DISTANCE:.0%} of the corners' colour. Upload a photo of one garment on a "
                         f"plain background that it does not touch at the corners.")
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    if max(bottom - top, right - left) < MIN_EXTENT * max(h, w):
        raise ImageError(f"There is nothing to see in this {w}×{h} picture but a speck of "
                         f"{right - left}×{bottom - top} pixels. Upload a photo in which the garment fills "
                         f"most of the picture, on a plain background.")
    return int(top), int(left), int(bottom), int(right)


def preprocess_garment(image, dataset: Dataset = FASHION) -> Preprocessed:
    """Fashion-MNIST's conversion of a product photo, one stage per step of Xiao et al. (2017), into
    `dataset`'s field.

    Made for garments on a white background; a light drawing on a dark one (the canvas) is already
    what the network reads, so it is not negated. An ImageError when there is no garment to find.
    """
    def gray(rgb) -> np.ndarray:
        return np.array(Image.fromarray(rgb).convert("L"))  # writable, for torch.from_numpy

    png = to_rgb(image)  # (1) lossless 8-bit RGB
    background = _corner_color(png)
    top, left, bottom, right = garment_box(png)  # (2)
    trimmed = png[top:bottom, left:right]
    h, w = trimmed.shape[:2]
    small = Image.fromarray(trimmed).resize(_fit((w, h), _side(dataset)), Image.Resampling.NEAREST)  # (3)
    sharp = small.filter(SHARPEN)  # (4)
    height, width = _field(dataset)
    field = Image.new("RGB", (width, height), tuple(int(round(c)) for c in background))  # (5)
    # centred as ImageMagick's gravity centres (half the field minus half the image, each rounded
    # down): an odd width leaves the wider margin on the left, as in 99.7% of Fashion-MNIST's images
    field.paste(sharp, (width // 2 - sharp.width // 2, height // 2 - sharp.height // 2))
    field = np.asarray(field)
    light_background = _luminance(background / 255) > 0.5
    negated = 255 - field if light_background else field  # (6)
    names = list(garment_stages(dataset))
    if not light_background:
        names[5] = "not negated: already light on dark"
    pictures = (png, trimmed, small, sharp, field, negated, negated)  # (7): their grays
    stages = [Stage(name, gray(np.asarray(picture))) for name, picture in zip(names, pictures)]
    return Preprocessed(tuple(stages), blank=False)


# -- uploads -------------------------------------------------------------------------------------

def _limits() -> str:
    return (f"Upload a PNG or JPEG of at most {MAX_UPLOAD_BYTES // 2**20} MB, from {MIN_SIDE}×{MIN_SIDE} "
            f"to {MAX_SIDE}×{MAX_SIDE} pixels.")


def read_image(data: bytes, name: str = "The file") -> np.ndarray:
    """An uploaded file's bytes as an image array for `preprocess`, checked before it is decoded.

    Only PNG and JPEG are opened, and their size is read from the header first, so a small file
    that claims a huge picture (a decompression bomb) is refused without being decompressed.
    Photos are turned upright by their EXIF orientation and shrunk to at most WORK_SIDE pixels.
    """
    if not data:
        raise ImageError(f"{name} is empty. {_limits()}")
    if len(data) > MAX_UPLOAD_BYTES:
        raise ImageError(f"{name} is {len(data) / 2**20:.1f} MB, too big. {_limits()}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=UPLOAD_FORMATS)
            w, h = img.size
            if not (MIN_SIDE <= w <= MAX_SIDE and MIN_SIDE <= h <= MAX_SIDE):
                raise ImageError(f"{name} is {w}×{h} pixels. {_limits()}")
            img.draft("RGB", (WORK_SIDE, WORK_SIDE))  # JPEG: decode at a reduced scale when possible
            img.load()
            img = ImageOps.exif_transpose(img)
    except ImageError:
        raise
    except Image.UnidentifiedImageError:
        raise ImageError(f"{name} is not a PNG or JPEG image. {_limits()}") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"{name} claims a picture of far more than {MAX_SIDE}×{MAX_SIDE} pixels; "
                         f"it was not opened. {_limits()}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:  # truncated or damaged data
        raise ImageError(f"{name} could not be read as an image ({e}). {_limits()}") from None
    if img.mode.startswith("I"):  # 16-bit grayscale: converting to 8 bits would saturate it
        img = Image.fromarray((np.asarray(img, dtype=np.float64) / 65535).astype(np.float32))
    elif "A" in img.getbands() or "transparency" in img.info:
        img = img.convert("RGBA")
    elif img.mode != "L":
        img = img.convert("RGB")
    if max(img.size) > WORK_SIDE:
        img = img.resize(_fit(img.size, WORK_SIDE), Image.Resampling.LANCZOS)
    a = np.asarray(img)
    return np.clip(a, 0, 1) if a.dtype == np.float32 else a


def _fit(size: tuple[int, int], side: int) -> tuple[int, int]:
    """(w, h) scaled so the longer side is `side`."""
    w, h = size
    scale = side / max(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))
