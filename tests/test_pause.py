"""Pause, step one batch, resume: a paused run rests between batches, each stepped batch is reported,
and resumed it ends on the very weights of a run never paused (real MNIST, a small network)."""

import re
import resource
import threading
import time

import pytest
import torch
from test_app_pages import figure_with
from test_train_page import ok, open_train, use_network

from mnistlab import jobs, network, runs, train
from mnistlab.train_config import TrainConfig

NET = network.Network(network.Architecture((32,), ("relu",)), network.Init(), 0)
# 2,000 training images in batches of 64: 32 steps an epoch; 10 validation checks an epoch, the
# first after step 3, so a stepped batch meets one
CONFIG = TrainConfig(epochs=2, batch_size=64, train_images=2000, evaluations=10)


@pytest.fixture(scope="module")
def uninterrupted(train_split, test_split):
    return runs.run(NET, CONFIG, train_split, test_split)


def paused_job(train_split, test_split, **kwargs) -> jobs.TrainingJob:
    """A job paused before it starts: it rests after its first batch, reported."""
    job = jobs.TrainingJob(NET, CONFIG, train_split, test_split, queue=jobs.Queue(1),
                           engine=jobs.LocalEngine(1), **kwargs)
    job.pause()
    job.start()
    while job.latest is None:
        assert not job.wait(0.01), job.error
    return job


def test_a_paused_run_stepped_three_times_then_resumed_equals_a_run_never_paused(train_split, test_split,
                                                                                  uninterrupted):
    job = paused_job(train_split, test_split)
    time.sleep(0.3)
    assert job.paused and job.latest.step == 1 and len(job.reports) == 1  # it rests after one batch
    for n in (2, 3, 4):
        job.step()
        assert job.latest.step == n and len(job.reports) == n  # exactly one batch, and its report
    assert [c.step for p in job.reports for c in p.validation] == [3]  # the check due after step 3
    job.resume()
    assert job.wait(60) and job.error is None, job.error
    paused = job.result
    assert not paused.history.stopped_early and paused.history.steps == 64

    # the same batches gave the same weights and the same curves, bit for bit
    assert paused.state.keys() == uninterrupted.state.keys()
    assert all(torch.equal(paused.state[k], uninterrupted.state[k]) for k in paused.state)
    for curve in ("loss", "accuracy", "epoch_loss", "validation_steps", "validation_loss",
                  "epoch_validation_loss"):
        assert getattr(paused.history, curve) == getattr(uninterrupted.history, curve), curve
    assert paused.evaluation.accuracy == uninterrupted.evaluation.accuracy
    # the extra reports are at the batches it rested after; the regular ones follow as before
    assert [p.step for p in job.reports] == [1, 2, 3, 4, 20, 32, 40, 60, 64]
    assert train.progress_curve(job.reports)[0][:4] == [n / 32 for n in (1, 2, 3, 4)]  # the live curve


def test_stop_while_paused_ends_the_run_and_keeps_what_it_learned(train_split, test_split):
    job = paused_job(train_split, test_split)
    job.step()
    job.stop()
    assert job.wait(60) and job.error is None and job.stop_reason == "stopped"
    history = job.result.history
    assert history.stopped_early and history.steps == 2
    assert not torch.equal(job.result.state["fc1.weight"], job.result.initial_state["fc1.weight"])


def test_a_forgotten_pause_ends_at_the_time_limit_and_frees_its_slot(train_split, test_split):
    job = paused_job(train_split, test_split, time_limit=1.5)
    assert not job.wait(0.5) and job.paused  # resting, holding its slot
    assert job.wait(jobs.PAUSE_POLL_S + 30) and job.stop_reason == "time limit"
    assert job.result.history.stopped_early and job.result.history.steps == 1
    assert job._queue.running == 0


def test_the_time_a_run_sat_paused_is_not_its_training_time(train_split, test_split):
    started = time.perf_counter()
    job = paused_job(train_split, test_split)
    resting = time.perf_counter()
    time.sleep(3.0)  # far longer than this small network takes to train
    job.resume()
    paused_for = time.perf_counter() - resting
    assert job.wait(60) and job.error is None, job.error
    took = time.perf_counter() - started
    # the Train page's training time: what the job took, less the pause (and less its evaluation)
    assert 0 < job.result.seconds < took - paused_for, (job.result.seconds, took, paused_for)


def test_a_paused_run_sleeps(train_split, test_split):
    job = paused_job(train_split, test_split)
    time.sleep(0.5)  # torch's threads stop spinning after their last op
    before, start = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    time.sleep(1.0)
    after, seconds = resource.getrusage(resource.RUSAGE_SELF), time.monotonic() - start
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert cpu < 0.1 * seconds, cpu  # waiting, not looping
    assert job.latest.step == 1
    job.stop()
    assert job.wait(60)


def test_stop_wakes_a_waiting_gate_at_once():
    gate, stop, out = jobs.Pause(), threading.Event(), []
    gate.pause()
    waiter = threading.Thread(target=lambda: out.append(gate.wait(stop)))
    waiter.start()
    assert gate.settle(5) and gate.resting
    stop.set()
    gate.wake()
    waiter.join(jobs.PAUSE_POLL_S / 2)  # well before its next look of its own
    assert out == [False]


