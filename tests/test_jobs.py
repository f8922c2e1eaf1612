"""The one job queue: slots shared fairly, so a student's single run never waits behind a whole sweep."""

import os
import threading
import time

import pytest
import torch

from mnistlab import jobs, network, runs, sweep, sweep_db, sweep_run
from mnistlab.train_config import TrainConfig

SMALL = network.Architecture((16,), ("relu",))


@pytest.fixture(scope="module")
def splits(train_split, test_split):
    return train_split, test_split


def _served(queue: jobs.Queue, waiting: list[str], running: str = "x") -> list[str]:
    """Queue jobs of owners `waiting` (in that order) behind a job of `running`, then let each job
    run and end in turn: the order the owners were served in."""
    queue.acquire(running)
    order, threads = [], []
    for key in waiting:
        threads.append(threading.Thread(target=lambda k=key: (queue.acquire(k), order.append(k))))
        threads[-1].start()
        while queue.waiting < len(threads):  # arrived, in this order
            threads[-1].join(0.01)
    queue.release(running)
    for n in range(len(waiting)):
        while len(order) <= n:
            threads[0].join(0.01)
        queue.release(order[n])
    return order


def test_a_freed_slot_goes_to_the_student_not_to_the_rest_of_the_sweep():
    # a sweep's trial trains, three more are queued, then a student submits a single run
    assert _served(jobs.Queue(1), ["sweep", "sweep", "sweep", "student"], running="sweep") == \
        ["student", "sweep", "sweep", "sweep"]


def test_owners_take_turns_and_each_owners_jobs_keep_their_order():
    assert _served(jobs.Queue(1), ["a", "a", "b", "b", "c"]) == ["a", "b", "c", "a", "b"]


def test_the_owner_with_fewest_running_jobs_goes_first():
    queue = jobs.Queue(2)
    queue.acquire("sweep")  # one of the sweep's trials holds a slot beside "x"
    assert _served(queue, ["sweep", "student"])[0] == "student"


class Niceness(jobs.Job):
    """A job that notes the niceness of the thread it works in."""

    def _run(self, engine):
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="niceness per thread is Linux's")
def test_a_job_trains_at_a_lower_priority_than_the_pages_and_leaves_theirs_alone():
    """A class's clicks come before a training: its thread is niced, the server's own threads not."""
    here = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    job = Niceness(queue=jobs.Queue(1)).start()
    assert job.wait(10) and job.error is None
    assert job.result == max(here, jobs.TRAINING_NICE)  # the server runs at 0: the job at 10
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == here


def test_a_single_run_submitted_while_a_sweep_is_queued_starts_within_one_trial(splits, tmp_path):
    queue = jobs.Queue(1)
    settings = sweep.SweepSettings.of(depths=1, widths="16,24,32,48", activations="relu", seeds=1, epochs=1,
                                   train_images=5000)
    sweep_store = sweep_db.SweepDatabase(tmp_path)
    student, teacher = jobs.Owner(), jobs.Owner()
    run = sweep_run.Sweep(settings, *splits, sweep_store, owner=teacher, queue=queue,
                      engine=jobs.LocalEngine()).start()
    while queue.running == 0:  # the sweep's first trial has the only slot
        assert not run.wait(0.01), run.stop_reason
    job = jobs.TrainingJob(network.Network(SMALL, network.Init(), 0), TrainConfig(epochs=1, batch_size=600),
                           *splits, owner=student, queue=queue).start()
    assert job.wait(120) and job.error is None
    finished_before = len(run.records)
    assert finished_before <= 1  # it waited for at most the trial that was training
    assert run.wait(120) and run.error is None and len(run.records) == 4
    sweep_store.close()


@pytest.mark.slow
def test_a_training_on_a_real_ray_instance_reports_live_stops_and_equals_the_local_run(splits):
    engine = jobs.make_engine("ray")  # starts a local Ray instance (2 CPUs) for this test
    try:
        queue = jobs.Queue(engine.slots)
        config = TrainConfig(epochs=1, batch_size=500)
        job = jobs.TrainingJob(network.Network(SMALL, network.Init(), 0), config, *splits, queue=queue,
                               engine=engine).start()
        assert job.wait(180) and job.error is None, job.error
        assert [p.step for p in job.reports] == [20, 40, 60, 80, 100]  # each report came back
        assert [c.step for p in job.reports for c in p.validation] == [25, 50, 75, 100]  # and validation
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # as the Ray worker trains (and the app's server)
        try:
            local = runs.run(network.Network(SMALL, network.Init(), 0), config, *splits)
        finally:
            torch.set_num_threads(threads)
        assert all(torch.equal(job.result.state[k], local.state[k]) for k in local.state)

        slow = TrainConfig(epochs=20, batch_size=8)
        long = jobs.TrainingJob(network.Network(SMALL, network.Init(), 0), slow, *splits,
                                queue=queue, engine=engine).start()
        while not long.reports:  # training on a Ray worker, its reports arriving here
            long.wait(0.05)
        long.stop()
        assert long.wait(60) and long.stop_reason == "stopped"
        assert long.result.history.stopped_early and long.result.history.steps < 150_000
    finally:
        engine.close()


def test_a_training_job_shows_its_network_as_it_learns_then_lets_go(splits):
    config = TrainConfig(epochs=3, batch_size=64)
    job = jobs.TrainingJob(network.Network(SMALL), config, *splits, queue=jobs.Queue(1),
                           engine=jobs.LocalEngine(1)).start()
    while not job.reports and not job.done:
        time.sleep(0.01)
    snapshot = job.live_snapshot()
    assert snapshot is not None and not snapshot.training  # a copy, in eval mode, for a page to draw
    assert snapshot.fc1.weight.data_ptr() != job.live_model.fc1.weight.data_ptr()
    job.stop()
    job.wait()
    assert job.live_snapshot() is None  # done: the page shows the finished run instead
