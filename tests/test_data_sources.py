"""Fashion-MNIST from Debian's package (`apt-get install dataset-fashion-mnist`), unpacked where
torchvision reads it: the real package's files, the real data gzipped by hand, and damaged ones."""

import gzip
import shutil
from pathlib import Path

import pytest
import torch
from torchvision import datasets

from mnistlab import data, data_sources
from mnistlab.dataset import FASHION, MNIST
from mnistlab.errors import DataError

SHARED_RAW = data.data_root() / "FashionMNIST" / "raw"
NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
SIZES = (FASHION.train_size, FASHION.test_size)  # (60000, 10000)


@pytest.fixture(scope="module")
def debian_copy(tmp_path_factory) -> Path:
    """A folder laid out as Debian's, made by gzipping the real Fashion-MNIST files."""
    if not all((SHARED_RAW / name).is_file() for name in NAMES):
        pytest.skip(f"the real Fashion-MNIST files are not in {SHARED_RAW} (set MNISTLAB_DATA)")
    folder = tmp_path_factory.mktemp("debian")
    for name in NAMES:
        with open(SHARED_RAW / name, "rb") as raw, \
                gzip.open(folder / f"{name}.gz", "wb", compresslevel=1) as gz:
            shutil.copyfileobj(raw, gz)
    return folder


def torchvision_reads(root) -> tuple[int, int]:
    train = datasets.FashionMNIST(root, train=True, download=False)
    test = datasets.FashionMNIST(root, train=False, download=False)
    assert train.data.shape[1:] == FASHION.image_shape[1:] and train.data.dtype == torch.uint8
    per_class = FASHION.test_size // FASHION.n_classes
    assert torch.bincount(test.targets).tolist() == [per_class] * FASHION.n_classes  # balanced classes
    return len(train), len(test)


