"""Each data set's own normalization is the mean and std of its 60,000 training images' pixels
(ToTensor's [0, 1] scale), computed here from the real files."""

import torch

from mnistlab import data
from mnistlab.dataset import FASHION, MNIST


def training_pixel_stats(ds) -> tuple[float, float]:
    """Mean and (sample) std of every training pixel over 255, exactly: integer sums of the uint8s."""
    pixels = ds.torchvision_class()(data.data_root(), train=True, download=False).data.to(torch.int64)
    n = pixels.numel()
    total, squares = pixels.sum().item(), (pixels * pixels).sum().item()
    mean = total / n
    var = (squares - total * mean) / (n - 1)
    assert n == ds.train_size * ds.inputs
    return mean / 255, var ** 0.5 / 255


def test_fashion_mean_and_std_are_its_training_pixels():
    mean, std = training_pixel_stats(FASHION)
    # its own Normalize((mean,), (std,)): garments fill more of the field than digits do
    assert (round(mean, 4), round(std, 4)) == (FASHION.mean, FASHION.std) == data.NORMALIZATIONS["fashion"]


def test_mnist_mean_and_std_are_its_training_pixels():
    mean, std = training_pixel_stats(MNIST)
    assert (round(mean, 4), round(std, 4)) == (MNIST.mean, MNIST.std) == data.NORMALIZATIONS["mnist"]
