"""The lesson "Neural Network Architecture", step by step: each step's code, run as a notebook runs it.

A step is a small value: a title, a line or two on what it shows, its code for the visitor's values,
and a note where the 2018 code no longer runs or misleads. `run` executes the steps' code in order in
one namespace, as Jupyter runs a notebook's cells, and keeps what each prints (and the value of its
last expression: a module's repr, or a figure). The Lesson page and the notebook export read these
same steps, so what the page shows is what the downloaded notebook prints.
"""

from __future__ import annotations

import ast
import builtins
import io
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from mnistlab import data, parse, plots
from mnistlab.dataset import MNIST, Dataset
from mnistlab.errors import ConfigError
from mnistlab.network import MAX_WIDTH, Architecture, Init, Network, check_seed
from mnistlab.share import STD_SCALE

BATCH = 64  # the lesson's batch size: the image index runs over one batch
SEED = 7  # the lesson's torch.manual_seed: its batches, hence images[0], on every page that shows them
PIXEL_WINDOW = 8  # step 3's numbers: 8 of "-0.6" fit a projector's figure column at body size (1280 wide)


@dataclass(frozen=True)
class LessonValues:
    """What a visitor may change in the lesson; every later step follows."""

    n_hidden: int = 256  # steps 5-9: the one hidden layer of the 784-256-10 network
    hidden: tuple[int, int] = (128, 64)  # steps 11-14: the 784-128-64-10 ReLU network
    seed: int = SEED  # torch.manual_seed: the batch order and every network's first weights
    std: float = 0.01  # step 12: weight.data.normal_(std=...)
    index: int = 0  # the image of the batch shown in steps 3 and 13

    def __post_init__(self):
        for name, size in [("Hidden units", self.n_hidden), *(
                (f"fc{i} units", s) for i, s in enumerate(self.hidden, 1))]:
            if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_WIDTH:
                raise ConfigError(f"{name} must be a whole number from 1 to {MAX_WIDTH}; got {size!r}.")
        if len(self.hidden) != 2:
            raise ConfigError(f"The lesson's ReLU network has two hidden layers; got {len(self.hidden)}.")
        object.__setattr__(self, "hidden", tuple(self.hidden))
        object.__setattr__(self, "seed", check_seed(self.seed))
        object.__setattr__(self, "std", Init(weight_std=self.std).weight_std)
        if isinstance(self.index, bool) or not isinstance(self.index, int) or not 0 <= self.index < BATCH:
            raise ConfigError(f"The image index must be a whole number from 0 to {BATCH - 1}; "
                              f"got {self.index!r}.")

    def sigmoid_network(self) -> Network:
        """Steps 8 and 9's network as Build makes it: the same weights for the seed."""
        return Network(Architecture((self.n_hidden,), "sigmoid"), Init(), self.seed)

    def relu_network(self) -> Network:
        """Steps 11 and 14's network as Build makes it (Build names the last layer `output`)."""
        return Network(Architecture(self.hidden, "relu"), Init(), self.seed)


DEFAULT = LessonValues()


# -- the URL: /lesson?step=5&present=1&units=256&layers=128,64&seed=7&std=0.01&image=0 ---------------

N_STEPS = 14
VALUE_KEYS = ("units", "layers", "seed", "std", "image")
MAX_PARAM_LENGTH = 40  # longer values are not echoed back in a notice


def _shown(text: str) -> str:
    return repr(text) if len(text) <= MAX_PARAM_LENGTH else f"of {len(text):,} characters"


def parse_step(value, n_steps: int = N_STEPS) -> tuple[int, str | None]:
    """The step a URL's `step` asks for (1 to `n_steps`, a part's steps), and a notice when it
    cannot be used.

    A missing or empty `step` is step 1, where the lesson starts; anything else that is not a whole
    number from 1 to `n_steps` is step 1 with a notice saying what is allowed.
    """
    text = parse.last(value).strip()
    if text == "":
        return 1, None
    if text.isascii() and text.isdigit() and 1 <= int(text) <= n_steps:
        return int(text), None
    return 1, f"The link's step {_shown(text)} is not a step of this lesson: steps are 1 to {n_steps}. " \
              f"Showing step 1."


N_PARTS = 2


def parse_part(value) -> tuple[int, str | None]:
    """The part a URL's `part` asks for: missing is part 1 (links from before part 2 keep opening
    part 1's steps); anything but 1 or 2 is part 1 with a notice."""
    text = parse.last(value).strip()
    if text == "":
        return 1, None
    if text in [str(n) for n in range(1, N_PARTS + 1)]:
        return int(text), None
    return 1, f"The link's part {_shown(text)} is not a part of this lesson: parts are 1 and 2. " \
              f"Showing part 1."


