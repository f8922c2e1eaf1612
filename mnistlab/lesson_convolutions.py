"""Part 3 of the lesson, "Convolutions" (the course's next architecture): an edge filter set by hand
in an `nn.Conv2d`, ReLU, max pooling, then a small CNN trained on Fashion-MNIST and set beside part
2's network on the same splits, and what the CNN learned: its filters and one image's feature maps.

Its code reads only the seed. It trains two networks for two epochs on 20,000 images, so `lesson.run`
takes about 15 s for it on one thread, its slowest step about 5 s (the CNN's training).
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from torch import nn

from mnistlab import conv_plots, data
from mnistlab.dataset import FASHION
from mnistlab.lesson_step import BATCH, LessonValues, Step, data_folder_text
from mnistlab.lesson_validation import HEADER, ROW
from mnistlab.plot_style import _image_axes, _layout, _np, diverging_scale

TRAIN_IMAGES = 20_000  # of the 50,000: two epochs of the CNN take seconds, not a minute
EPOCHS = 2  # each network's training; the epoch kept is chosen on validation
IMAGE = 2  # the test image the filters read: a trouser, all long vertical edges
SOBEL = ((-1, 0, 1), (-2, 0, 2), (-1, 0, 1))  # a vertical edge: right minus left, the middle row twice


def _data(v: LessonValues) -> str:
    folder = data_folder_text(FASHION)
    return f"""import torch
from torch.utils.data import DataLoader, Subset, TensorDataset, random_split
from torchvision import datasets, transforms

transform = transforms.Compose([transforms.ToTensor(),
                                transforms.{data.normalize_code('lesson')}])
# Fashion-MNIST's 60,000 training images, split as part 2 splits MNIST's
fullset = datasets.FashionMNIST({folder!r}, download=True, train=True,
                                transform=transform)
trainset, validset = random_split(fullset, [50000, 10000],
                                  generator=torch.Generator().manual_seed({v.seed}))
testset = datasets.FashionMNIST({folder!r}, download=True, train=False,
                                transform=transform)

# {TRAIN_IMAGES:,} training images, transformed once (one batch of all of them),
# so that each epoch only shuffles them
trainsubset = Subset(trainset, range({TRAIN_IMAGES}))
trainimages, trainlabels = next(iter(DataLoader(trainsubset, batch_size=len(trainsubset))))
trainloader = DataLoader(TensorDataset(trainimages, trainlabels), batch_size={BATCH}, shuffle=True,
                         generator=torch.Generator().manual_seed({v.seed}))
validbatches = list(DataLoader(validset, batch_size=1000))  # transformed once too
print(f"training {{len(trainsubset)}} of {{len(trainset)}}, validation {{len(validset)}}, "
      f"test {{len(testset)}}")"""


def _edge_filter(v: LessonValues) -> str:
    rows = ",\n".join(f"                      [{', '.join(f'{w:2}.' for w in r)}]" for r in SOBEL)
    return f"""from torch import nn

image, label = testset[{IMAGE}]  # a test image: (1, 28, 28)
print(fullset.classes[label], tuple(image.shape))

# A vertical edge detector (Sobel): right minus left
sobel = torch.tensor([{rows.lstrip()}])
conv = nn.Conv2d(1, 1, kernel_size=3, bias=False)  # 1 filter
with torch.no_grad():  # set by hand, not learned: no gradients
    conv.weight[0, 0] = sobel
    feature_map = conv(image.unsqueeze(0))  # a batch of one
print(tuple(feature_map.shape))  # 28 - 3 + 1 = 26: no padding
print(f"from {{feature_map.min():.1f}} to {{feature_map.max():.1f}}")"""


def _relu(v: LessonValues) -> str:
    return """relu = nn.ReLU()
activated = relu(feature_map)  # negatives become 0

def show(values, width=4, digits=1):  # numbers on one line
    return " ".join(f"{v:{width}.{digits}f}" for v in values)

# row 14, across both legs: + at a leg's left edge, - at its right
print(show(feature_map[0, 0, 14, 6:19]))
print(show(activated[0, 0, 14, 6:19]))
share = (feature_map < 0).float().mean()
print(f"{share:.0%} of the map was negative: now 0")"""


def _pool(v: LessonValues) -> str:
    return """pool = nn.MaxPool2d(2)  # the largest of each 2×2 block
pooled = pool(activated)
print(tuple(activated.shape), "→", tuple(pooled.shape))
print(show(activated[0, 0, 14, 6:18]))  # rows 14 and 15:
print(show(activated[0, 0, 15, 6:18]))  # six 2×2 blocks
print(show(pooled[0, 0, 7, 3:9], width=9))  # their largest
print(f"strongest: {activated.max():.1f} → {pooled.max():.1f}")"""


def _cnn(v: LessonValues) -> str:
    return f"""from collections import OrderedDict

