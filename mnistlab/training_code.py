"""The lesson's training code written from a `TrainConfig` (Train's Training code tab, the train
notebook): the code shown is the code that runs (tests/test_train.py trains both and compares the
weights)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mnistlab import splits
from mnistlab.normalization import normalize_code
from mnistlab.train_config import TrainConfig

if TYPE_CHECKING:
    from mnistlab.architecture import Architecture


def optimizer_code(config: TrainConfig) -> str:
    """The optimizer as `make_optimizer` makes it, e.g. "optim.Adam(model.parameters(), lr=0.001,
    fused=True)"."""
    name = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD"}[config.optimizer]
    momentum = f", momentum={config.momentum:g}" if config.optimizer == "sgd" else ""
    # AdamW's own default decay is 0.01: its 0 is written out
    decay = f", weight_decay={config.weight_decay:g}" if config.weight_decay or name == "AdamW" else ""
    return f"optim.{name}(model.parameters(), lr={config.lr:g}{momentum}{decay}, fused=True)"


def source(config: TrainConfig, arch: Architecture | None = None) -> str:
    """The lesson's training loop with these settings, the validation split and its check at each
    epoch's end: what `runs.run` does, step for step (it also checks validation within epochs; for a
    network with dropout, from the masks' seed on: `arch` says whether it has, and whether it is a CNN,
    which reads images unflattened)."""
    ds = config.data
    cnn = arch is not None and arch.is_cnn  # a CNN reads the (64, 1, 28, 28) batch as it comes
    flatten = "" if cnn else "        images = images.view(images.shape[0], -1)\n"
    valid_images = "images" if cnn else "images.view(images.shape[0], -1)"
    load = (f'datasets.{ds.torchvision_name}("{ds.lesson_folder}", download=True, train=True, '
            f'transform=transform)')
    stop = ""
    if config.early_stop:
        stop = f"""    if valid_loss < best_loss:  # early stopping: keep the best epoch's weights
        best_loss, best_epoch, best_state = valid_loss, e + 1, copy.deepcopy(model.state_dict())
    elif e + 1 - best_epoch >= {config.early_stop}:
        break  # {config.early_stop} epoch{'s' * (config.early_stop != 1)} without a lower validation loss
model.load_state_dict(best_state)
"""
    return f"""{"import copy" + chr(10) if config.early_stop else ""}import torch
from torch import nn, optim
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms

transform = transforms.Compose([transforms.ToTensor(),
                                transforms.{normalize_code(config.normalization)}])
trainset = {load}
validset = {load}
{splits.split_code(config)}trainloader = DataLoader(trainset, batch_size={config.batch_size}, shuffle=True,
                         generator=torch.Generator().manual_seed({config.batch_seed}))  # the batch order
validloader = DataLoader(validset, batch_size=1000)
criterion = nn.CrossEntropyLoss()  # takes scores (logits), applies log-softmax itself
optimizer = {optimizer_code(config)}
{_early_stop_start(config)}{_dropout_code(config, arch)}
for e in range({config.epochs}):
    model.train()  # training mode (dropout drops, batch norm uses the batch's statistics)
    for images, labels in trainloader:
{flatten}        optimizer.zero_grad()
        logits = model[:-1](images)  # every layer but the softmax (model: the nn.Sequential from Build)
        loss = criterion(logits, labels)
        loss.backward()
        optimizer.step()
    model.eval()  # evaluation mode: the same image always gets the same scores
    valid_loss = right = 0
    with torch.no_grad():
        for images, labels in validloader:
            logits = model[:-1]({valid_images})
            valid_loss += nn.functional.cross_entropy(logits, labels, reduction="sum").item()
            right += (logits.argmax(1) == labels).sum().item()
    valid_loss /= len(validset)
    print(f"epoch {{e + 1}}: validation loss {{valid_loss:.3f}}, accuracy {{right / len(validset):.1%}}")
{stop}"""


def _early_stop_start(config: TrainConfig) -> str:
    return "best_loss, best_epoch = float('inf'), 0\n" if config.early_stop else ""


def _dropout_code(config: TrainConfig, arch: Architecture | None) -> str:
    """The line that seeds dropout's masks: the app draws them from a private generator seeded so, in
    the same order (dropout.DropoutMasks)."""
    if arch is None or not arch.has_dropout:
        return ""
    return f"torch.manual_seed({config.batch_seed})  # the dropout masks: the batch-order seed\n"
