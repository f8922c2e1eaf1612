"""Part 2 of the lesson, "Validation and overfitting" (the course's next lesson, "Inference and
validation"): its 14 steps, from splitting off validation images to the test set, used once.

Its code reads only the seed; it trains three small networks, so `lesson.run` takes about 15 s for it.
"""

from __future__ import annotations

from mnistlab import data
from mnistlab.lesson_step import BATCH, LessonValues, Step, data_folder_text

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
# the legend at the top right, where the curves leave room
fig.update_layout(xaxis_title="epoch", yaxis_title="loss",
                  legend=dict(x=1, y=1, xanchor="right"))
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
        """with_dropout = (train_losses, valid_losses)
for name, (train, valid) in [("without dropout", no_dropout),
                              ("with dropout", with_dropout)]:
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


STEPS: tuple[Step, ...] = (
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