def parse_present(value) -> bool:
    """Presenter mode from the URL: `present=1` (or true, yes, on)."""
    return parse.last(value).strip().lower() in ("1", "true", "yes", "on")


def encode_values(values: LessonValues) -> dict[str, str]:
    return {"units": str(values.n_hidden), "layers": ",".join(map(str, values.hidden)),
            "seed": str(values.seed), "std": f"{values.std:g}", "image": str(values.index)}


def decode_values(params: Mapping[str, object]) -> tuple[LessonValues, list[str]]:
    """The values a link carries, and one notice per value that could not be used (it keeps its
    default). Missing parameters take their defaults silently."""
    values, notices = DEFAULT, []
    for key, name, convert in [
        ("units", "n_hidden", int), ("layers", "hidden", lambda t: tuple(int(p) for p in t.split(","))),
        ("seed", "seed", int), ("std", "std", float), ("image", "index", int),
    ]:
        text = parse.last(params.get(key, "")).strip()
        if text == "":
            continue
        try:
            if len(text) > MAX_PARAM_LENGTH:
                raise ConfigError(f"it is {len(text):,} characters long.")
            parsed = convert(text)
            if name == "std" and parsed not in STD_SCALE:
                raise ConfigError(f"the std must be one of {', '.join(f'{s:g}' for s in STD_SCALE)}.")
            values = replace(values, **{name: parsed})
        except (ValueError, ConfigError) as e:  # ConfigError is a ValueError; int("x") too
            reason = str(e) if isinstance(e, ConfigError) else "it is not a number."
            notices.append(f"The link's {key} {_shown(text)} was not used: {reason} "
                           f"Using {encode_values(DEFAULT)[key]}.")
    return values, notices


# -- the steps ----------------------------------------------------------------------------------------

def data_folder_text(dataset: Dataset = MNIST) -> str:
    """Where the lesson's code reads a data set: $MNISTLAB_DATA when set, else the course's folder."""
    return os.environ.get("MNISTLAB_DATA") or dataset.lesson_folder


@dataclass(frozen=True)
class Step:
    number: int
    title: str
    text: str  # what the step shows, in a line or two
    code: Callable[[LessonValues], str]
    note: str | None = None  # where the lesson's 2018 code changed, and why
    edits: tuple[str, ...] = ()  # the LessonValues fields edited at this step
    # A figure of the step's results, beside its printout, from the namespace after the step and its values
    picture: Callable[[dict, LessonValues], object] | None = None

    def source(self, values: LessonValues = DEFAULT) -> str:
        return self.code(values)


def _load(v: LessonValues) -> str:
    return f"""import torch
from torchvision import datasets, transforms

# Define a transform to normalize the data: pixels from [0, 1] to [-1, 1]
transform = transforms.Compose([transforms.ToTensor(),
                                transforms.{data.normalize_code('lesson')}])
# Download (or find) and load the training data
trainset = datasets.MNIST({data_folder_text()!r}, download=True, train=True,
                          transform=transform)
trainloader = torch.utils.data.DataLoader(
    trainset, batch_size={BATCH}, shuffle=True,
    generator=torch.Generator().manual_seed({v.seed}))  # the same batches on every run
print(trainset)"""


def _batch(v: LessonValues) -> str:
    return """dataiter = iter(trainloader)
images, labels = next(dataiter)
print(type(images))
print(images.shape)
print(labels.shape)"""


def _image(v: LessonValues) -> str:
    return f"""import plotly.express as px

print(labels[{v.index}])
px.imshow(images[{v.index}].numpy().squeeze(), color_continuous_scale="gray")"""


def _flatten(v: LessonValues) -> str:
    return """# (64, 1, 28, 28) to (64, 784): one row of 784 inputs per image (-1: torch works it out)
inputs = images.view(images.shape[0], -1)
print(inputs.shape)
print(images.shape)  # unchanged"""


def _tensors(v: LessonValues) -> str:
    return f"""def activation(x):
    \"\"\"Sigmoid activation function: 1 / (1 + e^-x)\"\"\"
    return 1 / (1 + torch.exp(-x))

torch.manual_seed({v.seed})  # set the random seed so things are predictable

n_input = 784   # input units: one per pixel
n_hidden = {v.n_hidden:<4}  # hidden units
n_output = 10   # output units: one per digit

W1 = torch.randn(n_input, n_hidden)   # inputs to the hidden layer
W2 = torch.randn(n_hidden, n_output)  # hidden layer to the outputs
B1 = torch.randn((1, n_hidden))       # biases of the hidden layer
B2 = torch.randn((1, n_output))       # and of the output layer

hidden = activation(torch.mm(inputs, W1) + B1)
output = torch.mm(hidden, W2) + B2  # scores, no sigmoid: the softmax comes next
print(output.shape)
print(output[:2])"""