def test_a_step_lets_exactly_one_batch_through_and_resume_opens_the_gate():
    gate = jobs.Pause()
    assert gate.wait() is True  # open: passes
    gate.step()
    gate.pause()
    gate.step()
    gate.step()  # two clicks: two batches
    assert gate.wait() is True and gate.wait() is True
    waiter = threading.Thread(target=gate.wait)
    waiter.start()
    assert gate.settle(5) and waiter.is_alive()  # the third waits
    gate.resume()
    waiter.join(5)
    assert not waiter.is_alive()


def test_a_ray_training_cannot_be_paused(train_split, test_split):
    class Elsewhere(jobs.LocalEngine):
        pausable = False

    job = jobs.TrainingJob(NET, CONFIG, train_split, test_split, queue=jobs.Queue(1), engine=Elsewhere(1))
    job.pause()
    assert not job.pausable and not job.paused
    ray_engine = pytest.importorskip("mnistlab.ray_engine")
    assert ray_engine.RayEngine.pausable is False


# -- the Train page ----------------------------------------------------------------------------------

def progress_text(at) -> str:
    return at.get("progress")[0].proto.text


def start_long_run(at):
    """Train a small network on batches of 8 (125,000 steps: far more than a test waits for)."""
    use_network(at, "16", "relu")
    at.slider(key="tr_epochs").set_value(20)
    at.select_slider(key="tr_batch").set_value(8)
    ok(at.button(key="tr_train").click().run())
    job = at.session_state["train_job"]
    while job.latest is None:
        assert not job.wait(0.05), job.error
    ok(at.run())
    return job


@pytest.mark.usefixtures("navigation_mode")
def test_the_train_page_pauses_steps_and_resumes_a_run():
    at = open_train()
    job = start_long_run(at)
    assert progress_text(at).startswith("Epoch 1 of 20 · step ")
    # the accuracy it shows is on the batches it trained on this epoch, and says so
    assert re.search(r" · training accuracy this epoch \d+\.\d%$", progress_text(at)), progress_text(at)
    assert not at.button(key="tr_pause").disabled and at.button(key="tr_step").disabled

    ok(at.button(key="tr_pause").click().run())
    step = job.latest.step
    assert job.held and progress_text(at).startswith(f"Paused at step {step:,} of 125,000 · epoch 1 of 20")
    assert at.button(key="tr_pause").disabled and not at.button(key="tr_resume").disabled

    ok(at.button(key="tr_step").click().run())
    assert job.latest.step == step + 1
    assert progress_text(at).startswith(f"Paused at step {step + 1:,} of 125,000")
    live = next(t for t in figure_with(at, "While it trains")["data"] if t.get("legendgroup") != "key")
    assert live["x"][-1] == (step + 1) / 6250  # the stepped batch is on the live curve

    ok(at.button(key="tr_resume").click().run())
    assert not job.paused
    while job.latest.step <= step + 1:
        assert not job.wait(0.05), job.error
    ok(at.run())
    assert progress_text(at).startswith("Epoch 1 of 20 · step ")
    ok(at.button(key="tr_stop").click().run())
    assert job.wait(60) and job.stop_reason == "stopped"


@pytest.mark.usefixtures("navigation_mode")
def test_until_the_run_rests_the_page_says_pausing_so_a_step_moves_it_one_batch_from_the_step_shown(
        monkeypatch):
    """On a busy machine the loop may still be training or reporting the batch it rests after when
    Pause stops waiting for it. Shown then as "Paused at" its last report, a step went on from the
    batch after that (N+2 where N+1 was expected): until it rests it is "Pausing", without Step."""
    reported, report = threading.Event(), jobs.TrainingJob._report

    def slow_report(job, progress):  # the batch it rests after is reported only when the test says
        if job.paused:
            assert reported.wait(60)
        return report(job, progress)

    monkeypatch.setattr(jobs.TrainingJob, "_report", slow_report)
    at = open_train()
    job = start_long_run(at)
    ok(at.button(key="tr_pause").click().run())  # Pause waits its SETTLE_S for the rest, in vain
    assert job.paused and not job.held
    shown = job.latest.step  # its last report before the one it will rest after
    assert progress_text(at).startswith(f"Pausing after this batch · epoch 1 of 20 · step {shown:,} ")
    assert at.button(key="tr_step").disabled and not at.button(key="tr_resume").disabled

    reported.set()
    assert job._gate.settle(60) and job.held
    ok(at.run())  # the live view's next redraw
    step = job.latest.step
    assert progress_text(at).startswith(f"Paused at step {step:,} of 125,000")
    ok(at.button(key="tr_step").click().run())
    assert job.latest.step == step + 1 and progress_text(at).startswith(f"Paused at step {step + 1:,} of")
    ok(at.button(key="tr_stop").click().run())
    assert job.wait(60) and job.stop_reason == "stopped"


@pytest.mark.usefixtures("navigation_mode")
def test_pause_is_off_with_a_reason_where_the_engine_cannot_pause(monkeypatch):
    class Elsewhere(jobs.LocalEngine):
        pausable = False

    monkeypatch.setitem(jobs._default, "engine", Elsewhere())
    at = open_train()
    job = start_long_run(at)
    try:
        for key in ("tr_pause", "tr_step", "tr_resume"):
            assert at.button(key=key).disabled and "Ray cluster" in at.button(key=key).help
        assert not at.button(key="tr_stop").disabled
    finally:
        job.stop()
        assert job.wait(60)
