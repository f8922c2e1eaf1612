"""The data set as the lesson loads it, the fast path, and what a user sees when files are wrong."""

import shutil
import struct

import pytest
import torch
from torch.utils.data import DataLoader
from torchvision import datasets

from mnistlab import data
from mnistlab.dataset import MNIST
from mnistlab.errors import DataError


@pytest.fixture(scope="module")
def trainloader():
    return data.trainloader()


def test_a_batch_is_64_images_of_1x28x28_and_64_labels(trainloader):
    images, labels = next(iter(trainloader))
    assert images.shape == (64, 1, 28, 28) == (64, *MNIST.image_shape)
    assert labels.shape == (64,)
    assert images.view(images.shape[0], -1).shape == (64, 784) == (64, MNIST.inputs)


def test_normalized_pixels_lie_in_minus_one_to_one_and_use_both_ends(trainloader):
    images, _ = next(iter(trainloader))
    assert images.min() == -1.0 and images.max() == 1.0


def test_the_splits_hold_60000_and_10000_digits_of_every_class(train_split, test_split):
    train, test = train_split, test_split  # data.load_split's, held once for the session
    assert (len(train), len(test)) == (60000, 10000) == (MNIST.train_size, MNIST.test_size)
    assert len(train.class_counts()) == len(test.class_counts()) == MNIST.n_classes
    assert all(count > 800 for count in train.class_counts() + test.class_counts())
    assert sum(test.class_counts()) == MNIST.test_size


def test_fast_path_equals_the_lesson_transform_on_real_images(test_split):
    lesson = data.load_dataset(train=False)
    index = torch.arange(0, 10000, 97)
    expected = torch.stack([lesson[int(i)][0] for i in index])
    assert (test_split.normalized(index) - expected).abs().max() <= 1e-6
    assert torch.equal(test_split.labels[index], torch.tensor([lesson[int(i)][1] for i in index]))


@pytest.mark.parametrize("normalization, low, high", [
    ("lesson", -1.0, 1.0), ("mnist", -0.1307 / 0.3081, (1 - 0.1307) / 0.3081), ("none", 0.0, 1.0)])
def test_each_input_normalization_equals_its_torchvision_transform(test_split, normalization, low, high):
    index = torch.arange(0, 10000, 331)
    ds = data.load_dataset(train=False)
    ds.transform = data.make_transform(normalization)
    expected = torch.stack([ds[int(i)][0] for i in index])
    got = test_split.normalized(index, normalization=normalization)
    assert (got - expected).abs().max() <= 1e-6
    assert got.min().item() == pytest.approx(low) and got.max().item() == pytest.approx(high)
    batch, _ = next(iter(data.FastLoader(test_split, 64, normalization=normalization)))
    assert batch.min().item() == pytest.approx(low)  # the background


def test_fast_loader_batches_like_the_trainloader(test_split):
    loader = data.FastLoader(test_split, batch_size=64, shuffle=True, seed=0)
    images, labels = next(iter(loader))
    assert images.shape == (64, 1, 28, 28) and labels.shape == (64,)
    assert len(loader) == 157  # ceil(10000 / 64), like DataLoader
    seen = torch.cat([labels for _, labels in loader])
    assert torch.equal(seen.sort().values, test_split.labels.sort().values)  # every digit once


def test_fast_loader_is_reproducible_from_its_seed_and_differs_between_seeds(test_split):
    first = [labels for _, labels in data.FastLoader(test_split, 64, seed=5)]
    again = [labels for _, labels in data.FastLoader(test_split, 64, seed=5)]
    other = [labels for _, labels in data.FastLoader(test_split, 64, seed=6)]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first[0], other[0])


def test_fast_loader_gives_the_very_batches_of_a_seeded_dataloader(test_split):
    # What the training code shown on the Train page says: DataLoader(..., shuffle=True,
    # generator=torch.Generator().manual_seed(seed)). Two passes, so the order of every epoch agrees.
    lesson = DataLoader(data.load_dataset(train=False), batch_size=100, shuffle=True,
                        generator=torch.Generator().manual_seed(7))
    fast = data.FastLoader(test_split, 100, shuffle=True, seed=7)
    for _ in range(2):
        for (images, labels), (fast_images, fast_labels) in zip(lesson, fast, strict=True):
            assert torch.equal(labels, fast_labels)
            assert (images - fast_images).abs().max() <= 1e-6


def test_each_pass_of_a_shuffled_loader_draws_a_new_order(test_split):
    loader = data.FastLoader(test_split, 64, seed=1)
    epoch1, epoch2 = next(iter(loader))[1], next(iter(loader))[1]
    assert not torch.equal(epoch1, epoch2)