def _shapes(v: LessonValues) -> str:
    return """for name, tensor in [("images", images), ("inputs", inputs), ("W1", W1), ("W2", W2),
                     ("B1", B1), ("B2", B2), ("hidden", hidden), ("output", output)]:
    print(f"{name:<7} {tensor.shape}")"""


def _softmax(v: LessonValues) -> str:
    return """def softmax(x):
    # minus each row's max: the same probabilities, and exp cannot overflow
    e = torch.exp(x - x.max(dim=1, keepdim=True).values)
    return e / torch.sum(e, dim=1).view(-1, 1)

probabilities = softmax(output)
print(probabilities.shape)  # should be (64, 10)
print(probabilities.sum(dim=1))  # each row should sum to 1

big = torch.tensor([[100.0, 0.0]])
# the 2018 formula, without the max: exp(100) is inf in float32, inf / inf is nan
print(torch.exp(big) / torch.sum(torch.exp(big), dim=1).view(-1, 1))
print(softmax(big))"""


def _module(v: LessonValues) -> str:
    return f"""from torch import nn

class Network(nn.Module):
    def __init__(self):
        super().__init__()
        # Inputs to hidden layer linear transformation
        self.hidden = nn.Linear(784, {v.n_hidden})
        # Output layer, 10 units - one for each digit
        self.output = nn.Linear({v.n_hidden}, 10)
        # Define sigmoid activation and softmax output
        self.sigmoid = nn.Sigmoid()
        self.softmax = nn.Softmax(dim=1)

    def forward(self, x):
        # Pass the input tensor through each of our operations
        x = self.hidden(x)
        x = self.sigmoid(x)
        x = self.output(x)
        x = self.softmax(x)
        return x

torch.manual_seed({v.seed})
model = Network()
model"""


def _functional(v: LessonValues) -> str:
    return f"""import torch.nn.functional as F

class Network(nn.Module):
    def __init__(self):
        super().__init__()
        # Inputs to hidden layer linear transformation
        self.hidden = nn.Linear(784, {v.n_hidden})
        # Output layer, 10 units - one for each digit
        self.output = nn.Linear({v.n_hidden}, 10)

    def forward(self, x):
        # Hidden layer with sigmoid activation
        x = torch.sigmoid(self.hidden(x))
        # Output layer with softmax activation
        x = F.softmax(self.output(x), dim=1)
        return x

torch.manual_seed({v.seed})
model = Network()
print(model(inputs).sum(dim=1)[:4])  # probabilities: each row sums to 1
model"""


def _activations(v: LessonValues) -> str:
    return """import plotly.graph_objects as go

x = torch.linspace(-5, 5, 201)
curves = {"sigmoid": torch.sigmoid(x), "tanh": torch.tanh(x), "ReLU": torch.relu(x)}
fig = go.Figure()
for name, y in curves.items():
    fig.add_trace(go.Scatter(x=x.numpy(), y=y.numpy(), name=name))
fig"""


def _relu(v: LessonValues) -> str:
    h1, h2 = v.hidden
    return f"""class Network(nn.Module):
    def __init__(self):
        super().__init__()
        # Defining the layers, {h1}, {h2}, 10 units each
        self.fc1 = nn.Linear(784, {h1})
        self.fc2 = nn.Linear({h1}, {h2})
        # Output layer, 10 units - one for each digit
        self.fc3 = nn.Linear({h2}, 10)

    def forward(self, x):
        \"\"\" Forward pass through the network, returns the output probabilities \"\"\"
        x = self.fc1(x)
        x = F.relu(x)
        x = self.fc2(x)
        x = F.relu(x)
        x = self.fc3(x)
        x = F.softmax(x, dim=1)
        return x

torch.manual_seed({v.seed})
model = Network()
model"""


def _init(v: LessonValues) -> str:
    return f"""print(model.fc1.weight)
print(model.fc1.bias)

# Set biases to all zeros
print(model.fc1.bias.data.fill_(0))
# sample from random normal with standard dev = {v.std:g}
print(model.fc1.weight.data.normal_(std={v.std!r}))"""


def _pixel_picture(namespace: dict, v: LessonValues):
    """Step 3's image as numbers: the window across its stroke that a projector can show at body size."""
    return plots.pixel_values(namespace["images"][v.index], decimals=1, window=PIXEL_WINDOW, beside=False,
                              height=640, name=f"images[{v.index}],")


