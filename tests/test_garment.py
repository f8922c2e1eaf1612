"""Pictures of garments prepared the way Fashion-MNIST was made (Xiao et al. 2017): tested on real
Fashion-MNIST images turned back into product photos (dark on white, 10× bigger, white margins)."""

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw
from torchvision import datasets

from mnistlab import data
from mnistlab import preprocess as pp
from mnistlab.dataset import FASHION
from mnistlab.errors import ImageError

PAPER_STEPS = ("converted to PNG", "trimmed", "longer side subsampled to 28", "sharpened",
               "extended to 28×28, centred", "negated", "8-bit greyscale")


@pytest.fixture(scope="module")
def garments() -> np.ndarray:
    """50 real Fashion-MNIST test images, 5 of each class."""
    ds = datasets.FashionMNIST(data.data_root(), train=False, download=False)
    labels = ds.targets.numpy()
    index = np.concatenate([np.flatnonzero(labels == c)[:5] for c in range(10)])
    return ds.data.numpy()[index]


def product_photo(garment: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 28×28 garment as a shop's photo: dark on white, 280 px (bicubic), white margins, RGB."""
    big = Image.fromarray(255 - garment).resize((280, 280), Image.Resampling.BICUBIC)
    top, left, bottom, right = (int(m) for m in rng.integers(10, 81, size=4))
    photo = Image.new("L", (left + 280 + right, top + 280 + bottom), 255)
    photo.paste(big, (left, top))
    return np.asarray(photo.convert("RGB"))


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel().astype(float), b.ravel().astype(float))[0, 1])


def test_a_product_photo_becomes_the_fashion_mnist_image_it_was_made_from(garments):
    rng = np.random.default_rng(0)
    prepared = [pp.preprocess_garment(product_photo(g, rng)) for g in garments]
    assert all(p.image.shape == (28, 28) and p.image.dtype == np.uint8 for p in prepared)
    agree = [correlation(g, p.image) for g, p in zip(garments, prepared)]
    assert np.mean(agree) > 0.9 and min(agree) > 0.75
    # The garment lands where it was: the same box within a pixel, for almost every image.
    def box(image):
        rows, cols = np.flatnonzero((image > 40).any(1)), np.flatnonzero((image > 40).any(0))
        return np.array([rows[0], rows[-1], cols[0], cols[-1]])
    same_place = [np.abs(box(g) - box(p.image)).max() <= 1 for g, p in zip(garments, prepared)]
    assert np.mean(same_place) >= 0.9
    # MNIST's procedure (a 20 px box, centred by mass) makes a different picture of the same photo.
    as_digits = [correlation(g, pp.preprocess(product_photo(g, rng)).image) for g in garments]
    assert np.mean(as_digits) < np.mean(agree) - 0.1


def test_a_jpeg_upload_is_read_and_prepared_too(garments):
    rng = np.random.default_rng(1)
    agree = []
    for g in garments[::5]:  # one of each class
        buffer = io.BytesIO()
        Image.fromarray(product_photo(g, rng)).save(buffer, "JPEG", quality=85)
        agree.append(correlation(g, pp.preprocess_garment(pp.read_image(buffer.getvalue())).image))
    assert np.mean(agree) > 0.85


def test_the_stages_are_the_papers_steps_in_order(garments):
    prepared = pp.preprocess_garment(product_photo(garments[0], np.random.default_rng(2)))
    assert tuple(s.name for s in prepared.stages) == PAPER_STEPS == pp.garment_stages(FASHION)
    png, trimmed, small, sharp, field, negated, final = (s.image for s in prepared.stages)
    assert png.shape[0] > 280 and png.shape[1] > 280  # the photo with its margins
    assert max(trimmed.shape) == 280 and max(small.shape) == FASHION.width and small.shape == sharp.shape
    # the field is the data set's image, as its real files hold them
    assert field.shape == negated.shape == final.shape == FASHION.image_shape[1:] == garments.shape[1:]
    assert field[0, 0] == 255 and negated[0, 0] == 0  # white around the product, then black
    assert np.abs(negated.astype(int) - (255 - field)).max() <= 1
    assert prepared.input().shape == (1, 1, 28, 28) and not prepared.blank


def test_a_transparent_cut_out_is_a_product_on_white(garments):
    garment = garments[10]  # a pullover
    photo = product_photo(garment, np.random.default_rng(3))
    alpha = np.where(photo[..., 0] == 255, 0, 255).astype(np.uint8)  # the white around it cut away
    rgba = np.dstack([photo, alpha])
    rgba[alpha == 0, :3] = 0  # what is under a transparent pixel must not matter
    buffer = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buffer, "PNG")
    cut_out = pp.preprocess_garment(pp.read_image(buffer.getvalue()))
    assert np.abs(cut_out.image.astype(int) - pp.preprocess_garment(photo).image).max() <= 1


def test_a_sketch_on_the_canvas_is_light_on_dark_already_and_not_negated():
    canvas = Image.new("RGBA", (280, 280), (0, 0, 0, 0))  # the Draw page's canvas: white strokes
    pen = ImageDraw.Draw(canvas)
    pen.line((100, 40, 180, 40), fill=(255, 255, 255, 255), width=20)  # a pair of trousers
    pen.line((100, 40, 90, 240), fill=(255, 255, 255, 255), width=20)
    pen.line((180, 40, 190, 240), fill=(255, 255, 255, 255), width=20)
    prepared = pp.preprocess_garment(np.asarray(canvas))
    assert prepared.stages[5].name == "not negated: already light on dark"
    image = prepared.image
    assert image[:, 0].max() == 0 and image[:, -1].max() == 0  # black margins
    assert image[0].max() > 200 and image[-1].max() > 200  # the trousers span the height
    assert image[20, 14] < 30  # between the legs


@pytest.mark.parametrize("picture", [
    np.full((300, 200, 3), 255, np.uint8),  # a plain white picture
    np.clip(250 + np.random.default_rng(4).normal(0, 2, (300, 200, 3)), 0, 255).astype(np.uint8),  # paper
    np.zeros((40, 40, 4), np.uint8),  # an empty, transparent canvas
], ids=["white", "noisy white", "empty canvas"])
def test_nothing_but_background_is_nothing_to_see(picture):
    with pytest.raises(ImageError, match="nothing to see .* within 5% of the corners' colour"):
        pp.preprocess_garment(picture)


def test_a_speck_on_a_big_white_picture_is_refused():
    picture = np.full((500, 500, 3), 255, np.uint8)
    picture[200:210, 300:310] = 0
    with pytest.raises(ImageError, match="nothing to see .* but a speck of 10×10 pixels"):
        pp.preprocess_garment(picture)
