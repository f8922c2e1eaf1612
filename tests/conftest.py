"""Fixtures shared by the test files."""

import hashlib
from pathlib import Path

import pytest
import torch
from filelock import FileLock
from safetensors.torch import load_file, save_file

import mnistlab
from mnistlab import data, network, runs, train
from mnistlab.dataset import FASHION
from mnistlab.train_config import TrainConfig

# The lesson's network on the lesson's inputs, trained with Adam 1e-3, batch 64, 5 epochs (about 3 s,
# once): 97.0% on the test set (96.1-97.0% over seeds 0-9).
TRAINED_RELU = dict(arch=network.Architecture((128, 64), ("relu", "relu")), seed=0,
                    config=TrainConfig(optimizer="adam", lr=1e-3, batch_size=64, epochs=5, batch_seed=0))
# ConvNetJS's MNIST layout (8:5, pool, 16:5, pool) with a hidden layer, batch norm and dropout, one epoch
# on 10,000 images with validation and early stopping, its dynamics recorded: 95.8% on the test set.
TRAINED_CNN = dict(arch=network.Architecture.parse("32", "relu", "0.2", True, conv="8:5,16:5"), seed=0,
                   config=TrainConfig(epochs=1, train_images=10_000, validation=2_000, early_stop=1))


@pytest.fixture(scope="session")
def train_split():
    """MNIST's 60,000 training images, held once in memory."""
    return data.load_split(train=True)


@pytest.fixture(scope="session")
def test_split():
    """MNIST's 10,000 test images, held once in memory."""
    return data.load_split(train=False)


@pytest.fixture(scope="session")
def fashion_train():
    """Fashion-MNIST's 60,000 training images, held once in memory."""
    return data.load_split(train=True, dataset=FASHION)


@pytest.fixture(scope="session")
def fashion_test():
    """Fashion-MNIST's 10,000 test images, held once in memory."""
    return data.load_split(train=False, dataset=FASHION)


@pytest.fixture(scope="session")
def splits_of(request):
    """The session's (training, test) splits of a data set, by its name ("mnist", "fashion")."""
    names = {"mnist": ("train_split", "test_split"), "fashion": ("fashion_train", "fashion_test")}
    return lambda dataset: tuple(request.getfixturevalue(n) for n in names[dataset])


@pytest.fixture(scope="session")
def trained_relu(request):
    """A trained 784-128-64-10 ReLU network (eval mode, CPU), trained once and cached in .pytest_cache."""
    arch, seed, config = TRAINED_RELU["arch"], TRAINED_RELU["seed"], TRAINED_RELU["config"]
    key = f"{arch.label()}-{config.label()}-seed{seed}-torch{torch.__version__}".replace(" ", "_")
    path = request.config.cache.mkdir("mnistlab-trained") / f"{key.replace('/', '_')}.safetensors"
    model = network.build(arch, network.Init(), seed)
    with FileLock(f"{path}.lock"):  # the suite's workers (pytest -n): one trains, the others wait and read
        try:
            model.load_state_dict(load_file(path))
            return model.eval()
        except Exception:  # not cached yet, or the cached file is damaged: train again
            pass
        train.train(model, config, request.getfixturevalue("train_split"))
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, path)
    return model.eval()


@pytest.fixture(scope="session")
def trained_cnn(request, train_split, test_split) -> runs.Run:
    """The one trained CNN of the tests (TRAINED_CNN), a whole `runs.Run` with its history and dynamics,
    trained once and cached in .pytest_cache. The cache is keyed by the core's source too: a change to
    how it trains, scores or records trains it again, so no test reads what older code made."""
    arch, seed, config = TRAINED_CNN["arch"], TRAINED_CNN["seed"], TRAINED_CNN["config"]
    core = b"".join(f.read_bytes() for f in sorted(Path(mnistlab.__file__).parent.glob("*.py")))
    digest = hashlib.sha256(core + repr(TRAINED_CNN).encode()).hexdigest()[:16]
    path = request.config.cache.mkdir("mnistlab-trained") / f"cnn-torch{torch.__version__}-{digest}.pt"
    with FileLock(f"{path}.lock"):  # the suite's workers (pytest -n): one trains, the others wait and read
        try:
            return torch.load(path, weights_only=False)
        except Exception:  # not cached yet, or the cached file is damaged: train again
            pass
        run = runs.run(network.Network(arch, network.Init(), seed), config, train_split, test_split,
                       record_dynamics=True)
        torch.save(run, path)
    return run