def _fc1_picture(namespace: dict, v: LessonValues, shown: int = 32):
    """Step 12's fc1 weights as what they are to the network: one 28×28 image per hidden unit."""
    weight = namespace["model"].fc1.weight
    return plots.weight_images(weight, max_units=shown, columns=4, shared_scale=True,
                               title=f"model.fc1.weight: {min(shown, len(weight))} of {len(weight)} units")


def _forward(v: LessonValues) -> str:
    return f"""img = images[{v.index}]            # the image of step 3: (1, 28, 28)
model.eval()                  # predicting, not training: no dropout (this network has none yet)
ps = model(img.view(1, 784))  # a batch of one flattened image: (1, 10)
print(ps)
view_classify(img, ps)"""


def _sequential(v: LessonValues) -> str:
    h1, h2 = v.hidden
    return f"""# Hyperparameters for our network
input_size = 784
hidden_sizes = [{h1}, {h2}]
output_size = 10

# Build a feed-forward network
torch.manual_seed({v.seed})
model = nn.Sequential(nn.Linear(input_size, hidden_sizes[0]),
                      nn.ReLU(),
                      nn.Linear(hidden_sizes[0], hidden_sizes[1]),
                      nn.ReLU(),
                      nn.Linear(hidden_sizes[1], output_size),
                      nn.Softmax(dim=1))
print(model)
print(model[0])

# The same, each operation named
from collections import OrderedDict

torch.manual_seed({v.seed})
model = nn.Sequential(OrderedDict([
                      ('fc1', nn.Linear(input_size, hidden_sizes[0])),
                      ('relu1', nn.ReLU()),
                      ('fc2', nn.Linear(hidden_sizes[0], hidden_sizes[1])),
                      ('relu2', nn.ReLU()),
                      ('output', nn.Linear(hidden_sizes[1], output_size)),
                      ('softmax', nn.Softmax(dim=1))]))
print(model)
print(model.fc1)"""


STEPS: tuple[Step, ...] = (
    Step(1, "Load MNIST", "torchvision downloads MNIST (or finds it), `ToTensor()` turns each image into "
         "numbers in [0, 1] and `Normalize((0.5,), (0.5,))` moves them to [-1, 1]; the `trainloader` "
         "hands them out in shuffled batches of 64.", _load,
         note="The lesson's `DataLoader(trainset, batch_size=64, shuffle=True)` gives other batches on "
              "every run; a seeded `generator=` makes them the same batches here, in the notebook and "
              "on the Train page.", edits=("seed",)),
    Step(2, "A batch of images and labels", "One batch: 64 images of 1 channel, 28 × 28 pixels, and "
         "their 64 labels.", _batch,
         note="`dataiter.next()` no longer works (DataLoader iterators lost `.next()` in PyTorch 1.13): "
              "use Python's `next(dataiter)`."),
    Step(3, "One image", "A digit of the batch as the network receives it: white ink on black.", _image,
         note="The lesson draws it with matplotlib's `plt.imshow(..., cmap='Greys_r')`; Plotly's "
              "`px.imshow` draws the same pixels.", edits=("index",), picture=_pixel_picture),
    Step(4, "Flatten the images", "A fully-connected network takes each image as one row of 784 numbers: "
         "the batch becomes (64, 784).", _flatten,
         note="The lesson's `images.resize_(64, 1, 784)` reshapes the batch in place, so every later use "
              "of `images` sees the change (and `resize_` may reallocate); `view` gives a new (64, 784) "
              "view of the same numbers and leaves `images` as it was."),
    Step(5, "A network from tensors", "784 inputs, a hidden layer of sigmoid units, 10 outputs: weights "
         "and biases drawn with `torch.randn`, each layer a matrix product plus a bias.", _tensors,
         note="The lesson's first version also passed the output through the sigmoid; squashed into "
              "(0, 1), the 10 scores can no longer differ much and the softmax after them gives nearly "
              "equal probabilities (at most e ≈ 2.7 times apart). The scores go to the softmax as they are.",
         edits=("n_hidden", "seed")),
    Step(6, "The shapes", "`torch.mm(inputs, W1)` needs the inputs' 784 columns to match W1's 784 rows; "
         "B1's (1, n_hidden) is added to every row of the batch (broadcasting).", _shapes),
    Step(7, "Softmax: scores to probabilities", "The softmax turns each row of 10 scores into 10 "
         "probabilities that sum to 1.", _softmax,
         note="The lesson's `torch.exp(x) / torch.sum(torch.exp(x), dim=1).view(-1, 1)` overflows: in "
              "float32 `exp` of a score above about 88 is `inf`, and `inf / inf` is `nan`. Subtracting "
              "each row's maximum first gives the same probabilities and keeps `exp` at most 1."),
    Step(8, "The same network as an nn.Module", "`nn.Linear` holds a layer's weights and bias; the class "
         "names each operation, and `forward` chains them.", _module),
    Step(9, "With torch.nn.functional", "The activations as functions: only the layers with weights stay "
         "modules.", _functional,
         note="The lesson's `F.sigmoid` printed a deprecation warning from PyTorch 0.4.1 on, telling "
              "to use `torch.sigmoid`; today it is `torch.sigmoid` under another name, so the code "
              "calls `torch.sigmoid` itself."),
    Step(10, "Activation functions", "Any non-linear function can be an activation; sigmoid, tanh and "
         "ReLU are the usual ones. ReLU is the most used for hidden layers.", _activations),
    Step(11, "A deeper network with ReLU", "784 inputs, two hidden layers with ReLU, 10 outputs with a "
         "softmax: layers `fc1`, `fc2`, `fc3`.", _relu, edits=("hidden", "seed")),
    Step(12, "Initial weights and biases", "`nn.Linear` draws its weights and biases from a uniform range "
         "scaled by 1/√inputs; `.data` lets us set them ourselves.", _init, edits=("std",),
         picture=_fc1_picture),
    Step(13, "A forward pass", "One image through the network: 10 class probabilities. It is untrained, "
         "so its guess means nothing yet.", _forward, edits=("index",)),
    Step(14, "nn.Sequential", "The same network without writing a class: a sequence of operations, "
         "indexed (0) to (5), or each named with an `OrderedDict`.", _sequential,
         edits=("hidden", "seed")),
)
assert len(STEPS) == N_STEPS and [s.number for s in STEPS] == list(range(1, N_STEPS + 1))


