"""A school on several servers: two replicas of the app behind HAProxy (cookie affinity), sharing one
PostgreSQL database and one models folder. Students speak Streamlit's own protocol (bench/loadgen.py)
and, as a browser does, GET the page first (HAProxy sets its cookie there) and reconnect now and
then: each must stay on the replica it was given and find its session as it left it."""

from __future__ import annotations

import socket
import subprocess
import uuid

import pytest

import visitor
from bench import classroom, loadgen
from mnistlab import school
from mnistlab.errors import ConfigError

DEPLOY = school.ROOT / "deploy"
STUDENTS, SECONDS = 6, 15


@pytest.fixture(scope="module")
def two_replicas(postgres, tmp_path_factory):
    """Two replicas and HAProxy on free ports; the teacher's network saved once in the shared folder."""
    models = tmp_path_factory.mktemp("school-models")
    loadgen.save_teacher_model(models)
    running = school.School(2, postgres.create(f"school_{uuid.uuid4().hex[:8]}"), models,
                            work=tmp_path_factory.mktemp("school")).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def two_replicas_on_sqlite(tmp_path_factory, monkeypatch_module):
    """Two replicas on this machine sharing the app's own SQLite file, as `python -m mnistlab school`
    starts them where no database is named."""
    monkeypatch_module.delenv("MNISTLAB_DB", raising=False)
    models = tmp_path_factory.mktemp("school-sqlite-models")
    running = school.School(2, "", models, work=tmp_path_factory.mktemp("school-sqlite")).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as m:
        yield m