def test_unshuffled_batches_come_in_file_order(test_split):
    images, labels = next(iter(data.FastLoader(test_split, 10, shuffle=False)))
    assert torch.equal(labels, test_split.labels[:10])


def test_fast_loader_never_writes_the_cached_split(test_split):
    before = test_split.images.clone()
    for _ in data.FastLoader(test_split, 1000, seed=2):
        pass
    assert torch.equal(before, test_split.images)


def test_batch_size_out_of_range_is_refused(test_split):
    with pytest.raises(DataError, match="between 1 and 10000"):
        data.FastLoader(test_split, batch_size=0)
    with pytest.raises(DataError, match="between 1 and 10000"):
        data.FastLoader(test_split, batch_size=10**7)


def test_root_comes_from_argument_then_environment_then_lesson_default(monkeypatch, tmp_path):
    monkeypatch.setenv("MNISTLAB_DATA", str(tmp_path))
    assert data.data_root(tmp_path / "given") == tmp_path / "given"
    assert data.data_root() == tmp_path
    monkeypatch.delenv("MNISTLAB_DATA")
    assert str(data.data_root()).endswith(".pytorch/MNIST_data")


# -- broken data sets: copies in tmp, never ../shared -------------------------------------------

@pytest.fixture
def broken_root(tmp_path):
    """A data root whose train files link to the real ones and whose test files are copies to damage."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    source = data.data_root() / "MNIST" / "raw"
    for name in data.RAW_FILES:
        if name.startswith("train"):
            (raw / name).symlink_to(source / name)
        else:
            shutil.copy(source / name, raw / name)
    return tmp_path


def test_missing_files_and_no_network_names_the_root_and_the_fix(tmp_path, monkeypatch):
    # No network: every mirror is a closed local port, so the download fails at once.
    monkeypatch.setattr(datasets.MNIST, "mirrors", ["http://127.0.0.1:9/"])
    with pytest.raises(DataError) as err:
        data.load_dataset(train=True, root=tmp_path)
    message = str(err.value)
    assert message.startswith("MNIST is not on this computer yet, and downloading it failed (<urlopen error")
    assert f"connect to the internet once and try again: MNIST (about 12 MB) is then kept in {tmp_path}" \
        in message and "Or set MNISTLAB_DATA to a folder that already holds MNIST/raw/" in message
    assert list(tmp_path.iterdir()) == []  # nothing left behind: no empty MNIST/raw/


def test_a_real_download_attempt_offline_leaves_no_folder_behind(tmp_path, monkeypatch):
    """A real attempt, against a host that cannot exist (.invalid), as offline: it fails by name."""
    monkeypatch.setattr(datasets.MNIST, "mirrors", ["http://mnist.invalid/"])
    root = tmp_path / "new" / "data"
    with pytest.raises(DataError, match="downloading it failed") as err:
        data.load_dataset(train=False, root=root)
    assert "Error downloading" not in str(err.value)  # its reason, not torchvision's empty headline
    assert list(tmp_path.iterdir()) == []  # not even new/


def test_a_truncated_file_is_reported_as_damaged(broken_root):
    path = broken_root / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:100_000])
    with pytest.raises(DataError, match="damaged") as err:
        data.load_split(train=False, root=broken_root)
    assert str(broken_root) in str(err.value)


def test_a_file_with_the_wrong_magic_number_is_reported_as_damaged(broken_root):
    path = broken_root / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    content = bytearray(path.read_bytes())
    content[0:4] = b"\x12\x34\x56\x78"
    path.write_bytes(bytes(content))
    with pytest.raises(DataError, match="damaged"):
        data.load_split(train=False, root=broken_root)


def test_images_and_labels_of_different_counts_are_refused(broken_root):
    path = broken_root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    content = path.read_bytes()
    path.write_bytes(content[:4] + struct.pack(">i", 9000) + content[8:8 + 9000])
    with pytest.raises(DataError, match="10000 images but 9000 labels"):
        data.load_split(train=False, root=broken_root)


def test_images_of_another_shape_are_refused_naming_the_data_sets_shape(broken_root):
    path = broken_root / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    content = path.read_bytes()  # the same pixels, its header saying 14 rows of 56: torchvision reads it
    path.write_bytes(content[:8] + struct.pack(">ii", 14, 56) + content[16:])
    with pytest.raises(DataError, match=r"do not hold 28×28 8-bit images \(found \(10000, 14, 56\)"):
        data.load_split(train=False, root=broken_root)
    assert MNIST.shape_text() == "28×28"