def step(number: int, part: int = 1) -> Step:
    return PARTS[part - 1].steps[number - 1]


# -- part 2: validation and overfitting (the course's next lesson, "Inference and validation") -------

TRAIN_IMAGES = 1000  # part 2 trains on this many images: a network this size learns them by heart
EPOCHS = 20  # part 2's training runs; the validation loss turns up well before the last
PATIENCE = 5  # early stopping: epochs without a lower validation loss before it stops
HEADER = "Epoch  Training loss  Validation loss  Validation accuracy"
ROW = '{e:5}  {train_loss:13.3f}  {valid_loss:15.3f}  {accuracy:19.1%}'


def _splits(v: LessonValues) -> str:
    return f"""import torch
from torch.utils.data import DataLoader, Subset, random_split
from torchvision import datasets, transforms

transform = transforms.Compose([transforms.ToTensor(),
                                transforms.{data.normalize_code('lesson')}])
# The 60,000 training images, split once: 50,000 to train on, 10,000 to validate with
fullset = datasets.MNIST({data_folder_text()!r}, download=True, train=True,
                         transform=transform)
trainset, validset = random_split(fullset, [50000, 10000],
                                  generator=torch.Generator().manual_seed({v.seed}))
# The 10,000 test images: for the final report only (step 14), never to choose
testset = datasets.MNIST({data_folder_text()!r}, download=True, train=False,
                         transform=transform)

# {TRAIN_IMAGES:,} training images, so that overfitting shows within seconds
trainsubset = Subset(trainset, range({TRAIN_IMAGES}))
trainloader = DataLoader(trainsubset, batch_size={BATCH}, shuffle=True,
                         generator=torch.Generator().manual_seed({v.seed}))
validloader = DataLoader(validset, batch_size=1000)
validbatches = list(validloader)  # the same every epoch: transformed once
print(f"training {{len(trainsubset)}} of {{len(trainset)}}, validation {{len(validset)}}, "
      f"test {{len(testset)}}")"""


def _classifier(v: LessonValues) -> str:
    return f"""from torch import nn, optim
import torch.nn.functional as F

class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 256)
        self.fc2 = nn.Linear(256, 128)
        self.fc3 = nn.Linear(128, 64)
        self.fc4 = nn.Linear(64, 10)

    def forward(self, x):
        x = x.view(x.shape[0], -1)  # flatten each image to 784 numbers
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        x = F.relu(self.fc3(x))
        return F.log_softmax(self.fc4(x), dim=1)  # log-probabilities

torch.manual_seed({v.seed})
model = Classifier()
images, labels = validbatches[0]  # 1,000 validation images
ps = torch.exp(model(images))  # exp of log-probabilities: probabilities
print(ps.shape)"""


def _topk(v: LessonValues) -> str:
    return """top_p, top_class = ps.topk(1, dim=1)  # each image's most likely class
print(top_class[:10, :])  # the first 10 images' guesses: a column"""


def _equals(v: LessonValues) -> str:
    return """equals = top_class == labels.view(*top_class.shape)  # labels as a column too
print(equals.shape)
print(equals[:10, :].view(-1))
# without .view: (1000, 1) against (1000,) broadcasts to every guess against every label
print((top_class == labels).shape)"""