torch.manual_seed({v.seed})
model = nn.Sequential(OrderedDict([
    ("conv1", nn.Conv2d(1, 8, kernel_size=5)),   # 8 filters 5×5
    ("relu1", nn.ReLU()),
    ("pool1", nn.MaxPool2d(2)),
    ("conv2", nn.Conv2d(8, 16, kernel_size=5)),  # 16, each 5×5 on 8 maps
    ("relu2", nn.ReLU()),
    ("pool2", nn.MaxPool2d(2)),
    ("flatten", nn.Flatten()),                   # 16 maps 4×4: 256 numbers
    ("output", nn.Linear(256, 10)),
    ("log_softmax", nn.LogSoftmax(dim=1))]))     # as part 2's network

images, labels = next(iter(trainloader))
x = images
print(f"{{'layer':<12}}{{'output shape':<16}}parameters")
print(f"{{'input':<12}}{{tuple(x.shape)}}")
for name, layer in model.named_children():
    x = layer(x)
    n = sum(p.numel() for p in layer.parameters())
    shape = str(tuple(x.shape))
    print(f"{{name:<12}}{{shape:<16}}{{n:>10,}}" if n else f"{{name:<12}}{{shape}}")
print(f"{{'in all':<28}}{{sum(p.numel() for p in model.parameters()):>10,}}")"""


def _parameters(v: LessonValues) -> str:
    return f"""import torch.nn.functional as F

class Classifier(nn.Module):  # part 2's network, with its dropout
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 256)
        self.fc2 = nn.Linear(256, 128)
        self.fc3 = nn.Linear(128, 64)
        self.fc4 = nn.Linear(64, 10)
        self.dropout = nn.Dropout(p=0.2)

    def forward(self, x):
        x = x.view(x.shape[0], -1)
        x = self.dropout(F.relu(self.fc1(x)))
        x = self.dropout(F.relu(self.fc2(x)))
        x = self.dropout(F.relu(self.fc3(x)))
        return F.log_softmax(self.fc4(x), dim=1)

torch.manual_seed({v.seed})
mlp = Classifier()

def count(model):
    return sum(p.numel() for p in model.parameters())

print(f"CNN: {{count(model):>7,}} parameters")
print(f"MLP: {{count(mlp):>7,}} parameters, {{count(mlp) / count(model):.0f}}× as many")
print(f"MLP's fc1: {{mlp.fc1.weight.numel():,}} weights, each for one pixel")
print(f"CNN's conv1: {{model.conv1.weight.numel()}} weights, used at every pixel")"""


def _loop(v: LessonValues) -> str:
    return f"""import copy
from torch import optim

criterion = nn.NLLLoss()  # for log-probabilities, as in part 2
epochs = {EPOCHS}

def training_pass(model, optimizer):
    \"\"\"One epoch of training; the mean training loss.\"\"\"
    running_loss = 0
    for images, labels in trainloader:
        optimizer.zero_grad()
        loss = criterion(model(images), labels)
        loss.backward()
        optimizer.step()
        running_loss += loss.item() * len(images)
    return running_loss / len(trainsubset)

def validation_pass(model):
    \"\"\"Validation loss and accuracy in evaluation mode, then back to training mode.\"\"\"
    model.eval()
    valid_loss = correct = 0
    with torch.no_grad():
        for images, labels in validbatches:
            log_ps = model(images)
            valid_loss += criterion(log_ps, labels).item() * len(images)
            top_p, top_class = log_ps.topk(1, dim=1)
            correct += (top_class == labels.view(*top_class.shape)).sum().item()
    model.train()
    return valid_loss / len(validset), correct / len(validset)

def fit(model):
    \"\"\"Trains for `epochs`, validating after each; keeps the epoch of the
    highest validation accuracy, and returns it and that accuracy.\"\"\"
    optimizer = optim.Adam(model.parameters(), lr=0.003)
    best_accuracy, best_epoch = 0, 0
    print({HEADER!r})
    for e in range(1, epochs + 1):
        train_loss = training_pass(model, optimizer)
        valid_loss, accuracy = validation_pass(model)
        if accuracy > best_accuracy:  # the best so far: keep a copy
            best_accuracy, best_epoch = accuracy, e
            best_state = copy.deepcopy(model.state_dict())
        mark = "  best" if best_epoch == e else ""
        print(f"{ROW}{{mark}}")
    model.load_state_dict(best_state)
    print(f"Keeping epoch {{best_epoch}}: validation accuracy {{best_accuracy:.1%}}")
    return best_epoch, best_accuracy

