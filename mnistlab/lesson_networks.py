"""Part 1 of the lesson, "Neural networks in PyTorch": its 14 steps, from loading MNIST to `nn.Sequential`.

Each step's code is a function of the visitor's `LessonValues`; `lesson.run` runs them in order in one
namespace, as Jupyter runs a notebook's cells.
"""

from __future__ import annotations

from mnistlab import data, plots
from mnistlab.lesson_step import BATCH, LessonValues, Step, data_folder_text

PIXEL_WINDOW = 8  # step 3's numbers: 8 of "-0.6" fit a projector's figure column at body size (1280 wide)


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
    return """for name, tensor in [("images", images), ("inputs", inputs),
                     ("W1", W1), ("W2", W2), ("B1", B1), ("B2", B2),
                     ("hidden", hidden), ("output", output)]:
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
curves = {"sigmoid": torch.sigmoid(x), "tanh": torch.tanh(x),
          "ReLU": torch.relu(x)}
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
# predicting, not training: no dropout (this network has none yet)
model.eval()
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