def _accuracy(v: LessonValues) -> str:
    return """accuracy = torch.mean(equals.float())  # True is 1, False is 0: the share correct
print(f"Accuracy on the validation batch: {accuracy.item():.1%}")  # untrained: about one in ten"""


def _train_longer(v: LessonValues) -> str:
    return f"""criterion = nn.NLLLoss()  # the loss for log-probabilities
optimizer = optim.Adam(model.parameters(), lr=0.003)

epochs = {EPOCHS}
train_losses, valid_losses = [], []
print({HEADER!r})
for e in range(1, epochs + 1):
    running_loss = 0
    for images, labels in trainloader:
        optimizer.zero_grad()
        loss = criterion(model(images), labels)
        loss.backward()
        optimizer.step()
        running_loss += loss.item() * len(images)

    valid_loss = correct = 0
    with torch.no_grad():  # validation: no gradients needed
        for images, labels in validbatches:
            log_ps = model(images)
            valid_loss += criterion(log_ps, labels).item() * len(images)
            top_p, top_class = log_ps.topk(1, dim=1)
            correct += (top_class == labels.view(*top_class.shape)).sum().item()

    train_loss, valid_loss = running_loss / len(trainsubset), valid_loss / len(validset)
    accuracy = correct / len(validset)
    train_losses.append(train_loss)
    valid_losses.append(valid_loss)
    print(f"{ROW}")"""


def _loss_plot(traces: str, printed: str) -> str:
    return f"""import plotly.graph_objects as go

epoch = list(range(1, epochs + 1))
fig = go.Figure()
{traces}
fig.update_layout(xaxis_title="epoch", yaxis_title="loss",
                  legend=dict(x=1, y=1, xanchor="right"))  # top right: empty
{printed}
fig"""


def _curves(train: str, valid: str, name: str, color: str) -> str:
    """A run's training loss (solid) and validation loss (dashed), in one colour."""
    return f"""fig.add_scatter(x=epoch, y={train}, name="training{name}",
                line_color="{color}")
fig.add_scatter(x=epoch, y={valid}, name="validation{name}",
                line_color="{color}", line_dash="dash")"""


def _overfitting(v: LessonValues) -> str:
    return _loss_plot(
        _curves("train_losses", "valid_losses", "", "royalblue"),
        """best = valid_losses.index(min(valid_losses)) + 1
print(f"Lowest validation loss: {min(valid_losses):.3f}, at epoch {best}")
print(f"At epoch {epochs}: validation {valid_losses[-1]:.3f}, "
      f"training {train_losses[-1]:.3f}")""")


def _dropout(v: LessonValues) -> str:
    return f"""class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 256)
        self.fc2 = nn.Linear(256, 128)
        self.fc3 = nn.Linear(128, 64)
        self.fc4 = nn.Linear(64, 10)
        # Dropout module with 0.2 drop probability
        self.dropout = nn.Dropout(p=0.2)

    def forward(self, x):
        x = x.view(x.shape[0], -1)
        # Now with dropout
        x = self.dropout(F.relu(self.fc1(x)))
        x = self.dropout(F.relu(self.fc2(x)))
        x = self.dropout(F.relu(self.fc3(x)))
        # output so no dropout here
        return F.log_softmax(self.fc4(x), dim=1)

torch.manual_seed({v.seed})
model = Classifier()
model"""


def _eval(v: LessonValues) -> str:
    return """img = validbatches[0][0][:1]  # one validation image: a batch of one
print(model.training)  # a new module is in training mode
with torch.no_grad():
    print(torch.equal(model(img), model(img)))  # each pass drops other units

model.eval()  # evaluation mode: dropout keeps every unit
print(model.training)
with torch.no_grad():
    print(torch.equal(model(img), model(img)))

model.train()  # back to training mode, to train
print(model.training)"""


def _train_dropout(v: LessonValues) -> str:
    return f"""def training_pass(model, optimizer):
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
    \"\"\"Validation loss and accuracy with dropout off, then back to training mode.\"\"\"
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

no_dropout = train_losses, valid_losses  # step 6's, to compare
optimizer = optim.Adam(model.parameters(), lr=0.003)
train_losses, valid_losses = [], []
print({HEADER!r})
for e in range(1, epochs + 1):
    train_loss = training_pass(model, optimizer)
    valid_loss, accuracy = validation_pass(model)
    train_losses.append(train_loss)
    valid_losses.append(valid_loss)
    print(f"{ROW}")"""