def test_the_deployed_config_is_what_the_launcher_writes_and_haproxy_accepts_it():
    written = school.haproxy_config({"a": "10.0.0.11:8501", "b": "10.0.0.12:8501"}, ":80")
    assert (DEPLOY / "haproxy.cfg").read_text() == written
    for line in ("balance roundrobin", f"cookie {school.COOKIE} insert indirect nocache httponly",
                 "timeout tunnel", "option redispatch", f"option httpchk GET {school.HEALTH}"):
        assert line in written
    assert "balance source" not in written  # a school behind one NAT address would all land on one
    check = subprocess.run([school.haproxy_binary(), "-c", "-f", str(DEPLOY / "haproxy.cfg")],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_replicas_on_this_machine_share_the_apps_sqlite_file_unless_told_another(tmp_path, monkeypatch):
    monkeypatch.delenv("MNISTLAB_DB", raising=False)
    env = school.shared_env("", tmp_path, "secret")
    assert env["MNISTLAB_DB"] == f"sqlite:///{tmp_path / 'mnistlab.sqlite'}"  # the app's own, in the models
    assert env["MNISTLAB_MODELS"] == str(tmp_path) and env["STREAMLIT_SERVER_COOKIE_SECRET"] == "secret"
    fresh = tmp_path / "not made yet"  # the replicas make the folder: the file is still inside it
    assert school.shared_env("", fresh, "s")["MNISTLAB_DB"] == f"sqlite:///{fresh / 'mnistlab.sqlite'}"
    named = school.shared_env(str(tmp_path / "lab.sqlite"), tmp_path, "s")["MNISTLAB_DB"]
    assert named == f"sqlite:///{tmp_path / 'lab.sqlite'}"
    url = "postgresql+psycopg://lab:pw@db.school/lab"
    assert school.shared_env(url, tmp_path, "s")["MNISTLAB_DB"] == url
    with pytest.raises(ConfigError, match="runs on SQLite .the default. or PostgreSQL"):
        school.shared_env("mysql://x/y", tmp_path, "s")


def test_a_port_already_taken_is_refused_before_anything_starts(tmp_path):
    """HAProxy would share a port with another HAProxy holding it (SO_REUSEPORT) and seem to start."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"Port {port} is taken on this machine .* with --port"):
            school.School(2, "", tmp_path, port=port)


def test_each_student_stays_on_its_replica_and_keeps_its_session(two_replicas):
    result = loadgen.run(loadgen.classroom(two_replicas.url, STUDENTS, SECONDS, think_s=(0.3, 1.0),
                                           train=False, ramp_s=1, rounds=loadgen.SCHOOL_ROUND,
                                           check=loadgen.Student.stays))
    print()
    print(loadgen.report(result))
    where = result["placement"]
    downs = [line for line in two_replicas.haproxy.log().splitlines() if " is DOWN" in line]
    assert not result["errors"], "\n".join(result["errors"] + downs)
    assert set(where["students_on"]) == {"a", "b"}, "both replicas get students"
    assert sum(where["students_on"].values()) == STUDENTS
    assert where["moved"] == 0 and where["cookie_matches_replica"] == STUDENTS, downs
    assert where["one_session"] == STUDENTS and where["reconnects"] >= STUDENTS, \
        "every student reconnected and its replica resumed its session"
    # Both replicas predict with the network saved once in the shared folder.
    assert {"draw a stroke", "click Next batch", "set fc1 units"} <= set(result["by_action"])
    for name, replica in two_replicas.replicas.items():
        assert "Traceback (most recent call last)" not in replica.log(), name


@pytest.mark.parametrize("database", ["two_replicas", "two_replicas_on_sqlite"])
def test_students_of_a_class_on_either_replica_see_it_and_no_other(database, request):
    """Three classes made in the shared database (PostgreSQL, then the app's SQLite file), six students
    opening the app in turn (round-robin: each class gets one on a and one on b): each joins its class
    on the Class page of its replica, and after a reconnect sees its class with both its members (one
    joined on the other replica), and nothing of the other classes."""
    two_replicas = request.getfixturevalue(database)
    made = classroom.make_classes(two_replicas.database, 3)
    joined, sees = classroom.joining(made), classroom.sees_own_class(made)
    wrong = classroom.sees_own_class(made[1:] + made[:1])  # as if each had been shown the next class

    async def scenario():
        log: list[loadgen.Action] = []
        students = [loadgen.Student(two_replicas.url, i, log) for i in range(6)]
        for s in students:
            await s.open()
            await joined(s)
        seen = {}
        for s in students:
            await s.reconnect()
            await s.goto("Class")
            seen[s.number] = (s.replicas, s.cookies.get(visitor.COOKIE_PREFIX + "class"),
                              sees(s) or s.stays(), s.shows("2 students"))
            assert wrong(s), "the check tells a student shown another class's page"
            await s.close()
        return log, seen

    log, seen = loadgen.run(scenario())  # also after the browser tests, whose Playwright loop runs
    assert not [a.error for a in log if a.error]
    on = {}
    for number, (replicas, cookie, problem, both_members) in seen.items():
        assert problem is None, f"student {number}: {problem}"
        assert both_members, f"student {number} sees its class's two members"
        code = made[number % len(made)].code
        assert cookie and cookie.startswith(code + "."), "its page wrote the seat's cookie"
        on.setdefault(code, set()).add(replicas[0])
    assert any(len(replicas) == 2 for replicas in on.values()), f"a class on both replicas: {on}"
    assert classroom.class_members(two_replicas.database, made, 6)["errors"] == []


def test_a_student_whose_replica_stops_starts_afresh_on_the_other(two_replicas):
    """Runs last: it stops replica a. Its student's page reconnects through HAProxy, which sends it to
    b (`option redispatch`); b knows nothing of its session, so the page starts afresh there, with no
    error, while b's own student carries on in the session it had."""

    async def scenario():
        log: list[loadgen.Action] = []
        students = {}
        for i in range(4):  # round-robin: one of the first few lands on each replica
            s = loadgen.Student(two_replicas.url, i, log)
            await s.open()
            await s.goto("Dataset")
            await s.click("Next batch")
            students.setdefault(s.replicas[0], s)
        on_a, on_b = students["a"], students["b"]
        batch_b = on_b.batch_number()
        two_replicas.replicas["a"].stop()
        moved = await on_a.reconnect()
        stayed = await on_b.reconnect()
        for s in students.values():
            await s.close()
        return on_a, moved, on_b, stayed, batch_b

    on_a, moved, on_b, stayed, batch_b = loadgen.run(scenario())
    assert moved.error is None, moved.error
    assert on_a.replicas == ["a", "b"] and on_a.cookies[school.COOKIE] == "b"
    assert len(on_a.session_ids) == 2, "a new session on b"
    assert on_a.batch_number() is not None, "its page (Dataset) drawn again, without an error"
    assert stayed.error is None and on_b.stays() is None and on_b.batch_number() == batch_b
    assert "Traceback (most recent call last)" not in two_replicas.replicas["b"].log()
