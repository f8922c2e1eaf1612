"""A classroom against one server: `python -m bench.classroom [--students N]`.

Runs the classroom scenario of tests/e2e/test_classroom.py (N browser sessions browse, build and
draw while one trains) and prints its report: p50/p95 page-update times with and without a
training run, and the server's memory before and after. Needs Chromium, like the e2e tests.
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.classroom", description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=10, help="browser sessions at once (default 10)")
    args = parser.parse_args()
    if not 1 <= args.students <= 60:
        parser.error("--students must be from 1 to 60")
    env = {**os.environ, "MNISTLAB_CLASSROOM_STUDENTS": str(args.students)}
    test = "tests/e2e/test_classroom.py"
    return subprocess.call([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", test],
                           cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main())
