"""Fixtures shared by the test files."""

import pytest
import torch
from safetensors.torch import load_file, save_file

from mnistlab import data, network, train
from mnistlab.train_config import TrainConfig

# The lesson's network on the lesson's inputs, trained with Adam 1e-3, batch 64, 5 epochs (about 3 s,
# once): 97.0% on the test set (96.1-97.0% over seeds 0-9).
TRAINED_RELU = dict(arch=network.Architecture((128, 64), ("relu", "relu")), seed=0,
                    config=TrainConfig(optimizer="adam", lr=1e-3, batch_size=64, epochs=5, batch_seed=0))


@pytest.fixture(scope="session")
def train_split():
    """MNIST's 60,000 training images, held once in memory."""
    return data.load_split(train=True)


@pytest.fixture(scope="session")
def test_split():
    """MNIST's 10,000 test images, held once in memory."""
    return data.load_split(train=False)


@pytest.fixture(scope="session")
def trained_relu(request):
    """A trained 784-128-64-10 ReLU network (eval mode, CPU), trained once and cached in .pytest_cache."""
    arch, seed, config = TRAINED_RELU["arch"], TRAINED_RELU["seed"], TRAINED_RELU["config"]
    key = f"{arch.label()}-{config.label()}-seed{seed}-torch{torch.__version__}".replace(" ", "_")
    path = request.config.cache.mkdir("mnistlab-trained") / f"{key.replace('/', '_')}.safetensors"
    model = network.build(arch, network.Init(), seed)
    try:
        model.load_state_dict(load_file(path))
        return model.eval()
    except Exception:  # not cached yet, or the cached file is damaged: train again
        pass
    train.train(model, config, data.load_split(train=True))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, path)
    return model.eval()


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
