"""Each data set's own normalization is the mean and std of its 60,000 training images' pixels
(ToTensor's [0, 1] scale), computed here from the real files."""

import torch
from torchvision import datasets

from mnistlab import data

# Fashion-MNIST's own Normalize((mean,), (std,)): garments fill more of the field than digits do.
FASHION_MEAN, FASHION_STD = 0.2860, 0.3530


def training_pixel_stats(cls) -> tuple[float, float]:
    """Mean and (sample) std of every training pixel over 255, exactly: integer sums of the uint8s."""
    pixels = cls(data.data_root(), train=True, download=False).data.to(torch.int64)
    n = pixels.numel()
    total, squares = pixels.sum().item(), (pixels * pixels).sum().item()
    mean = total / n
    var = (squares - total * mean) / (n - 1)
    assert n == 60000 * 28 * 28
    return mean / 255, var ** 0.5 / 255


def test_fashion_mean_and_std_are_its_training_pixels():
    mean, std = training_pixel_stats(datasets.FashionMNIST)
    assert (round(mean, 4), round(std, 4)) == (FASHION_MEAN, FASHION_STD)


def test_mnist_mean_and_std_are_its_training_pixels():
    mean, std = training_pixel_stats(datasets.MNIST)
    assert (round(mean, 4), round(std, 4)) == data.NORMALIZATIONS["mnist"] == (0.1307, 0.3081)