print(f"{{len(trainloader)}} batches an epoch, {{len(validbatches)}} validation batches")"""


def _train_cnn(v: LessonValues) -> str:
    return """cnn_epoch, cnn_valid = fit(model)"""


def _train_mlp(v: LessonValues) -> str:
    return """mlp_epoch, mlp_valid = fit(mlp)"""


def _compare(v: LessonValues) -> str:
    return """testbatches = list(DataLoader(testset, batch_size=1000))

def test_accuracy(model):
    model.eval()
    correct = 0
    with torch.no_grad():
        for images, labels in testbatches:
            top_p, top_class = model(images).topk(1, dim=1)
            correct += (top_class == labels.view(*top_class.shape)).sum().item()
    return correct / len(testset)

print(f"{'':<4}{'parameters':>11}{'validation':>12}{'test':>7}")
for name, net, valid in [("CNN", model, cnn_valid), ("MLP", mlp, mlp_valid)]:
    print(f"{name:<4}{count(net):>11,}{valid:>12.1%}{test_accuracy(net):>7.1%}")
chosen = "CNN" if cnn_valid >= mlp_valid else "MLP"
print(f"Chosen on validation: the {chosen}. Test only reports.")"""


def _filters(v: LessonValues) -> str:
    return """print(tuple(model.conv1.weight.shape))  # 8 filters on 1 map
print(tuple(model.conv2.weight.shape))  # 16 filters on 8 maps
first = model.conv1.weight[0, 0].detach()  # conv1's first
for row in first:
    print(show(row, width=5, digits=2))"""


def _feature_maps(v: LessonValues) -> str:
    return """x = image.unsqueeze(0)  # step 2's trouser
