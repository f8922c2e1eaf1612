"""A classroom against one server: `python -m bench.classroom --students N`.

Each student is a real server session driven over Streamlit's own websocket protocol
(bench/loadgen.py), with no browser: they open the app, browse Dataset batches, edit Build's layer
sizes, draw on Draw (predicted by the teacher's saved network) and open Train, one step every few
seconds, while one more session trains.
Printed and written as JSON (bench/results/classroom.json): p50/p95/p99 of a widget change to that
run's `script_finished`, errors, and the server's memory.

    python -m bench.classroom --students 50             # one classroom, about a minute
    python -m bench.classroom --knee                    # more students until p95 passes 1 s
    python -m bench.classroom --browser --students 10   # the browser scenario (tests/e2e)
    python -m bench.classroom --replicas 2 --students 200  # two replicas behind HAProxy, then one

The server is started here (`streamlit run app.py`, MNISTLAB_DATA as set) unless --url names one.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import loadgen
from bench.measure import load_average, machine

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
GOAL_P95_MS = 1000
KNEE_STEPS = (10, 20, 30, 40, 50, 60, 80, 100, 120, 150, 200)


def one_classroom(url: str, students: int, seconds: float, read_rss=None, train: bool = True,
                  think_s=(2.0, 5.0), **school) -> dict:
    return loadgen.run(loadgen.classroom(url, students, seconds, think_s=think_s, train=train,
                                         sample=read_rss, **school))


def several_servers(replicas: int, students: int, seconds: float, train: bool, database: str | None,
                    joined=None, check=None) -> list[dict]:
    """The same classroom against `replicas` replicas behind HAProxy, then against one replica behind
    it: each a fresh school sharing a PostgreSQL database (a temporary cluster unless `database`)
    and one models folder. Every student reconnects once a round and must come back to its replica
    and its session (`Student.stays`), and pass `check` too after each step; `joined` runs for each
    once its app is open (e.g. joining its class, so that `check` can ask that it sees that class)."""
    from mnistlab.school import School

    cluster = None
    if database is None:
        from tests import pg  # the tests' own throwaway PostgreSQL cluster

        cluster = pg.PostgresServer()
    models = Path(tempfile.mkdtemp(prefix="mnistlab-school-models-"))
    loadgen.save_teacher_model(models)
    runs = []
    try:
        for n in (replicas, 1):
            url = database or cluster.create(f"classroom_{n}_{os.getpid()}")
            school = School(n, url, models).start()
            try:
                print(f"{students} students for {seconds:.0f} s on {n} replica(s) behind HAProxy ...",
                      flush=True)
                r = one_classroom(school.url, students, seconds, functools.partial(replicas_rss, school),
                                  train=train,
                                  rounds=loadgen.SCHOOL_ROUND, joined=joined,
                                  check=functools.partial(both, loadgen.Student.stays, check))
                for name, replica in school.replicas.items():
                    if "Traceback (most recent call last)" in replica.log():
                        r["errors"].append(f"replica {name} logged an exception (see {replica.log_path})")
            finally:
                school.stop()
            r["replicas"] = n
            print(loadgen.report(r), flush=True)
            runs.append(r)
    finally:
        if cluster:
            cluster.stop()
    return runs


def both(first, second, student) -> str | None:
    return first(student) or (second(student) if second else None)


def replicas_rss(school) -> float:
    """The replicas' resident memory together, MB."""
    return sum(loadgen.rss_mb(r.proc.pid) for r in school.replicas.values())


def school_line(r: dict) -> str:
    w, where = r["without_reconnects"], r["placement"]
    return (f"{r['replicas']} replica(s): {r['students']} students, {r['actions']} actions, "
            f"{len(r['errors'])} errors, {where['moved']} moved; "
            f"widget change p50 {w.get('p50_ms', 0):.0f} ms, p95 {w.get('p95_ms', 0):.0f} ms; "
            f"with reconnects p50 {r.get('p50_ms', 0):.0f} ms, "
            f"p95 {r.get('p95_ms', 0):.0f} ms; students on {where['students_on']}")


