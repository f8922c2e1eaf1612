"""Simulated students that speak Streamlit's own websocket protocol: a real server session each, no browser.

A browser talks to a Streamlit server over one websocket (`/_stcore/stream`): it sends `BackMsg`
protobufs (`rerun_script` with the page and every widget value it holds) and receives `ForwardMsg`s
(`new_session` when a run starts, a `delta` per element, `script_finished` when it ends). A
`Student` here does the same, so each one costs the server exactly what a browser's session costs,
and the client side costs a few milliseconds per run instead of a Chromium page.

What is timed is what a student waits for: from sending a widget change to that run's
`script_finished`. Errors are an exception box or an `st.error` on a page, a run that did not
finish within the timeout, or a socket that closed.

The Draw page's canvas is a custom component whose value the browser sends as a widget state; the
one in fixtures/canvas_stroke.json was captured from a real stroke in Chromium
(`python -m bench.loadgen --capture-canvas` records it again).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import os
import random
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path

from google.protobuf import json_format
from streamlit.proto.Alert_pb2 import Alert
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.asyncio.client import connect

from bench.measure import percentile
from mnistlab.school import COOKIE as REPLICA_COOKIE  # behind HAProxy: the replica a browser stays on
from mnistlab.school import HEADER as REPLICA_HEADER  # and the one that answered
from mnistlab.school import stop_server

ROOT = Path(__file__).resolve().parents[1]
CANVAS_FIXTURE = Path(__file__).parent / "fixtures" / "canvas_stroke.json"
RUN_TIMEOUT_S = 60.0
FINISHED = (ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY)
MAX_MESSAGE_BYTES = 64 * 2**20
KEPT_COOKIE = re.compile(r'document\.cookie = "([A-Za-z0-9_]+)=([^;"]*)((?:;[^"]*)?)"')


# -- the server ----------------------------------------------------------------------------------

def run(coro):
    """`asyncio.run(coro)`, also where this thread already runs an event loop (Playwright's sync API
    leaves one running in pytest's thread once a browser test has run): then on a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="loadgen") as pool:
        return pool.submit(asyncio.run, coro).result()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`streamlit run app.py` on a loopback port, as a teacher would start it; output to a log file.

    `command` is another command line to start it with (e.g. the README's own); the port and address
    then go in Streamlit's environment variables, leaving that command line as it is.
    """

    def __init__(self, log_path: Path, env: dict | None = None, command: list[str] | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.env = {**os.environ, **(env or {})}
        self.command = command
        self.proc: subprocess.Popen | None = None

    def start(self, timeout_s: float = 180) -> Server:
        self._log = open(self.log_path, "wb")
        command, env = self.command, {**self.env, "STREAMLIT_SERVER_PORT": str(self.port),
                                      "STREAMLIT_SERVER_ADDRESS": "127.0.0.1"}
        if command is None:
            env = self.env
            command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                       "--server.port", str(self.port), "--server.address", "127.0.0.1",
                       "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"]
        self.proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with code {self.proc.returncode}:\n"
                                   f"{self.log()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"streamlit did not answer within {timeout_s:.0f} s:\n{self.log()[-3000:]}")

    def rss_mb(self) -> float:
        return rss_mb(self.proc.pid)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        stop_server(self.proc, getattr(self, "_log", None))


def rss_mb(pid: int) -> float:
    """Resident memory of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


# -- one simulated browser -------------------------------------------------------------------------

@dataclass
class Widget:
    kind: str  # the Element field: "button", "number_input", "bidi_component", ...
    id: str
    proto: object
    fragment_id: str = ""  # the fragment it belongs to: a change reruns only that fragment


@dataclass
class Action:
    student: int
    what: str
    sent: float
    seconds: float | None = None  # None: no script_finished came
    error: str | None = None


class Student:
    """One browser tab's worth of protocol: a session, its widget values, the pages it can open."""

    def __init__(self, url: str, number: int, log: list[Action]):
        self.url, self.number, self.log = url, number, log
        self.ws = None
        self.pages: dict[str, str] = {}  # page name -> page_script_hash
        self.page_hash = ""
        self.widgets: dict[str, Widget] = {}  # label (or component name) -> widget, this page
        self.states: dict[str, WidgetState] = {}  # what this browser would send: id -> value
        self.run_ids: set[str] = set()  # script_run_ids of the runs the pending action caused
        self.seen_ids: set[str] = set()
        self._texts: dict[str, list[str]] = {}  # fragment id ("": none) -> headings, markdown, code
        self._fresh: dict[str, list[str]] | None = None  # what the fragment run under way has written
        self.errors: list[str] = []
        self.pending: asyncio.Future | None = None
        self.running = False  # a run is under way (ours, or one the server started: st.rerun)
        self.fragments: dict[str, asyncio.Task] = {}  # fragment_id -> its auto-rerun loop
        self.reader: asyncio.Task | None = None
        self.closed = False
        self.cookies: dict[str, str] = {}  # what the browser holds for this address (HAProxy's replica)
        self.replicas: list[str] = []  # the replicas that answered it, in order (behind HAProxy)
        self.session_ids: list[str] = []  # the server's session ids for it, in order
        self.last: Action | None = None  # its latest action

    async def open(self) -> None:
        await self._connect()
        await self.act("open app", self._client_state())

    async def reconnect(self) -> Action:
        """A dropped connection (or a reload), as Streamlit's own client recovers from it: the page's
        HTML again with its cookies, then the websocket naming the session it had. The server that
        holds that session resumes it (the same session id, the same state); any other starts a new one."""
        for task in self.fragments.values():
            task.cancel()
        self.fragments = {}
        if self.reader is not None:
            self.reader.cancel()
        if self.ws is not None:
            await self.ws.close()
        try:
            await self._connect()
        except Exception as e:  # no page, or no websocket: what the student sees is an error
            action = Action(self.number, "reconnect", time.monotonic(),
                            error=f"could not reconnect: {type(e).__name__}: {e}")
            self.log.append(action)
            self.last = action
            return action
        return await self.act("reconnect", self._client_state())

    async def _connect(self) -> None:
        """What a browser does to open the app: GET the page (behind HAProxy this sets the replica's
        cookie), then open the websocket with the cookies it got (HAProxy routes it by them)."""
        await asyncio.to_thread(self._get_page)
        ws_url = self.url.replace("http", "ws", 1).rstrip("/") + "/_stcore/stream"
        protocols = ["streamlit"]
        if self.session_ids:  # the second entry is an XSRF token (none here), the third the session
            protocols += ["PLACEHOLDER_AUTH_TOKEN", self.session_ids[-1]]
        cookies = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        self.ws = await connect(ws_url, subprotocols=protocols, origin=self.url,
                                additional_headers={"Cookie": cookies} if cookies else None,
                                max_size=MAX_MESSAGE_BYTES, compression=None, ping_interval=None,
                                open_timeout=RUN_TIMEOUT_S)
        self._answered_by(self.ws.response.headers.get(REPLICA_HEADER))
        self.reader = asyncio.create_task(self._read())

    def _get_page(self) -> None:
        cookies = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        request = urllib.request.Request(self.url.rstrip("/") + "/",
                                         headers={"Cookie": cookies} if cookies else {})
        with urllib.request.urlopen(request, timeout=RUN_TIMEOUT_S) as r:
            r.read()
            for header in r.headers.get_all("Set-Cookie") or []:
                jar = SimpleCookie()
                jar.load(header)
                self.cookies.update({k: m.value for k, m in jar.items()})
            self._answered_by(r.headers.get(REPLICA_HEADER))

    def _answered_by(self, replica: str | None) -> None:
        if replica and (not self.replicas or self.replicas[-1] != replica):
            self.replicas.append(replica)

    def stays(self) -> str | None:
        """What went wrong with where this student's session lives, if anything: answered by more than
        one replica, or its session restarted (a new session id: its state gone)."""
        if len(self.replicas) > 1:
            return f"moved from replica {' to '.join(self.replicas)}"
        if len(self.session_ids) > 1:
            return f"its session restarted ({len(self.session_ids)} session ids)"
        return None

    async def close(self) -> None:
        self.closed = True
        for task in self.fragments.values():
            task.cancel()
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            self.reader.cancel()

    # What the browser sends: the page, the query string, and every widget value it holds.
    def _client_state(self, fragment_id: str = "", auto: bool = False) -> BackMsg:
        msg = BackMsg()
        cs = msg.rerun_script
        cs.query_string = ""
        cs.page_script_hash = self.page_hash
        cs.fragment_id = fragment_id
        cs.is_auto_rerun = auto
        cs.context_info.timezone = "UTC"
        cs.context_info.locale = "en-US"
        cs.context_info.url = self.url + "/"
        cs.widget_states.widgets.extend(self.states.values())
        return msg

    async def act(self, what: str, msg: BackMsg, timeout: float = RUN_TIMEOUT_S) -> Action:
        """Send `msg` and wait for the end of the run it caused; the time goes into the log."""
        action = Action(self.number, what, time.monotonic())
        self.log.append(action)
        self.last = action
        if self.closed:
            action.error = "session closed"
            return action
        self.pending = asyncio.get_running_loop().create_future()
        self.errors_before = len(self.errors)
        try:
            await self.ws.send(msg.SerializeToString())
            await asyncio.wait_for(asyncio.shield(self.pending), timeout)
            action.seconds = time.monotonic() - action.sent
        except TimeoutError:
            action.error = f"no script_finished within {timeout:.0f} s"
        except Exception as e:  # the socket closed under us
            action.error = f"{type(e).__name__}: {e}"
        finally:
            self.pending = None
            for state in [s for s in self.states.values() if s.WhichOneof("value") == "trigger_value"]:
                del self.states[state.id]  # a click is sent once
        if action.error is None and len(self.errors) > self.errors_before:
            action.error = "; ".join(self.errors[self.errors_before:])
        return action

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                if isinstance(frame, bytes):
                    self._handle(ForwardMsg.FromString(frame))
        except Exception as e:
            if not self.closed:
                self.errors.append(f"socket: {type(e).__name__}: {e}")
        finally:
            if self.pending is not None and not self.pending.done():
                self.pending.set_exception(ConnectionError("the server closed the session"))

    def _handle(self, msg: ForwardMsg) -> None:
        kind = msg.WhichOneof("type")
        if kind == "new_session":
            self.running = True
            if msg.metadata.run.fragment_ids:  # a fragment's run: it redraws its own part only
                self._fresh = {}
            else:  # a full run: the page's widgets start afresh
                self._fresh = None
                self.seen_ids = set()
                self.widgets = {}
                self._texts = {}
                for task in self.fragments.values():
                    task.cancel()
                self.fragments = {}
            if msg.new_session.page_script_hash:
                self.page_hash = msg.new_session.page_script_hash
            sid = msg.new_session.initialize.session_id
            if sid and (not self.session_ids or self.session_ids[-1] != sid):
                self.session_ids.append(sid)
        elif kind == "navigation":
            self.pages = {p.page_name: p.page_script_hash for p in msg.navigation.app_pages}
            self.page_hash = msg.navigation.page_script_hash or self.page_hash
        elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
            self._element(msg.delta.new_element, msg.delta.fragment_id)
        elif kind == "auto_rerun":
            fid = msg.auto_rerun.fragment_id
            if fid not in self.fragments:
                self.fragments[fid] = asyncio.create_task(self._auto_rerun(fid, msg.auto_rerun.interval))
        elif kind == "page_not_found":
            self.errors.append(f"page not found: {msg.page_not_found.page_name}")
        elif kind == "script_finished":
            status = msg.script_finished
            if status == ForwardMsg.FINISHED_WITH_COMPILE_ERROR:
                self.errors.append("the page's script did not compile")
            if self._fresh is not None and status != ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                self._texts.update(self._fresh)  # each fragment that ran: what it wrote now, not before
                self._fresh = None
            if status != ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                self.running = False
                if not msg.metadata.run.fragment_ids and status == ForwardMsg.FINISHED_SUCCESSFULLY:
                    for wid in [w for w in self.states if w not in self.seen_ids]:
                        del self.states[wid]  # as the browser drops the values of widgets no longer shown
                if self.pending is not None and not self.pending.done():
                    self.pending.set_result(status)

    def _element(self, element, fragment_id: str = "") -> None:
        kind = element.WhichOneof("type")
        if kind == "exception":
            e = element.exception
            self.errors.append(f"exception on the page: {e.type}: {e.message}")
        elif kind == "alert" and element.alert.format == Alert.ERROR:
            self.errors.append(f"st.error: {element.alert.body[:200]}")
        elif kind == "html":
            self._keep_cookies(element.html.body)
        texts = (self._texts if self._fresh is None else self._fresh).setdefault(fragment_id, [])
        if kind in ("heading", "markdown", "alert"):
            texts.append(getattr(element, kind).body)
        elif kind == "code":
            texts.append(element.code.code_text)
        inner = getattr(element, kind, None) if kind else None
        wid = getattr(inner, "id", "") if inner is not None and hasattr(inner, "id") else ""
        if wid and isinstance(wid, str):
            self.seen_ids.add(wid)
            label = getattr(inner, "label", "") or getattr(inner, "component_name", "")
            self.widgets[label] = Widget(kind, wid, inner, fragment_id)

    def _keep_cookies(self, html: str) -> None:
        """The cookies a page's script writes (visitor.keep: the visitor's id, a class's seat), kept as
        the browser would keep them and sent from the next page load on."""
        for name, value, rest in KEPT_COOKIE.findall(html):
            if "max-age=0" in rest:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value

    async def _auto_rerun(self, fragment_id: str, interval: float) -> None:
        """A fragment's `run_every`: the browser asks for the fragment again every `interval` seconds."""
        while not self.closed:
            await asyncio.sleep(interval)
            if self.pending is None:  # one run at a time, as a browser queues them
                await self.act("training progress (fragment)", self._client_state(fragment_id, auto=True))

    # -- what a student does --------------------------------------------------------------------

    async def goto(self, page: str) -> Action:
        self.page_hash = self.pages[page]
        return await self.act(f"open {page}", self._client_state())

    def widget(self, label: str) -> Widget:
        if label not in self.widgets:
            raise LookupError(f"no widget {label!r} on this page; it has {sorted(self.widgets)}")
        return self.widgets[label]

    @property
    def texts(self) -> list[str]:
        """The headings, markdown and code the page shows now: the latest full run's, each fragment's
        from its latest run."""
        return [t for texts in self._texts.values() for t in texts]

    def shows(self, text: str) -> bool:
        """Whether the latest run's headings, markdown or code contain `text`."""
        return any(text in t for t in self.texts)

    def batch_number(self) -> int | None:
        """The Dataset page's "Batch N of M" heading, as a student reads it."""
        for t in self.texts:
            if t.startswith("Batch ") and " of " in t:
                return int(t.split()[1])
        return None

    async def click(self, label: str) -> Action:
        w = self.widget(label)
        state = WidgetState(id=w.id, trigger_value=True)
        self.states[state.id] = state
        return await self.act(f"click {label}", self._client_state(w.fragment_id))

    async def set_number(self, label: str, value: int) -> Action:
        w = self.widget(label)
        state = WidgetState(id=w.id)
        if w.proto.data_type == type(w.proto).INT:
            state.int_value = int(value)
        else:
            state.double_value = float(value)
        self.states[state.id] = state
        return await self.act(f"set {label}", self._client_state(w.fragment_id))

    async def set_text(self, label: str, value: str) -> Action:
        """Types `value` into a text input, sent (as a browser does on Enter or leaving the field) with
        every other value the page holds."""
        w = self.widget(label)
        state = WidgetState(id=w.id, string_value=value)
        self.states[state.id] = state
        return await self.act(f"type {label}", self._client_state(w.fragment_id))

    async def draw(self, stroke: WidgetState) -> Action:
        canvas = next(w for w in self.widgets.values() if w.kind == "bidi_component")
        state = WidgetState()
        state.CopyFrom(stroke)
        state.id = canvas.id
        self.states[state.id] = state
        return await self.act("draw a stroke", self._client_state(canvas.fragment_id))


TEACHER_MODEL = "teacher"
TEACHER_IMAGES = 10_000


def save_teacher_model(folder: Path) -> Path:
    """The network a teacher shows on Draw: the lesson's 784-128-64-10 ReLU, one epoch on 10,000 of
    the training images (~93% test accuracy), saved where the server lists models."""
    from mnistlab import data, model_files, network, runs
    from mnistlab.train_config import TrainConfig

    config = TrainConfig(epochs=1, train_images=TEACHER_IMAGES)
    run = runs.run(network.Network(network.Architecture(), network.Init(), 0), config, data.load_split(True),
                   data.load_split(False))
    return model_files.save(model_files.SavedModel.from_run(run), TEACHER_MODEL, folder)


def canvas_stroke() -> WidgetState:
    """The canvas's value after one stroke, as Chromium sent it (see --capture-canvas)."""
    return json_format.ParseDict(json.loads(CANVAS_FIXTURE.read_text()), WidgetState())


# -- a classroom ---------------------------------------------------------------------------------

ROUND = ["next", "next", "build", "fc1", "fc1", "draw", "stroke", "train", "dataset", "next"]


# Behind HAProxy, each round also drops the connection and reconnects, as a reload or a flaky school
# network does: the student must come back to its own replica and find its session as it left it.
SCHOOL_ROUND = [*ROUND, "reconnect"]
# A student in a class also opens the Class page each round (where a check can read its class).
CLASS_ROUND = [*SCHOOL_ROUND, "class"]

Check = Callable[[Student], "str | None"]  # what is wrong with what a student sees now, if anything


async def student_loop(student: Student, until: float, think_s: tuple[float, float], rng: random.Random,
                       stroke: WidgetState, rounds: list[str] = ROUND, check: Check | None = None) -> None:
    """Browse batches, edit Build's layer sizes, draw, open Train, back to Dataset; one step every
    few seconds, until `until`. Each step also checks what the student would see: the next batch's
    number, the new layer size in print(model), the drawing's preprocessing stages, the batch it
    had after a reconnect; and `check`, after every step (the first problem it finds is logged once)."""
    steps = rounds[rng.randrange(len(rounds)):] + rounds * 100  # students start at different places
    told: set[str] = set()
    page = "Start"  # where the app opens

    async def on(name: str) -> None:
        nonlocal page
        if page != name:
            await student.goto(name)
            page = name

    def expect(action: Action, seen: bool, what: str) -> None:
        if action.error is None and not seen:
            action.error = f"the page did not show {what}"

    for step in steps:
        await asyncio.sleep(rng.uniform(*think_s))
        if time.monotonic() > until:
            return
        try:
            if step == "next":
                await on("Dataset")
                before = student.batch_number()
                action = await student.click("Next batch")
                after = student.batch_number()
                expect(action, after is not None and after != before, f"a new batch (was batch {before})")
            elif step in ("build", "draw", "train", "dataset", "class"):
                await on({"build": "Build", "draw": "Draw", "train": "Train", "dataset": "Dataset",
                          "class": "Class"}[step])
            elif step == "fc1":
                await on("Build")
                units = rng.randrange(16, 513)
                action = await student.set_number("fc1 units", units)
                expect(action, student.shows(f"in_features=784, out_features={units}"),
                       f"fc1 with {units} units in print(model)")
            elif step == "stroke":
                await on("Draw")
                action = await student.draw(stroke)
                expect(action, student.shows("What the network sees"), "the drawing's preprocessing")
                if student.shows("No trained network yet"):
                    continue  # a server with no saved model: nothing to predict with
                expect(action, student.shows(f"{TEACHER_MODEL}: 784-128-64-10"), "a prediction")
            elif step == "reconnect":
                before = student.batch_number() if page == "Dataset" else None
                action = await student.reconnect()
                if before is not None:
                    expect(action, student.batch_number() == before,
                           f"batch {before} again (its session kept)")
        except LookupError as e:
            student.log.append(Action(student.number, step, time.monotonic(), error=str(e)))
        problem = check(student) if check else None
        if problem and problem not in told and student.last is not None:
            told.add(problem)
            student.last.error = "; ".join(filter(None, [student.last.error, problem]))


async def teacher_loop(teacher: Student) -> dict:
    """Opens Train and starts a run with its defaults; the fragment shows its progress meanwhile."""
    await teacher.goto("Train")
    started = await teacher.click("Train")
    return {"started": started.error is None}


async def keep_training(teacher: Student, until: float, every_s: float = 0.5) -> float:
    """Whenever the teacher's run has finished, train again (with the same defaults), until `until`;
    returns the share of the time a run was training (its progress fragment was live)."""
    busy = total = 0
    while time.monotonic() < until:
        if not teacher.fragments and teacher.pending is None and not teacher.running \
                and "Train" in teacher.widgets:
            await teacher.click("Train")
        await asyncio.sleep(every_s)
        total += 1
        busy += bool(teacher.fragments)
    return busy / max(total, 1)


async def classroom(url: str, students: int, seconds: float, think_s=(2.0, 5.0), train: bool = True,
                    seed: int = 0, ramp_s: float = 5.0, sample=None, rounds: list[str] = ROUND,
                    joined: Callable[[Student], Awaitable[object]] | None = None,
                    check: Check | None = None) -> dict:
    """`students` sessions acting for `seconds` while one more trains throughout (a new run as soon
    as one ends); their actions' times. `joined` runs for each student once its app is open (e.g.
    joining a class); `check` after each of its steps (e.g. `Student.stays`, or that it sees its class).
    Behind HAProxy, where each student's session lived (`placement`)."""
    log: list[Action] = []
    teacher_log: list[Action] = []
    rng = random.Random(seed)
    stroke = canvas_stroke()
    people = [Student(url, i, log) for i in range(students)]
    teacher = Student(url, -1, teacher_log)
    await teacher.open()
    if train:
        await teacher_loop(teacher)
    opened = await asyncio.gather(*(_open_later(p, rng.uniform(0, ramp_s), joined) for p in people))
    until = time.monotonic() + seconds
    stop_sampling = asyncio.Event()
    rss = asyncio.create_task(_sample(sample, stop_sampling)) if sample else None
    training = asyncio.create_task(keep_training(teacher, until)) if train else None
    await asyncio.gather(*(student_loop(p, until, think_s, random.Random(seed * 1000 + p.number), stroke,
                                        rounds, check)
                           for p, ok in zip(people, opened) if ok))
    training_share = await training if training else 0.0
    still_training = bool(teacher.fragments)
    stop_sampling.set()
    samples = await rss if rss else []
    for p in [*people, teacher]:
        await p.close()
    return {**summary(log, teacher_log, students, seconds, samples, still_training), "training": train,
            "placement": placement(people), "teacher_replicas": teacher.replicas,
            "training_share": training_share,
            "trainings_started": sum(1 for a in teacher_log if a.what == "click Train" and not a.error)}


async def _open_later(student: Student, delay: float, joined=None) -> bool:
    await asyncio.sleep(delay)
    try:
        await student.open()
        if joined is not None:
            await joined(student)
    except Exception as e:
        error = f"{type(e).__name__}: {e}"
        student.log.append(Action(student.number, "open app", time.monotonic(), error=error))
        return False
    return True


async def _sample(read, stop: asyncio.Event, every_s: float = 1.0) -> list[float]:
    values = []
    while not stop.is_set():
        values.append(read())
        try:
            await asyncio.wait_for(stop.wait(), every_s)
        except TimeoutError:
            pass
    return values


def placement(people: list[Student]) -> dict:
    """Behind HAProxy: how many students each replica answered (by the replica each one's requests
    reached: HAProxy's cookie routes them, its header names the replica), how many were answered by
    more than one, and how many kept one session id throughout (a reconnect resumed it on the
    replica that held it). Without HAProxy, every student is on replica "-"."""
    on: dict[str, int] = {}
    for p in people:
        name = p.replicas[0] if p.replicas else "-"
        on[name] = on.get(name, 0) + 1
    cookies = {p.cookies.get(REPLICA_COOKIE) for p in people} - {None}
    return {"students_on": dict(sorted(on.items())), "moved": sum(len(p.replicas) > 1 for p in people),
            "one_session": sum(len(p.session_ids) == 1 for p in people),
            "cookie_matches_replica": sum(bool(p.replicas) and p.cookies.get(REPLICA_COOKIE) == p.replicas[-1]
                                          for p in people),
            "cookies": sorted(cookies),
            "reconnects": sum(a.what == "reconnect" for a in (people[0].log if people else []))}


def summary(log: list[Action], teacher_log: list[Action], students: int, seconds: float, rss: list[float],
            still_training: bool) -> dict:
    """p50/p95/p99 of the students' waits (overall and per kind of action), errors, memory."""
    timed = [a.seconds for a in log if a.seconds is not None and a.error is None]
    by_kind: dict[str, list[float]] = {}
    for a in log:
        if a.seconds is not None and a.error is None:
            by_kind.setdefault(a.what, []).append(a.seconds)

    def stats(xs):
        return {"n": len(xs), "p50_ms": 1000 * percentile(xs, 50), "p95_ms": 1000 * percentile(xs, 95),
                "p99_ms": 1000 * percentile(xs, 99)} if xs else {"n": 0}

    errors = [f"student {a.student}, {a.what}: {a.error}" for a in [*log, *teacher_log] if a.error]
    clicks = [a.seconds for a in log if a.seconds is not None and a.error is None and a.what != "reconnect"]
    return {"students": students, "seconds": seconds, "actions": len(log), **stats(timed),
            "without_reconnects": stats(clicks),
            "by_action": {k: stats(v) for k, v in sorted(by_kind.items())},
            "errors": errors,
            "training_started": any(a.what == "click Train" and not a.error for a in teacher_log),
            "still_training_at_end": still_training,
            "teacher_progress_runs": sum(1 for a in teacher_log if a.what.startswith("training progress")),
            "rss_mb": {"start": rss[0], "peak": max(rss), "end": rss[-1]} if rss else None}


def report(r: dict) -> str:
    training = (f"one session training {r.get('training_share', 0):.0%} of the time "
                f"({r.get('trainings_started', 0)} runs)" if r.get("training", True) else "nobody training")
    lines = [f"{r['students']} students for {r['seconds']:.0f} s, {training}: "
             f"{r['actions']} actions, {len(r['errors'])} errors"]
    if r.get("n"):
        lines.append(f"  widget change -> script_finished: p50 {r['p50_ms']:.0f} ms, "
                     f"p95 {r['p95_ms']:.0f} ms, p99 {r['p99_ms']:.0f} ms")
    for what, s in r["by_action"].items():
        lines.append(f"    {what:<22} n={s['n']:<4} p50 {s['p50_ms']:6.0f}  p95 {s['p95_ms']:6.0f}  "
                     f"p99 {s['p99_ms']:6.0f} ms")
    if r["rss_mb"]:
        m = r["rss_mb"]
        lines.append(f"  server RSS: {m['start']:.0f} MB at the start, peak {m['peak']:.0f} MB, "
                     f"{m['end']:.0f} MB at the end")
    if (where := r.get("placement")) and "-" not in where["students_on"]:
        on = ", ".join(f"{n} on replica {name}" for name, n in where["students_on"].items())
        lines.append(f"  students: {on}; {where['moved']} moved to another replica, "
                     f"{where['one_session']} kept one session through {where['reconnects']} reconnects")
    lines += [f"  error: {e}" for e in r["errors"][:20]]
    return "\n".join(lines)


# -- capturing the canvas's value from a real browser ----------------------------------------------

def capture_canvas(url: str, out: Path = CANVAS_FIXTURE) -> WidgetState:
    """Draw one stroke on the Draw page in headless Chromium and keep the widget state it sends."""
    from playwright.sync_api import sync_playwright

    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    sent: list[BackMsg] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=os.environ.get("MNISTLAB_CHROMIUM", "/usr/bin/chromium"),
                                     args=args)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.on("websocket", lambda ws: ws.on(
            "framesent", lambda p: sent.append(BackMsg.FromString(p)) if isinstance(p, bytes) else None))
        page.goto(f"{url}/draw")
        canvas = page.locator("canvas.upper-canvas")
        canvas.wait_for(timeout=120_000)
        page.wait_for_timeout(2000)
        box = canvas.bounding_box()
        points = [(95, 60), (205, 60), (190, 110), (150, 190), (125, 245)]
        page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
        page.mouse.down()
        for x, y in points[1:]:
            page.mouse.move(box["x"] + x, box["y"] + y, steps=4)
        page.mouse.up()
        page.wait_for_timeout(3000)
        browser.close()
    states = [w for m in sent if m.WhichOneof("type") == "rerun_script"
              for w in m.rerun_script.widget_states.widgets if "draw_canvas" in w.id]
    if not states:
        raise RuntimeError("the browser sent no value for the canvas")
    value = WidgetState()
    value.CopyFrom(states[-1])
    value.id = ""  # the server gives each session's canvas its id; the load generator fills it in
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(json_format.MessageToDict(value), indent=1) + "\n")
    return value


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__.splitlines()[0])
    parser.add_argument("--capture-canvas", action="store_true",
                        help=f"record the canvas's value after a real stroke in Chromium to {CANVAS_FIXTURE}")
    parser.add_argument("--url", help="an app already running (default: start one)")
    args = parser.parse_args(argv)
    server = None
    url = args.url
    if url is None:
        server = Server(Path("/tmp") / f"mnistlab-loadgen-{os.getpid()}.log").start()
        url = server.url
    try:
        if args.capture_canvas:
            value = capture_canvas(url)
            print(f"captured {value.WhichOneof('value')} ({len(value.SerializeToString()):,} bytes) "
                  f"to {CANVAS_FIXTURE}")
    finally:
        if server:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