def _compare(v: LessonValues) -> str:
    return _loss_plot(
        _curves("no_dropout[0]", "no_dropout[1]", "", "royalblue") + "\n"
        + _curves("train_losses", "valid_losses", ", dropout", "crimson"),
        """for name, (train, valid) in [("without dropout", no_dropout),
                              ("with dropout", (train_losses, valid_losses))]:
    print(f"{name:<15}  at epoch {epochs}: training {train[-1]:.3f}, "
          f"validation {valid[-1]:.3f}")""")


def _early_stopping(v: LessonValues) -> str:
    return f"""import copy

patience = {PATIENCE}  # epochs without a lower validation loss before stopping
torch.manual_seed({v.seed})
model = Classifier()
optimizer = optim.Adam(model.parameters(), lr=0.003)
best_loss, best_epoch = float("inf"), 0
print({HEADER!r})
for e in range(1, 2 * epochs + 1):
    train_loss = training_pass(model, optimizer)
    valid_loss, accuracy = validation_pass(model)
    if valid_loss < best_loss:  # the best so far: keep a copy of its weights
        best_loss, best_epoch = valid_loss, e
        best_state = copy.deepcopy(model.state_dict())
    mark = "  best" if best_epoch == e else ""
    print(f"{ROW}{{mark}}")
    if e - best_epoch == patience:
        print(f"No lower validation loss for {{patience}} epochs: stopping")
        break
model.load_state_dict(best_state)
print(f"Keeping epoch {{best_epoch}}'s weights: validation loss {{best_loss:.3f}}")"""


def _predict(v: LessonValues) -> str:
    return """model.eval()  # dropout off: the same probabilities every time
images, labels = validbatches[0]
img = images[0]
with torch.no_grad():
    output = model(img.view(1, 784))
ps = torch.exp(output)
print(ps)
view_classify(img, ps)"""


def _test(v: LessonValues) -> str:
    return """valid_loss, valid_accuracy = validation_pass(model)
testloader = DataLoader(testset, batch_size=1000)
model.eval()
correct = 0
with torch.no_grad():
    for images, labels in testloader:
        top_p, top_class = model(images).topk(1, dim=1)
        correct += (top_class == labels.view(*top_class.shape)).sum().item()
print(f"Validation accuracy (chose the epoch): {valid_accuracy:.1%}")
print(f"Test accuracy (held out, not used to choose): {correct / len(testset):.1%}")"""


VALIDATION_STEPS: tuple[Step, ...] = (
    Step(1, "Training, validation and test sets", "The 60,000 training images split once, seeded: "
         "50,000 to train on and 10,000 to **validate** with, to choose by (when to stop, which network). "
         f"The 10,000 test images wait for the final report. To see overfitting within seconds, the "
         f"network trains on only the first {TRAIN_IMAGES:,} training images.", _splits,
         note="The course validates on the test set (`testloader`, \"Test Loss\") and chooses by it; "
              "then the test set no longer tells how the network does on images nothing was chosen "
              "by. Here the validation images come out of the training images, and the test set is "
              "used once, at the end (step 14). The course uses Fashion-MNIST; this is MNIST.",
         edits=("seed",)),
    Step(2, "The course's network, untrained", "784-256-128-64-10 with ReLU; its output is "
         "`log_softmax`, the log of the probabilities, so `torch.exp` gives the probabilities: one row "
         "of 10 per image of a validation batch of 1,000. (Part 1's networks end in a softmax: `exp` "
         "of their output would not be probabilities.)", _classifier),
    Step(3, "The most likely class: topk", "`ps.topk(1, dim=1)` gives each row's highest probability "
         "and its class: two (1000, 1) columns.", _topk),
    Step(4, "Right or wrong", "`equals` compares each guess with its label: True where the network "
         "is right.", _equals),
    Step(5, "Accuracy", "The share of guesses that are right: the mean of `equals` as numbers. The "
         "network is untrained, so about 10%.", _accuracy,
         note="The course's `torch.mean(equals.type(torch.FloatTensor))` always makes a CPU tensor: "
              "on a GPU it copies `equals` to the CPU first. `equals.float()` keeps it where it is."),
    Step(6, "Train longer, validate every epoch", f"{EPOCHS} epochs on the {TRAIN_IMAGES:,} images; "
         "after each, one pass over the 10,000 validation images without gradients. The training loss "
         "keeps falling; the validation loss falls for a few epochs, then turns up (it jumps from epoch to "
         "epoch: few images, small batches).", _train_longer,
         note="The course divides the summed batch losses by the number of batches; weighting each "
              "batch's mean loss by its size gives the mean over the images even when the last "
              "batch is smaller."),
    Step(7, "Overfitting", "Training loss (solid) and validation loss (dashed): after the lowest "
         "validation loss, the network learns its training images by heart and does worse on new "
         "ones.", _overfitting),
    Step(8, "Dropout", "`nn.Dropout(p=0.2)` zeroes each hidden unit with probability 0.2 in every "
         "training pass (and scales the others by 1/0.8), so no unit can count on another.", _dropout),
    Step(9, "model.eval(): dropout off to predict", "In training mode two passes of the same image "
         "give different outputs; `model.eval()` turns dropout off, so they are identical. "
         "`model.train()` turns it back on.", _eval),
    Step(10, "Train with dropout", "The same training, with the validation pass in evaluation mode "
         "(`model.eval()`, `torch.no_grad()`) and `model.train()` after it.", _train_dropout),
    Step(11, "With and without dropout", "Dropout keeps the training loss higher and the validation "
         "loss closer to it: the gap between them is narrower.", _compare),
    Step(12, "Early stopping", f"Stop when the validation loss has not been lower for {PATIENCE} "
         f"epochs (at most {2 * EPOCHS}), and keep the weights of the epoch where it was lowest: a copy "
         "(`copy.deepcopy`), since `model.state_dict()` holds the very tensors that go on training.",
         _early_stopping),
    Step(13, "A prediction in evaluation mode", "The kept network's probabilities for one validation "
         "image, with dropout off.", _predict,
         note="The course calls `model.forward(img)`; calling `model(img)` runs the same forward pass "
              "and PyTorch's hooks with it."),
    Step(14, "The test set, once", "The test images, used once at the end: the accuracy to report. "
         "Nothing was chosen by them, so it says how the network does on digits it has never met.",
         _test),
)