@pytest.fixture(scope="session")
def lesson_part():
    """A lesson part's outputs with the default values (`lesson.run(part=n)`), each part run once for
    the session, on one thread as the app's server runs it: parts 2 and 3 train two networks each.
    Tests read them (the page's, the notebook's and the presenter's tests compare against them)."""
    from mnistlab import lesson

    done = {}

    def outputs(part: int) -> list:
        if part not in done:
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                done[part] = lesson.run(part=part)
            finally:
                torch.set_num_threads(threads)
        return done[part]

    return outputs


@pytest.fixture
def fresh_caches():
    """Streamlit's caches empty before and after the test, as on a server just started: one test's
    cached data set or model never shows in another's pages."""
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def navigation_mode(request, monkeypatch):
    """As on a server where app.py has run once: st.navigation, not the pages/ folder, picks pages.

    AppTest starts every run afresh in Streamlit's older pages/-folder mode, where each page file's
    entry guard reruns through app.py, and that rerun drops a button click. Tests that ask for
    `fresh_server` keep that mode, to check the guard itself.
    """
    if "fresh_server" in request.fixturenames:
        return
    from streamlit.runtime.pages_manager import PagesManager

    init = PagesManager.__init__

    def navigation_decides(self, *args, **kwargs):
        init(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", navigation_decides)


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server for the session (tests/pg.py); skipped where it is not installed."""
    from tests import pg

    if not pg.available():
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    server = pg.PostgresServer()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A fresh, empty database: an SQLite file, then a database on the real PostgreSQL server."""
    from mnistlab import db

    if request.param == "sqlite":
        yield db.url(str(tmp_path / "test.sqlite"))
    else:
        import uuid

        yield request.getfixturevalue("postgres").create(f"t_{uuid.uuid4().hex[:12]}")
    db.dispose_all()


def _tiny(arch, seed: int, split, config=None):
    """A `model_files.SavedModel` of `arch` trained for one pass over `split` (a fraction of an epoch;
    None: untrained)."""
    from mnistlab import model_files

    config = config or TrainConfig(epochs=1, batch_size=64, batch_seed=seed)
    model = network.build(arch, network.Init(), seed)
    if split is not None:
        train.train(model, config, split)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return model_files.SavedModel(network.Network(arch, network.Init(), seed), state, config)


@pytest.fixture(scope="session")
def class_models(train_split):
    """Small real networks to submit to a class challenge, trained once on a few thousand MNIST images
    (under 2 s in all): two MLPs that score differently ("mlp", "mlp2"), a small CNN ("cnn"), an MLP
    over a 50,000-parameter budget ("big", 784-128-64-10, untrained) and a Fashion-MNIST MLP
    ("fashion", untrained). Each a `model_files.SavedModel`; `model_files.to_bytes` gives its file."""
    return {
        "mlp": _tiny(network.Architecture((16,), ("relu",)), 0, train_split.first(8000)),
        "mlp2": _tiny(network.Architecture((32,), ("relu",)), 1, train_split.first(640)),
        "cnn": _tiny(network.Architecture.parse("16", "relu", conv="4:5"), 2, train_split.first(2000)),
        "big": _tiny(network.Architecture((128, 64), ("relu", "relu")), 3, None),
        "fashion": _tiny(network.Architecture((16,), ("relu",)), 4, None, TrainConfig(dataset="fashion")),
    }
