"""Two visitors of one server: each sees only their own networks and runs; the shared data stays put."""

import hashlib

import pytest
from test_train_page import open_train, train_once, use_network

import lab_ui

pytestmark = pytest.mark.usefixtures("navigation_mode")  # see tests/conftest.py


def digest(split) -> str:
    return hashlib.sha256(split.images.numpy().tobytes() + split.labels.numpy().tobytes()).hexdigest()


def test_two_sessions_train_different_networks_and_never_see_each_others():
    alice, bob = open_train(), open_train()
    before = {train: digest(lab_ui.split(train)) for train in (True, False)}

    use_network(alice, "32", "sigmoid")
    use_network(bob, "48,16", "relu")
    alice_run = train_once(alice)
    bob_run = train_once(bob)

    assert [r.arch.label() for r in alice.session_state["runs"]] == ["784-32-10 sigmoid"]
    assert [r.arch.label() for r in bob.session_state["runs"]] == ["784-48-16-10 relu"]
    alice_build, bob_build = (at.session_state["build"].network for at in (alice, bob))
    assert alice_build.arch == alice_run.arch != bob_build.arch
    assert bob_run.arch.hidden == (48, 16)
    # Training read the server's cached MNIST and never wrote to it.
    assert {train: digest(lab_ui.split(train)) for train in (True, False)} == before