@dataclass(frozen=True)
class Part:
    """One part of the lesson: its steps, and the LessonValues its code reads."""

    number: int
    title: str
    steps: tuple[Step, ...]
    reads: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"Part {self.number}: {self.title}"

    def values(self, values: LessonValues) -> LessonValues:
        """`values` with only what this part reads (the rest at their defaults): one cache entry
        per different output."""
        return replace(DEFAULT, **{name: getattr(values, name) for name in self.reads})


PARTS: tuple[Part, ...] = (
    Part(1, "Neural networks in PyTorch", STEPS, ("n_hidden", "hidden", "seed", "std", "index")),
    Part(2, "Validation and overfitting", VALIDATION_STEPS, ("seed",)),
)
assert len(PARTS) == N_PARTS and all(
    [s.number for s in p.steps] == list(range(1, len(p.steps) + 1)) for p in PARTS)


# -- running the steps ----------------------------------------------------------------------------

@dataclass
class Output:
    """What one step gave: printed text, its last expression's value (repr, or a figure)."""

    printed: str = ""
    result: str | None = None  # the repr of the last expression, as Jupyter shows it (Out[n])
    figure: object | None = None  # a Plotly figure, the last expression's value
    picture: object | None = None  # a Plotly figure of the step's results (Step.picture)
    namespace: dict = field(default_factory=dict, repr=False)  # after the step (the last step's only)

    @property
    def text(self) -> str:
        """Everything shown as text: what was printed, then the last expression's repr."""
        return "\n".join(t for t in (self.printed.rstrip("\n"), self.result) if t)


# The steps seed torch's global RNG (torch.manual_seed) as the lesson does: one lesson runs at a time,
# so two visitors' steps never draw from it in between each other's.
_GLOBAL_RNG = threading.Lock()


def _run_cell(source: str, namespace: dict) -> Output:
    """Runs a cell as Jupyter does: every statement, then shows the last one's value if it is an
    expression (and not None)."""
    out = io.StringIO()
    namespace["print"] = lambda *args, **kw: builtins.print(*args, **{**kw, "file": out})
    tree = ast.parse(source)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, "<lesson>", "exec"), namespace)  # noqa: S102 - the lesson's own code
    value = None if last is None else eval(compile(ast.Expression(last.value), "<lesson>", "eval"), namespace)
    result = Output(out.getvalue())
    if value is not None and hasattr(value, "to_plotly_json"):
        result.figure = value
    elif value is not None:
        result.result = repr(value)
    return result


def run(values: LessonValues = DEFAULT, upto: int | None = None, part: int = 1) -> list[Output]:
    """Every step's output of a part from step 1 to `upto` (all when None), its code run with
    `values` in one namespace."""
    namespace = {"__name__": "__lesson__", "view_classify": plots.view_classify}
    outputs = []
    with _GLOBAL_RNG:
        for s in PARTS[part - 1].steps[:upto]:
            outputs.append(_run_cell(s.source(values), namespace))
            if s.picture is not None:
                outputs[-1].picture = s.picture(namespace, values)
    namespace.pop("print", None)
    outputs[-1].namespace = namespace
    return outputs
