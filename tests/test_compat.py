"""Files and links made before the core became values still open as they did.

The fixtures were made on main at 827d61b by tests/fixtures/make_legacy.py: a saved model, a
sweeps database with one finished trial, Build and Explore links, and what they meant then.
"""

import json
import shutil
from pathlib import Path

import pytest
import torch

from mnistlab import model_files, share, sweep, sweep_db, sweep_run

FIXTURES = Path(__file__).parent / "fixtures"
LEGACY = json.loads((FIXTURES / "legacy.json").read_text())


def test_a_model_saved_before_loads_and_predicts_the_same(test_split):
    saved = model_files.load_file(FIXTURES / "legacy-mnist.safetensors")
    expected = LEGACY["model"]
    assert saved.arch.to_dict() == expected["arch"]
    assert saved.init.to_dict() == expected["init"]
    assert saved.seed == expected["seed"]
    x = test_split.normalized(slice(0, 8), normalization=saved.normalization)
    with torch.no_grad():
        probs = saved.model()(x.flatten(1))
    assert torch.equal(probs, torch.tensor(expected["probabilities_first8"]))


def test_a_model_saved_before_scores_the_same_on_the_test_set(test_split):
    run = model_files.as_run(model_files.load_file(FIXTURES / "legacy-mnist.safetensors"), test_split)
    assert run.evaluation.accuracy == pytest.approx(LEGACY["model"]["test_accuracy"], abs=1e-6)


@pytest.mark.parametrize("case", LEGACY["build"], ids=["valid", "bad values"])
def test_a_build_link_made_before_opens_the_same_network(case):
    state, notices = share.decode(case["params"])
    assert state.arch.to_dict() == case["arch"]
    assert state.init.to_dict() == case["init"]
    assert state.seed == case["seed"]
    # deliberately one more for the bad values (act=bogus beside hidden=0): every bad value is named,
    # where before a bad hidden hid a bad act (test_compat_layers.ACT_NAMED_TOO)
    assert len(notices) == case["notices"] + ("act" in case["params"] and case["params"]["hidden"] == "0")


@pytest.mark.parametrize("case", LEGACY["explore"], ids=["grid", "sample"])
def test_an_explore_link_made_before_opens_the_same_sweep(case):
    settings = sweep.from_params(case["params"])
    assert settings.id == case["id"]  # so its saved trials are found again
    assert [t.key for t in settings.trials()] == case["trial_keys"]


def test_a_sweep_saved_before_resumes_where_it_stopped(tmp_path, train_split, test_split):
    """The old sweeps file, imported into the app's database beside it, and left as it was."""
    db = tmp_path / "sweeps.sqlite"
    shutil.copy(FIXTURES / "legacy-sweeps.sqlite", db)
    store_ = sweep_db.SweepDatabase(db)
    saved = LEGACY["sweep_db"]
    settings = store_.settings(saved["id"])
    assert settings.id == saved["id"] and settings.to_dict() == saved["settings"]
    s = sweep_run.Sweep(settings, train_split, test_split, store_)
    assert s.resumed == 1 and len(s.missing) == saved["n_trials"] - 1
    assert saved["finished_key"] not in {t.key for t in s.missing}
    assert store_.owners(saved["id"]) == {sweep_db.BEFORE_OWNERS: None}  # everyone's, as it was then
    assert db.read_bytes() == (FIXTURES / "legacy-sweeps.sqlite").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("sweeps")) == ["sweeps.sqlite"]
