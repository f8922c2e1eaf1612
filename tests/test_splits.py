"""Training, validation and test: the training images split once, by seed and in proportion; smaller
and noisy training sets drawn from them; validation and test never touched."""

import pytest
import torch

from mnistlab import data, splits
from mnistlab.errors import ConfigError
from mnistlab.train_config import TrainConfig


def _indices(part, whole):
    """Which of `whole`'s images `part` holds (images are unique enough with their labels' help)."""
    keys = {img.numpy().tobytes(): i for i, img in enumerate(whole.images)}
    return [keys[img.numpy().tobytes()] for img in part.images]


def test_the_default_split_is_50000_training_and_10000_validation_images_disjoint(train_split):
    learn, validation = splits.training_splits(train_split, TrainConfig())
    assert (len(learn), len(validation)) == (50_000, 10_000)
    assert (learn.role, validation.role) == ("train", "validation")
    a, b = set(_indices(learn, train_split)), set(_indices(validation, train_split))
    assert not a & b and len(a | b) == 60_000  # every training image in exactly one of them


def test_the_split_is_stratified_each_digit_in_proportion(train_split):
    counts = torch.tensor(train_split.class_counts(), dtype=torch.float64)
    for validation_size in (1_000, 10_000, 20_000):
        config = TrainConfig(validation=validation_size)
        learn, validation = splits.training_splits(train_split, config)
        expected = counts * validation_size / len(train_split)
        assert (torch.tensor(validation.class_counts()) - expected).abs().max() <= 1
        assert (torch.tensor(learn.class_counts()) - (counts - expected)).abs().max() <= 1


def test_a_small_training_set_is_the_first_n_of_a_stratified_order_about_n_over_10_of_each_digit(train_split):
    share = torch.tensor(train_split.class_counts(), dtype=torch.float64) / len(train_split)
    whole, _ = splits.training_splits(train_split, TrainConfig())
    for n in (100, 300, 1_000, 3_000, 10_000):
        learn, validation = splits.training_splits(train_split, TrainConfig(train_images=n))
        assert len(learn) == n and len(validation) == 10_000
        assert (torch.tensor(learn.class_counts()) - share * n).abs().max() <= 1
        assert torch.equal(learn.images, whole.images[:n])  # the first n of the same order


def test_the_same_seed_gives_the_same_split_and_another_seed_another(train_split):
    a = splits.training_splits(train_split, TrainConfig(validation=5_000, split_seed=3))
    splits._cache.clear()  # computed again, not remembered
    b = splits.training_splits(train_split, TrainConfig(validation=5_000, split_seed=3))
    c = splits.training_splits(train_split, TrainConfig(validation=5_000, split_seed=4))
    assert all(torch.equal(x.images, y.images) and torch.equal(x.labels, y.labels) for x, y in zip(a, b))
    assert not torch.equal(a[1].images, c[1].images)
    assert splits.training_splits(train_split, TrainConfig(validation=5_000, split_seed=3))[0] is b[0]


@pytest.mark.parametrize("fraction", [0.0, 0.2, 0.5, 1.0])
def test_label_noise_changes_exactly_that_fraction_of_training_labels_and_nothing_else(train_split, fraction):
    config = TrainConfig(train_images=3_000, label_noise=fraction)
    clean_learn, clean_validation = splits.training_splits(train_split, config.replace(label_noise=0))
    learn, validation = splits.training_splits(train_split, config)
    assert torch.equal(learn.images, clean_learn.images)  # the same images ...
    changed = learn.labels != clean_learn.labels  # ... some with another label, never their own
    assert changed.sum().item() == round(fraction * 3_000)
    assert torch.equal(validation.labels, clean_validation.labels)  # validation's labels untouched
    assert torch.equal(train_split.labels[_indices(learn, train_split)], clean_learn.labels)  # and the data's
    if fraction == 1.0:  # every label wrong, spread over the other nine digits
        wrong = learn.labels[clean_learn.labels == 1]
        assert (wrong != 1).all() and len(set(wrong.tolist())) == 9


@pytest.mark.parametrize("settings, says", [
    ({"validation": 999}, "Validation images must be a whole number from 1,000 to 20,000"),
    ({"validation": 20_001}, "Validation images"), ({"validation": "many"}, "Validation images"),
    ({"train_images": 50_001}, "Training images must be a whole number from 1 to 50,000"),
    ({"train_images": 55_001, "validation": 5_000},
     "Training images must be a whole number from 1 to 55,000"),
    ({"train_images": 60_000}, "from 1 to 50,000"),
    ({"train_images": 32}, "Batch size must be at most the 32 training images"),
    ({"label_noise": 1.5}, "Label noise must be a number from 0 and at most 1"),
    ({"label_noise": -0.1}, "Label noise"), ({"label_noise": "half"}, "Label noise"),
    ({"split_seed": -1}, "Seed"),
])
def test_bad_split_settings_are_refused_with_what_is_allowed(settings, says):
    with pytest.raises(ConfigError, match=says):
        TrainConfig(**settings)


def test_a_split_smaller_than_the_validation_set_is_refused_with_what_is_allowed(train_split):
    with pytest.raises(ConfigError, match="leaves none of the 5,000 training images"):
        splits.training_splits(train_split.first(5_000), TrainConfig())
    with pytest.raises(ValueError, match="not a test split"):
        splits.training_splits(data.Split(train_split.images[:10], train_split.labels[:10], "test"),
                               TrainConfig())


def test_the_settings_say_what_they_train_validate_and_test_on():
    text = TrainConfig(train_images=1000, label_noise=0.2, validation=5000, early_stop=3).splits_text()
    assert "**1,000 training images**" in text and "200 of their labels (20%) changed" in text
    assert "**5,000 validation images**" in text and "after 3 epochs without a lower validation loss" in text
    assert "**10,000 test images**" in text and "only report" in text
    assert "**50,000 training images**" in TrainConfig().splits_text()  # 60,000 less the 10,000 that validate