def browser_mode(students: int) -> int:
    """The e2e classroom: Chromium pages, so its times include the browsers on the same cores."""
    env = {**os.environ, "MNISTLAB_CLASSROOM_STUDENTS": str(students)}
    test = "tests/e2e/test_classroom.py"
    return subprocess.call([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", test],
                           cwd=ROOT, env=env)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.classroom", description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=50, help="students at once (default 50)")
    parser.add_argument("--seconds", type=float, default=60, help="how long they act (default 60)")
    parser.add_argument("--knee", action="store_true",
                        help=f"classrooms of {', '.join(map(str, KNEE_STEPS))} students until p95 > 1 s")
    parser.add_argument("--start", type=int, default=KNEE_STEPS[0],
                        help=f"with --knee, the first classroom's size (default {KNEE_STEPS[0]})")
    parser.add_argument("--no-training", action="store_true", help="nobody trains meanwhile")
    parser.add_argument("--url", help="an app already running (default: start one here)")
    parser.add_argument("--browser", action="store_true", help="Chromium pages instead (tests/e2e)")
    parser.add_argument("--replicas", type=int, default=0,
                        help="a school: this many replicas behind HAProxy sharing PostgreSQL, then one "
                             "replica with the same students (README: A school on several servers)")
    parser.add_argument("--db", help="with --replicas, the PostgreSQL URL they share (default: a "
                                     "temporary cluster started here)")
    parser.add_argument("--out", type=Path, default=RESULTS / "classroom.json",
                        help="where to write the JSON")
    args = parser.parse_args(argv)
    if not 1 <= args.students <= 500:
        parser.error("--students must be from 1 to 500")
    if args.browser:
        return browser_mode(args.students)
    if args.replicas:
        if args.out == RESULTS / "classroom.json":
            args.out = RESULTS / "school.json"
        runs = several_servers(args.replicas, args.students, args.seconds, not args.no_training, args.db)
        print()
        for r in runs:
            print(school_line(r))
        result = {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "machine": machine(),
                  "load_average": load_average(), "runs": runs}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))
        print(f"JSON: {args.out}")
        return 0 if all(not r["errors"] and not r["placement"]["moved"] for r in runs) else 1

    runs = []
    for students in ([s for s in KNEE_STEPS if s >= args.start] if args.knee else [args.students]):
        server = None
        url = args.url
        if url is None:  # a fresh server per classroom: memory and caches start alike
            models = Path(tempfile.mkdtemp(prefix="mnistlab-classroom-models-"))
            loadgen.save_teacher_model(models)  # what every student's drawing is predicted with
            log = Path(tempfile.gettempdir()) / f"mnistlab-classroom-{os.getpid()}-{students}.log"
            server = loadgen.Server(log, env={"MNISTLAB_MODELS": str(models)}).start()
            url = server.url
        try:
            print(f"{students} students for {args.seconds:.0f} s ...", flush=True)
            r = one_classroom(url, students, args.seconds, server.rss_mb if server else None,
                              train=not args.no_training)
            if server and "Traceback (most recent call last)" in server.log():
                r["errors"].append("the server logged an exception (see its log)")
        finally:
            if server:
                server.stop()
        print(loadgen.report(r), flush=True)
        runs.append(r)
        if args.knee and r.get("p95_ms", 1e9) > GOAL_P95_MS:
            break

    knee = next((r["students"] for r in runs if r.get("p95_ms", 1e9) > GOAL_P95_MS or r["errors"]), None)
    result = {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "machine": machine(),
              "load_average": load_average(), "goal_p95_ms": GOAL_P95_MS, "runs": runs, "knee_students": knee}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    if args.knee:
        fine = [r["students"] for r in runs if r.get("p95_ms", 1e9) <= GOAL_P95_MS and not r["errors"]]
        print(f"\nknee: p95 stays within 1 s up to {max(fine) if fine else 0} students"
              + (f"; at {knee} it does not" if knee else " (the most tried)"))
    print(f"JSON: {args.out}")
    return 0 if all(not r["errors"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
