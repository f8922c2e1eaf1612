"""What was made before a network became a list of layers opens and scores exactly as it did.

The fixtures were made on main at 5cfd58d (the last commit before the layer list) by
tests/fixtures/make_before_layers.py: three trained model files (dropout per layer and batch norm;
Fashion-MNIST; tanh/sigmoid with normal(std) init and zero biases), a sweeps database with one
finished trial, and before-layers.json: what those, and Build links, Explore links and sweep settings
meant then. "Exactly": the same probabilities bit for bit, the same accuracies, the same notices
and messages word for word, the same sweep ids and trial keys, the same architecture dicts.
"""

import json
import re
import shutil
import struct
from pathlib import Path

import pytest
import torch

from mnistlab import data, model_files, share, sweep, sweep_db, sweep_run
from mnistlab.dataset import FASHION
from mnistlab.errors import LabError

FIXTURES = Path(__file__).parent / "fixtures"
BEFORE = json.loads((FIXTURES / "before-layers.json").read_text())
MODELS = BEFORE["models"]


@pytest.fixture(scope="module")
def fashion_test_split():
    return data.load_split(train=False, dataset=FASHION)


@pytest.fixture
def test_split_of(test_split, fashion_test_split):
    return {"mnist": test_split, "fashion": fashion_test_split}.__getitem__


def outcome(f, *args):
    """f's value and None, or None and the message of the app's error it raised."""
    try:
        return f(*args), None
    except LabError as e:
        return None, str(e)


def metadata(content: bytes) -> dict:
    """The description a model file's header holds (its "mnistlab" metadata)."""
    n = struct.unpack("<Q", content[:8])[0]
    return json.loads(json.loads(content[8:8 + n])["__metadata__"]["mnistlab"])


# -- model files -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", MODELS)
def test_a_model_file_saved_before_opens_as_the_same_network(name):
    saved = model_files.load_file(FIXTURES / MODELS[name]["file"])
    then = MODELS[name]
    assert saved.arch.to_dict() == then["arch"]
    assert saved.init.to_dict() == then["init"]
    assert saved.seed == then["seed"]
    assert saved.config.to_dict() == then["config"]
    assert saved.metrics == then["metrics"]
    assert saved.arch.n_parameters == then["n_parameters"]
    assert (saved.arch.label(), saved.label()) == (then["arch_label"], then["label"])


@pytest.mark.parametrize("name", MODELS)
def test_a_model_file_saved_before_gives_the_same_probabilities_bit_for_bit(name, test_split_of):
    saved = model_files.load_file(FIXTURES / MODELS[name]["file"])
    x = test_split_of(saved.dataset.name).normalized(slice(0, 8), normalization=saved.normalization)
    with torch.no_grad():
        probs = saved.model()(x.flatten(1))
    assert torch.equal(probs, torch.tensor(MODELS[name]["probabilities_first8"]))


@pytest.mark.parametrize("name", MODELS)
def test_a_model_file_saved_before_scores_the_same_on_the_whole_test_split(name, test_split_of):
    saved = model_files.load_file(FIXTURES / MODELS[name]["file"])
    run = model_files.as_run(saved, test_split_of(saved.dataset.name))
    assert run.evaluation.accuracy == MODELS[name]["test_accuracy"] == MODELS[name]["loaded_test_accuracy"]


@pytest.mark.parametrize("name", MODELS)
def test_a_model_file_saved_before_is_saved_again_as_it_was(name):
    """Saved again, the file describes the same network and holds the same weights under the same names:
    a file the old code could open."""
    content = (FIXTURES / MODELS[name]["file"]).read_bytes()
    again = model_files.to_bytes(model_files.from_bytes(content))
    old, new = metadata(content), metadata(again)
    assert {k: new[k] for k in old} == old
    reloaded = model_files.from_bytes(again)
    original = model_files.from_bytes(content)
    assert reloaded.state.keys() == original.state.keys()
    assert all(torch.equal(reloaded.state[k], original.state[k]) for k in original.state)


# -- Build links -------------------------------------------------------------------------------

def _build_cases():
    for case in BEFORE["build"]:
        yield pytest.param(case, id="&".join(f"{k}={v[:12]}" for k, v in case["params"].items()))


# The one deliberate change: a link's `act` is named where its `hidden` was not used, right after
# `hidden`'s notice (before, a bad `hidden` took a bad or unused `act` with it without a word).
ACT_NAMED_TOO = {
    "bogus": "Link value act='bogus' was not used: Hidden layer 1 activation must be one of sigmoid, tanh, "
             "relu; got 'bogus'. Using relu.",
    "tanh": "Link value act='tanh' was not used: it goes with hidden='', which was not used. Using relu.",
}


