"""Ray is optional (requirements-ray.txt): the app and the CLI run without it, and choosing the ray
engine without it says how to install it, in one line.

A machine without Ray is simulated with sys.modules["ray"] = None, which makes `import ray` fail
exactly as it does when the package is missing.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import mnistlab
from mnistlab import jobs
from mnistlab.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
WITHOUT_RAY = "import sys; sys.modules['ray'] = None; "


def _python(code: str, tmp_path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MNISTLAB_MODELS": str(tmp_path)}
    env.pop("MNISTLAB_RAY_ADDRESS", None), env.pop("RAY_ADDRESS", None)
    return subprocess.run([sys.executable, "-c", WITHOUT_RAY + code], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_choosing_the_ray_engine_without_ray_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.delitem(sys.modules, "mnistlab.ray_engine", raising=False)
    monkeypatch.delattr(mnistlab, "ray_engine", raising=False)  # `from mnistlab import` reads it
    with pytest.raises(ConfigError, match=r"Ray is not installed: pip install -r requirements-ray\.txt"):
        jobs.make_engine("ray")
    assert isinstance(jobs.make_engine("local", local_slots=1), jobs.LocalEngine)


def test_the_cli_sweep_on_ray_without_ray_fails_in_one_line_not_a_traceback(tmp_path):
    done = _python("import runpy; sys.argv = ['mnistlab', 'sweep', '--engine', 'ray', '--depth', '1', "
                   "'--hidden', '16', '--epochs', '1', '--train-images', '3000']; "
                   "runpy.run_module('mnistlab', run_name='__main__')", tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [f"mnistlab: error: {jobs.RAY_MISSING}"]
    assert "Traceback" not in done.stderr


def test_every_module_the_app_and_the_cli_load_imports_without_ray(tmp_path):
    done = _python("import importlib, lab_server, lab_ui, mnistlab.plots, mnistlab.__main__; "
                   "[importlib.import_module(n) for n in lab_server.OTHER_PAGES if n[:8] == 'mnistlab']; "
                   "print('loaded', sorted(m for m in sys.modules if m.split('.')[0] == 'ray'))", tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "loaded ['ray']"  # only the None put there: nothing tried Ray


def test_a_server_given_a_ray_address_without_ray_says_so_and_starts(monkeypatch, capsys):
    import lab_server

    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setenv("MNISTLAB_RAY_ADDRESS", "ray://head:10001")
    lab_server.connect_ray()
    assert "a Ray address is set (ray://head:10001), but Ray is not installed: pip install -r " \
           "requirements-ray.txt" in capsys.readouterr().err
