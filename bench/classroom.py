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
import re
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
CLASSES = 4  # with --replicas: classes made first, the students spread over them
KNEE_STEPS = (10, 20, 30, 40, 50, 60, 80, 100, 120, 150, 200)


def one_classroom(url: str, students: int, seconds: float, read_rss=None, train: bool = True,
                  think_s=(2.0, 5.0), **school) -> dict:
    return loadgen.run(loadgen.classroom(url, students, seconds, think_s=think_s, train=train,
                                         sample=read_rss, **school))


def several_servers(replicas: int, students: int, seconds: float, train: bool, database: str | None,
                    classes: int = CLASSES) -> list[dict]:
    """The same classroom against `replicas` replicas behind HAProxy, then against one replica behind
    it: each a fresh school sharing a PostgreSQL database (a temporary cluster unless `database`)
    and one models folder. `classes` classes are made in that database first; each student opens the
    Class page and joins one (student i the class i mod `classes`, so each class has members on every
    replica), and opens it again each round, where it must see its own class and no other's. Every
    student reconnects once a round and must come back to its replica and its session
    (`Student.stays`). Afterwards every class must hold exactly the students who joined it."""
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
                made = make_classes(url, classes) if classes else []
                print(f"{students} students in {len(made)} classes for {seconds:.0f} s on {n} replica(s) "
                      f"behind HAProxy ...", flush=True)
                r = one_classroom(school.url, students, seconds, functools.partial(replicas_rss, school),
                                  train=train,
                                  rounds=loadgen.CLASS_ROUND if made else loadgen.SCHOOL_ROUND,
                                  joined=joining(made) if made else None,
                                  check=functools.partial(both, loadgen.Student.stays,
                                                          sees_own_class(made) if made else None))
                if made:
                    r["classes"] = class_members(url, made, students)
                    r["errors"] += r["classes"].pop("errors")
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


# -- the students' classes (the Class page, through the protocol as a browser drives it) ------------

def make_classes(url: str, n: int) -> list:
    """`n` classes made in the database at `url`, as their teachers would (each NewClass: code, name, key)."""
    from mnistlab.classes import ClassStore

    store = ClassStore(url)
    try:
        return [store.create(f"Class {i + 1} of {n}, room {100 + i}") for i in range(n)]
    finally:
        store.engine.dispose()


def class_of(classes: list, student: loadgen.Student):
    return classes[student.number % len(classes)]


def handle_of(student: loadgen.Student) -> str:
    return f"pupil{student.number:03d}"


HANDLE = re.compile(r"pupil(\d{3})")


def joining(classes: list):
    """The `joined` hook: the student opens the Class page, types its class's code and a handle, and
    clicks Join, as a student in a browser does, so the replica it is on checks the code, writes the
    member to the shared database and keeps the seat (its session, and the cookie its page writes)."""

    async def joined(student: loadgen.Student) -> None:
        mine = class_of(classes, student)
        await student.goto("Class")
        await student.set_text("Class code", mine.code)
        await student.set_text("Your handle", handle_of(student))
        action = await student.click("Join")
        if action.error is None and not student.shows(f"Class {mine.code}"):
            action.error = f"did not join class {mine.code} (the Class page shows no class)"
        if action.error:
            raise RuntimeError(action.error)

    return joined


def sees_own_class(classes: list):
    """The `check` hook: on the Class page, the student sees its own class (name, code, its handle) and
    nothing of another class (its name, code, or any of its students' handles)."""

    def check(student: loadgen.Student) -> str | None:
        if not student.pages or student.page_hash != student.pages.get("Class"):
            return None
        mine = class_of(classes, student)
        for what in (mine.name, f"Class {mine.code}", handle_of(student)):
            if not student.shows(what):
                return f"the Class page does not show {what!r} (its class {mine.code})"
        for other in classes:
            if other is not mine and (student.shows(other.code) or student.shows(other.name)):
                return f"the Class page of a student of {mine.code} shows class {other.code}"
        strangers = {int(n) for t in student.texts for n in HANDLE.findall(t)}
        strangers = {n for n in strangers if classes[n % len(classes)] is not mine}
        if strangers:
            return f"the Class page of a student of {mine.code} shows others' students {sorted(strangers)}"
        return None

    return check


def class_members(url: str, classes: list, students: int) -> dict:
    """Each class's members as its teacher's board has them; an error for any student missing from its
    class or found in another (nothing lost)."""
    from mnistlab.classes import ClassStore

    store = ClassStore(url)
    errors, members = [], {}
    try:
        for i, made in enumerate(classes):
            handles = {m.handle for m in store.members(made.code, made.key)}
            expected = {f"pupil{n:03d}" for n in range(i, students, len(classes))}
            members[made.code] = len(handles)
            if handles != expected:
                errors.append(f"class {made.code}: missing {sorted(expected - handles)[:10]}, "
                              f"strangers {sorted(handles - expected)[:10]}")
    finally:
        store.engine.dispose()
    return {"members": members, "errors": errors}


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
            f"p95 {r.get('p95_ms', 0):.0f} ms; students on {where['students_on']}"
            + (f"; class members {sorted(r['classes']['members'].values())}" if r.get("classes") else ""))


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
    parser.add_argument("--db", help="with --replicas, the database they share: a PostgreSQL URL, or an "
                                     "SQLite file as `python -m mnistlab school` shares on one machine "
                                     "(default: a temporary PostgreSQL cluster started here)")
    parser.add_argument("--classes", type=int, default=CLASSES,
                        help=f"with --replicas, classes made first, each student joining one on the "
                             f"Class page (default {CLASSES}; 0: none)")
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
        runs = several_servers(args.replicas, args.students, args.seconds, not args.no_training, args.db,
                               args.classes)
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