def written_now(message: str | None) -> str | None:
    """A message as written since 2026-12-07, the other deliberate change: a range's bounds with
    thousands separators ("from 1 to 2,048"), the values the link gave still as they were."""
    if message is None:
        return None
    return re.sub(r"(from|to) (\d{4,})", lambda m: f"{m[1]} {int(m[2]):,}", message)


def notices_now(case: dict) -> list[str]:
    """The notices a link gave before, with the deliberate changes above."""
    then = [written_now(n) for n in case["notices"]]
    if then and then[0].startswith("Link value hidden=") and case["params"].get("act") in ACT_NAMED_TOO:
        then.insert(1, ACT_NAMED_TOO[case["params"]["act"]])
    return then


@pytest.mark.parametrize("case", list(_build_cases()))
def test_a_build_link_made_before_opens_the_same_network_with_the_same_notices(case):
    net, notices = share.decode(case["params"])
    assert net.arch.to_dict() == case["arch"]
    assert net.init.to_dict() == case["init"]
    assert net.seed == case["seed"]
    assert notices == notices_now(case)
    assert net.arch.label() == case["label"]
    dataset, error = outcome(share.linked_dataset, case["params"])
    assert (dataset and dataset.name, error) == (case["dataset"], case["data_error"])
    assert share.encode(net, dataset or "mnist") == case["encoded"]  # the page's link, as it was


# -- Explore links -----------------------------------------------------------------------------

@pytest.mark.parametrize("case", BEFORE["explore"],
                         ids=lambda c: "&".join(f"{k}={v[:8]}" for k, v in c["params"].items()))
def test_an_explore_link_made_before_opens_the_same_sweep_or_the_same_message(case):
    settings, error = outcome(sweep.from_params, case["params"])
    # what changed: a sweep may now try 0 hidden layers (a CNN straight to its output), and bounds have
    # thousands separators (written_now)
    assert error == (case["error"] and written_now(case["error"].replace("from 1 to 4", "from 0 to 4")))
    dataset, data_error = outcome(share.linked_dataset, case["params"])
    assert data_error == case["data_error"]
    if settings is None:
        return
    assert settings.to_dict() == case["settings"]
    assert settings.id == case["id"]  # so its saved trials are found again
    assert [t.key for t in settings.trials()] == case["trial_keys"]
    assert same_sweep_label(settings.label(), case["label"])
    assert sweep.to_params(settings) == case["to_params"]
    on_page = settings if dataset is None else sweep.SweepSettings.from_dict(
        {**settings.to_dict(), "dataset": dataset.name})
    assert on_page.id == case["page_id"]
    assert [t.key for t in on_page.trials()] == case["page_trial_keys"]


def same_sweep_label(new: str, old: str) -> bool:
    """A label is display text: its axes and trial count as before; a setting held at other than its
    default now reads as its field writes it ("training images 5,000", once "first 5,000 training
    images"), since the sweep's settings come from the fields. A saved sweep keeps its stored label."""
    return new.split(", ")[0] == old.split(", ")[0] and new.rsplit(": ", 1)[1] == old.rsplit(": ", 1)[1]


# -- sweep settings and saved sweeps -------------------------------------------------------------

@pytest.mark.parametrize("case", BEFORE["sweeps"], ids=lambda c: c["id"])
def test_sweep_settings_given_before_have_the_same_id_and_trial_keys(case):
    settings = sweep.SweepSettings.from_dict(case["given"])
    assert settings.to_dict() == case["settings"]
    assert settings.id == case["id"]
    assert same_sweep_label(settings.label(), case["label"])
    assert [t.key for t in settings.trials()] == case["trial_keys"]
    assert [t.arch.to_dict() for t in settings.trials()] == case["archs"]
    assert sweep.SweepSettings.from_dict(case["settings"]).id == case["id"]  # as a saved sweep reads back


def test_a_sweep_saved_before_resumes_where_it_stopped_with_its_record_as_it_was(tmp_path,
                                                                                 fashion_test_split):
    path = tmp_path / "sweeps.sqlite"
    shutil.copy(FIXTURES / BEFORE["sweep_db"]["file"], path)
    db = sweep_db.SweepDatabase(path)
    saved = BEFORE["sweep_db"]
    try:
        settings = db.settings(saved["id"])
        assert settings.id == saved["id"] and settings.to_dict() == saved["settings"]
        records = db.records(saved["id"])
        assert [{k: r[k] for k in old} for r, old in zip(records, saved["records"])] == saved["records"]
        s = sweep_run.Sweep(settings, fashion_test_split, fashion_test_split, db)
        assert s.resumed == 1 and len(s.missing) == saved["n_trials"] - 1
        assert saved["finished_key"] not in {t.key for t in s.missing}
        assert path.read_bytes() == (FIXTURES / saved["file"]).read_bytes()  # the old file, as it was
    finally:
        db.close()