def leftovers(root: Path) -> list[str]:
    """Everything under root, as relative paths: temporary files and all."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_torchvision_names_the_four_files_debian_ships_gzipped():
    assert data_sources.raw_names(datasets.FashionMNIST) == NAMES == FASHION.raw_files


@pytest.mark.skipif(not data_sources.DEBIAN_FOLDER.is_dir(),
                    reason=f"Debian's Fashion-MNIST is not installed: {data_sources.DEBIAN_FOLDER} is "
                           f"absent (apt-get install dataset-fashion-mnist)")
def test_debians_package_unpacked_is_read_by_torchvision(tmp_path):
    assert not data_sources.dataset_folder_has_files(tmp_path, datasets.FashionMNIST)
    done = data_sources.unpack_debian(datasets.FashionMNIST, tmp_path)
    assert done.written == NAMES and done.kept == ()
    assert str(tmp_path / "FashionMNIST" / "raw") in str(done)
    assert data_sources.dataset_folder_has_files(tmp_path, datasets.FashionMNIST)
    assert torchvision_reads(tmp_path) == SIZES
    # the same bytes as the published files: the first training image is the same ankle boot
    shared = datasets.FashionMNIST(data.data_root(), train=True, download=False)
    assert torch.equal(datasets.FashionMNIST(tmp_path, train=True).data[:100], shared.data[:100])


def test_a_gzipped_copy_is_unpacked_and_read_and_a_second_call_keeps_it(tmp_path, debian_copy):
    done = data_sources.unpack_debian(datasets.FashionMNIST, tmp_path, debian=debian_copy)
    assert done.written == NAMES
    assert torchvision_reads(tmp_path) == SIZES
    assert leftovers(tmp_path) == sorted(f"FashionMNIST/raw/{n}" for n in NAMES)  # no temporary files
    again = data_sources.unpack_debian(datasets.FashionMNIST, tmp_path, debian=debian_copy)
    assert again.written == () and again.kept == NAMES and "nothing was unpacked" in str(again)


def test_only_the_missing_files_are_unpacked(tmp_path, debian_copy):
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    shutil.copy(SHARED_RAW / NAMES[0], raw / NAMES[0])
    done = data_sources.unpack_debian(datasets.FashionMNIST, tmp_path, debian=debian_copy)
    assert done.kept == NAMES[:1] and done.written == NAMES[1:]
    assert torchvision_reads(tmp_path) == SIZES


def assert_explains(error: DataError, root: Path, debian: Path):
    message = str(error)
    assert str(debian) in message and str(root / "FashionMNIST" / "raw") in message
    assert "MNISTLAB_DATA" in message and "apt-get install dataset-fashion-mnist" in message


def test_a_truncated_gz_is_damaged_and_leaves_nothing_behind(tmp_path, debian_copy):
    debian = tmp_path / "debian"
    shutil.copytree(debian_copy, debian)
    cut = debian / "t10k-images-idx3-ubyte.gz"  # the third file: two were already decompressed
    cut.write_bytes(cut.read_bytes()[:100_000])
    root = tmp_path / "data"
    with pytest.raises(DataError, match="is damaged") as err:
        data_sources.unpack_debian(datasets.FashionMNIST, root, debian=debian)
    assert_explains(err.value, root, debian)
    assert str(cut) in str(err.value)
    assert leftovers(root) == []
    assert not data_sources.dataset_folder_has_files(root, datasets.FashionMNIST)


def test_a_gz_of_other_bytes_fails_the_published_checksum(tmp_path, debian_copy):
    debian = tmp_path / "debian"
    shutil.copytree(debian_copy, debian)
    # MNIST's labels in Fashion-MNIST's place: a well-formed file torchvision would read happily
    with open(data.data_root() / "MNIST" / "raw" / "t10k-labels-idx1-ubyte", "rb") as raw, \
            gzip.open(debian / "t10k-labels-idx1-ubyte.gz", "wb") as gz:
        shutil.copyfileobj(raw, gz)
    root = tmp_path / "data"
    with pytest.raises(DataError, match="does not hold the published t10k-labels-idx1-ubyte") as err:
        data_sources.unpack_debian(datasets.FashionMNIST, root, debian=debian)
    assert_explains(err.value, root, debian)
    # the checksums are the Datasets': the file's is MNIST's own, the one expected Fashion-MNIST's
    published = dict(FASHION.raw_md5)["t10k-labels-idx1-ubyte"]
    assert f"its MD5 is {dict(MNIST.raw_md5)['t10k-labels-idx1-ubyte']}, not {published}" in str(err.value)
    assert leftovers(root) == []


def test_a_missing_debian_folder_names_both_ways_to_fix_it(tmp_path):
    debian = tmp_path / "no-such-folder"
    with pytest.raises(DataError, match="not in") as err:
        data_sources.unpack_debian(datasets.FashionMNIST, tmp_path / "data", debian=debian)
    assert_explains(err.value, tmp_path / "data", debian)
    assert "train-images-idx3-ubyte.gz" in str(err.value)


class Unlisted(datasets.FashionMNIST):
    """Fashion-MNIST under a name without published checksums here: only torchvision decides."""


def test_without_checksums_torchvision_decides_and_a_short_file_is_refused(tmp_path, debian_copy):
    debian = tmp_path / "debian"
    shutil.copytree(debian_copy, debian)
    with open(SHARED_RAW / "train-images-idx3-ubyte", "rb") as raw, \
            gzip.open(debian / "train-images-idx3-ubyte.gz", "wb", compresslevel=1) as gz:
        gz.write(raw.read(16 + FASHION.inputs * (FASHION.train_size - 1)))  # a whole file one image short
    root = tmp_path / "data"
    with pytest.raises(DataError, match="torchvision could not read") as err:
        data_sources.unpack_debian(Unlisted, root, debian=debian)
    assert str(root / "Unlisted" / "raw") in str(err.value)
    assert leftovers(root) == []
    shutil.copy(debian_copy / "train-images-idx3-ubyte.gz", debian)
    assert data_sources.unpack_debian(Unlisted, root, debian=debian).written == NAMES
    assert (len(Unlisted(root, train=True)), len(Unlisted(root, train=False))) == SIZES
