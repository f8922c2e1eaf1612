"""Killed with SIGKILL, no clean-up of any kind: the CLI mid-save, the server mid-training.

After each kill: no half-written model is visible, every model that was saved loads, and what had
finished is still there. (A sweep killed mid-way and resumed: tests/test_sweep_cli.py.)
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import loadgen
from mnistlab import model_files, network
from mnistlab.network import Architecture, Init

ROOT = Path(__file__).resolve().parents[1]
BIG = Architecture((2048, 1024), "relu")  # 3.7 M parameters: a 15 MB file, a save worth interrupting


def saved_model(arch: Architecture, seed: int) -> model_files.SavedModel:
    return model_files.SavedModel(network.Network(arch, Init(), seed), network.build(arch, Init(),
                                                                                     seed).state_dict())


def visible_models(folder: Path) -> dict[str, int]:
    """What the app lists in the folder, each loaded as a user's eval would: name -> seed."""
    return {name: model_files.load(name, folder).seed for name in model_files.list_models(folder)}


def temp_files(folder: Path) -> list[Path]:
    return sorted(folder.glob(f".*{model_files.TEMP_SUFFIX}"))


def cli_train(folder: Path, seed: int) -> subprocess.Popen:
    env = {**os.environ, "MNISTLAB_MODELS": str(folder)}
    return subprocess.Popen([sys.executable, "-m", "mnistlab", "train", "--hidden", "2048,1024", "--dry-run",
                             "--seed", str(seed), "--out", "big"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_the_cli_killed_mid_save_leaves_the_old_model_or_the_new_one(tmp_path):
    model_files.save(saved_model(BIG, seed=0), "big", tmp_path)
    model_files.save(saved_model(Architecture((16,)), seed=5), "small", tmp_path)
    mid_save = 0
    for attempt, delay_ms in enumerate([0, 1, 3, 8, 20, 60], start=1):
        before = visible_models(tmp_path)["big"]
        proc = cli_train(tmp_path, seed=attempt)
        saving = False
        while proc.poll() is None and not saving:  # the save has begun once its temporary file exists
            saving = any(p.name.startswith(".big.") for p in temp_files(tmp_path))
            time.sleep(0.0005)
        time.sleep(delay_ms / 1000)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        left = [p for p in temp_files(tmp_path) if p.name.startswith(".big.")]
        mid_save += bool(left)
        models = visible_models(tmp_path)  # loads each: a half-written file would fail here
        assert set(models) == {"big", "small"} and models["small"] == 5
        assert models["big"] in (before, attempt), "the model is neither the old one nor the new one"
        assert models["big"] == attempt or left, "the save had finished, yet the old model is there"
    assert mid_save >= 1, "no kill landed while the file was being written"

    # The next save clears what killed saves left, once it is old enough to be nobody's save in progress.
    leftovers = temp_files(tmp_path)
    for p in leftovers:
        os.utime(p, (time.time() - model_files.STALE_TEMP_S - 1,) * 2)
    model_files.save(saved_model(Architecture((16,)), seed=6), "small", tmp_path)
    assert not temp_files(tmp_path)
    assert visible_models(tmp_path)["small"] == 6


def test_two_saves_of_one_name_at_once_never_mix(tmp_path):
    """Each save writes its own temporary file: the survivor is one whole model, never a blend."""
    import threading

    models = [saved_model(Architecture((64,)), seed) for seed in range(6)]
    threads = [threading.Thread(target=model_files.save, args=(m, "same", tmp_path)) for m in models]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    loaded = model_files.load("same", tmp_path)
    expected = network.build(Architecture((64,)), Init(), loaded.seed).state_dict()
    assert all((loaded.state[k] == expected[k]).all() for k in expected)
    assert not temp_files(tmp_path)


async def _train_and_wait_for_progress(url: str) -> loadgen.Student:
    teacher = loadgen.Student(url, 0, [])
    await teacher.open()
    await loadgen.teacher_loop(teacher)
    deadline = time.monotonic() + 120
    while not any(a.what.startswith("training progress") and a.seconds for a in teacher.log):
        assert time.monotonic() < deadline, "the run never reported progress"
        await asyncio.sleep(0.2)
    return teacher


async def _a_student_draws(url: str) -> loadgen.Student:
    student = loadgen.Student(url, 1, [])
    await student.open()
    await student.goto("Draw")
    await student.draw(loadgen.canvas_stroke())
    await student.close()
    return student


@pytest.mark.slow
def test_the_server_killed_while_a_run_trains_restarts_with_every_saved_model(tmp_path):
    models = tmp_path / "models"
    model_files.save(saved_model(Architecture((32,)), seed=1), "lesson-a", models)
    model_files.save(saved_model(Architecture((64, 32), "tanh"), seed=2), "lesson-b", models)
    env = {"MNISTLAB_MODELS": str(models)}

    server = loadgen.Server(tmp_path / "first.log", env=env).start()
    try:
        loadgen.run(_train_and_wait_for_progress(server.url))
        server.proc.send_signal(signal.SIGKILL)  # mid-training, no clean-up of any kind
        server.proc.wait()
    finally:
        server.stop()
    assert visible_models(models) == {"lesson-a": 1, "lesson-b": 2}
    assert not temp_files(models)

    again = loadgen.Server(tmp_path / "second.log", env=env).start()
    try:
        student = loadgen.run(_a_student_draws(again.url))
    finally:
        again.stop()
    assert all(a.error is None for a in student.log), [a.error for a in student.log]
    networks = student.widget("Networks").proto
    assert {"Saved: lesson-a", "Saved: lesson-b"} <= set(networks.options)
    assert student.shows("What the network sees")
    assert "Traceback (most recent call last)" not in again.log()