with torch.no_grad():
    for name, layer in model.named_children():
        if name == "flatten":
            break
        x = layer(x)
        strongest = x[0].amax(dim=(1, 2))  # each map's largest
        print(f"{name:<6} {str(tuple(x.shape)):<15} strongest: "
              f"map {strongest.argmax()}, {strongest.max():.1f}")"""


# -- the pictures: each fits a slide's column, its text as large as the slide's ------------------------

EDGE_MAPS = (("feature_map", "before ReLU"), ("activated", "after ReLU"), ("pooled", "max pool 2×2"))


def edge_figure(image, maps: list[tuple[str, object]]) -> go.Figure:
    """The image (gray) and the hand-set filter's maps (blue positive, red negative, on one scale),
    two to a row, each titled by its variable in the step's code."""
    panels = [("image", _np(image).reshape(28, 28)), *((name, _np(m)) for name, m in maps)]
    rows = math.ceil(len(panels) / 2)
    fig = make_subplots(rows=rows, cols=2, subplot_titles=[name for name, _ in panels],
                        horizontal_spacing=0.06, vertical_spacing=0.12)
    bound = conv_plots.symmetric_bound(np.concatenate([z.ravel() for _, z in panels[1:]]))
    for i, (_, z) in enumerate(panels):
        fig.add_trace(go.Heatmap(z=z, coloraxis="coloraxis2" if i == 0 else "coloraxis", hoverinfo="skip"),
                      row=i // 2 + 1, col=i % 2 + 1)
        _image_axes(fig, row=i // 2 + 1, col=i % 2 + 1)
        suffix = "" if i == 0 else str(i + 1)
        fig.update_yaxes(scaleanchor=f"x{suffix}", row=i // 2 + 1, col=i % 2 + 1)
    _layout(fig, None, 300 * rows + 60)
    fig.update_layout(plot_bgcolor="white", margin=dict(l=10, r=10, t=40, b=10),
                      coloraxis=dict(colorscale=diverging_scale(), cmin=-bound, cmax=bound,
                                     colorbar=dict(thickness=14, len=0.8)),
                      coloraxis2=dict(colorscale="gray", showscale=False))
    return fig


def _edge_picture(shown: int):
    """Steps 2-4: the image and the first `shown` of its maps (before ReLU, after, pooled)."""
    return lambda namespace, v: edge_figure(
        namespace["image"], [(name, namespace[name][0, 0]) for name, _ in EDGE_MAPS[:shown]])


def for_a_slide(fig: go.Figure) -> go.Figure:
    """A conv_plots figure whose colour bars' numbers follow the figure's font (the page enlarges it
    on a projector), without its row labels and with each block titled by its layers alone: a slide's
    column has no room beside the maps for the labels, nor across them for the sizes."""
    for trace in fig.data:
        if getattr(trace, "marker", None) is not None and trace.marker.colorbar.tickfont.size:
            trace.marker.colorbar.tickfont.size = None
    fig.layout.annotations = [a for a in fig.layout.annotations if a.xanchor != "right"]
    for a in fig.layout.annotations:  # a block's title: its layers' names (the printout has the shapes)
        a.text = a.text.split(":")[0]
    fig.update_layout(margin_l=10)
    return fig


def read_as_built(model: nn.Sequential, image_shape=(1, 28, 28)) -> nn.Sequential:
    """The lesson's CNN (the same modules) as conv_plots reads a Build network: with its image shape."""
    built = nn.Sequential(OrderedDict(model.named_children()))
    built.image_shape = image_shape
    return built


def _filters_picture(namespace: dict, v: LessonValues):
    return for_a_slide(conv_plots.filters_figure(namespace["model"]))


def _maps_picture(namespace: dict, v: LessonValues):
    """Step 12: the maps of each convolution (the image is steps 2-4's), top to bottom before ReLU,
    after it, after the pool."""
    maps = conv_plots.feature_maps(read_as_built(namespace["model"]), namespace["image"])
    return for_a_slide(conv_plots.feature_maps_figure(
        conv_plots.FeatureMaps(maps.image, maps.maps, maps.blocks[1:])))


STEPS: tuple[Step, ...] = (
    Step(1, "Fashion-MNIST, split as in part 2", "Clothes, not digits: the same 60,000 + 10,000 "
         "images of 28×28, split with part 2's seed into 50,000 to train on and 10,000 to validate "
         f"with; the test images wait for the report. Both networks of this part train on the same "
         f"first {TRAIN_IMAGES:,} training images, so that each training takes seconds.", _data,
         note="The course's convolution lesson moves to colour photos (CIFAR-10) and a GPU; here it "
              "stays on Fashion-MNIST, the course's own data set, on the CPU, so that the CNN can be "
              "set beside part 2's network.",
         edits=("seed",)),
    Step(2, "An edge filter in nn.Conv2d", "A convolution slides a small filter over the image and "
         "writes, at each position, the sum of the pixels under it times its weights. Here the "
         "weights are set by hand to a vertical edge detector (Sobel): positive (blue) where the image "
         "gets brighter to the right, negative (red) where it gets darker.", _edge_filter,
         picture=_edge_picture(1)),
    Step(3, "ReLU keeps one side of each edge", "After the convolution comes the activation, as "
         "after a linear layer: ReLU sets the negative values to 0, so only the edges where the "
         "image gets brighter to the right are left.", _relu, picture=_edge_picture(2)),
    Step(4, "Max pooling", "`nn.MaxPool2d(2)` keeps the largest value of each 2×2 block: the map "
         "halves in each direction (26×26 to 13×13), and the strongest responses survive wherever "
         "they were in their block.", _pool, picture=_edge_picture(3)),
    Step(5, "A small CNN", "Two convolutions with ReLU and max pooling, then one linear layer to the "
         "10 classes: each layer's output shape for a batch of 64, and its parameters.", _cnn),
    Step(6, "Far fewer parameters than part 2's network", "Part 2's network gives each of its first "
         "layer's units its own weight for every pixel; a convolution's filter is the same few "
         "weights wherever it is on the image.", _parameters),
    Step(7, "The training loop, from part 2", f"Part 2's training and validation passes, and a `fit` "
         f"that trains a network for {EPOCHS} epochs and keeps the epoch with the highest validation "
         "accuracy (the measure the two networks are compared by).", _loop),
    Step(8, "Train the CNN", f"{EPOCHS} epochs on the {TRAIN_IMAGES:,} training images, validated "
         "after each; a few seconds.", _train_cnn),
    Step(9, "Part 2's network on the same images", "The same loop, the same images, the same "
         "validation images.", _train_mlp),
    Step(10, "CNN against MLP: choose on validation, report test", "Each network's kept epoch, its "
         "parameters and validation accuracy, and then, used once, the test images. With the lesson's "
         "seed the CNN is ahead on both, with a fortieth of the parameters.", _compare),
    Step(11, "What the CNN learned: its filters", "Each learned 5×5 filter as a small image (blue "
         "positive, red negative). conv1's read the image itself: some look like edge detectors, as "
         "step 2's; conv2's read conv1's 8 maps, a row of 8 squares each.", _filters,
         picture=_filters_picture),
    Step(12, "Feature maps of one image", "Step 2's trouser through the trained CNN: each filter's "
         "map is a column, top to bottom before ReLU, after it and after the pool, down to the 4×4 "
         "maps its output layer reads.", _feature_maps, picture=_maps_picture),
)
