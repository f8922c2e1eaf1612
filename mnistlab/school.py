"""A school on several servers: replicas of the app behind HAProxy, sharing a database and the models folder.

Every replica gets the same MNISTLAB_DB, MNISTLAB_MODELS and Streamlit cookie secret, and trains on Ray
where MNISTLAB_RAY_ADDRESS names a cluster (each replica joins it as it starts). Replicas on several
servers share PostgreSQL; the replicas `School` starts on this one machine (the most a 2-core server
holds: one interpreter lock per replica) may share the app's SQLite file too.

A visitor's Streamlit session lives in the memory of the replica that made it: its widgets, its
Build, its runs, the images and downloads it fetches over HTTP (`/media/...`), and the session a
dropped websocket reconnects to. So HAProxy keeps each browser on one replica by a cookie it sets
on the first response (`MNISTLAB_REPLICA`), not by the client's address: a whole school reaches the
servers from one NAT address. New visitors go round-robin; a replica that stops answering
`/_stcore/health` gets no one new, and its visitors are sent to another (`option redispatch`),
where their page starts afresh.

`haproxy_config` writes the configuration (deploy/haproxy.cfg is its output for two servers);
`School` starts N replicas and HAProxy on this machine (`python -m mnistlab school`, the bench, the
tests). On real servers, deploy/ has the systemd units.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from mnistlab import db
from mnistlab.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
COOKIE = "MNISTLAB_REPLICA"  # which replica a browser stays on
HEADER = "X-Mnistlab-Replica"  # which replica answered: on every response, for the bench and for debugging
HEALTH = "/_stcore/health"
MAX_REPLICAS = 26  # named a to z


def replica_names(n: int) -> list[str]:
    if not 1 <= n <= MAX_REPLICAS:
        raise ConfigError(f"A school runs 1 to {MAX_REPLICAS} replicas; got {n}.")
    return [chr(ord("a") + i) for i in range(n)]


def haproxy_config(servers: dict[str, str], bind: str = ":80", log: str = "/dev/log local0",
                   check_every_s: float = 2) -> str:
    """HAProxy's configuration for `servers` (replica name -> host:port), listening on `bind`."""
    lines = "\n".join(f"    server {name} {address} check cookie {name}" for name, address in servers.items())
    return f"""\
# MNIST Lab: a school on several servers (mnistlab/school.py writes this; README "A school on
# several servers"). Each replica is `streamlit run app.py` with the same MNISTLAB_DB (PostgreSQL),
# MNISTLAB_MODELS (one shared folder) and STREAMLIT_SERVER_COOKIE_SECRET.

global
    maxconn 5000  # connections at once: a student holds one (its websocket)
    log {log}

defaults
    mode http
    log global
    option httplog
    option forwardfor
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    # A page is one websocket (/_stcore/stream) open for the whole lesson: once upgraded it is a
    # tunnel, idle between a student's clicks for as long as they think.
    timeout tunnel 8h
    timeout client-fin 30s
    timeout http-request 10s
    # A replica that refuses the connection (stopped, restarting) is tried again, the last time on
    # another replica: the student's page reconnects there and starts afresh instead of failing.
    retries 3
    option redispatch

frontend mnistlab
    bind {bind}
    default_backend replicas

backend replicas
    # A new visitor goes to the next replica in turn. Then the cookie keeps them there: not their
    # address, since a whole school reaches the servers from one NAT address. HAProxy sets it on the
    # first response (the page's HTML), so the websocket's upgrade request carries it; `indirect`
    # keeps it from the replica, `nocache` keeps caches from sharing a response that sets it.
    balance roundrobin
    cookie {COOKIE} insert indirect nocache httponly
    http-response set-header {HEADER} %[srv_name]
    # A replica gets visitors only while Streamlit says it is up. Patiently: a replica busy with a
    # class answers late, and one marked down loses every student on it to another replica (their
    # pages start afresh there). One that has stopped refuses at once, and is redispatched anyway.
    option httpchk GET {HEALTH}
    http-check expect status 200
    timeout check 10s
    default-server inter {check_every_s:g}s fall 3 rise 2
{lines}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_free(host: str, port: int) -> bool:
    """Whether nothing listens on `port` at `host` (HAProxy shares a port with another HAProxy
    that holds it, so it would not say so itself)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as HAProxy binds: TIME_WAIT is free
        try:
            s.bind((host or "0.0.0.0", port))
        except OSError:
            return False
    return True


def haproxy_binary() -> str:
    found = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)
    if not found:
        raise ConfigError("HAProxy is not installed: apt-get install haproxy.")
    return found


def shared_env(database: str, models: Path, cookie_secret: str) -> dict[str, str]:
    """What every replica must share: the database, the models folder, and Streamlit's cookie secret
    (a page's XSRF cookie then holds on whichever replica it reaches after a failover).

    The replicas `School` starts all run on this machine, so they may share an SQLite file (the app's
    own, in the models folder, unless `database` names another): SQLite's write-ahead log lets several
    processes of one machine read and write it (tests/test_db.py). Servers on several machines
    (deploy/) need PostgreSQL, which every one of them reaches over the network."""
    url = db.url(database or os.environ.get(db.ENV, "") or str(Path(models) / db.FILE_NAME))
    return {db.ENV: url, "MNISTLAB_MODELS": str(models), "STREAMLIT_SERVER_COOKIE_SECRET": cookie_secret}


def stop_server(proc: subprocess.Popen | None, log=None, timeout_s: float = 15) -> None:
    """Stop a server started with Popen: asked to (SIGTERM), then killed if it has not exited within
    `timeout_s`; then its log file closed. A replica, HAProxy and the bench's server stop so."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if log is not None:
        log.close()


@dataclass
class Process:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen | None = None

    def start(self) -> Process:
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=self._log,
                                     stderr=subprocess.STDOUT)
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        stop_server(self.proc, getattr(self, "_log", None))


@dataclass
class School:
    """N replicas on loopback ports and HAProxy in front of them, on this machine.

    `port` is HAProxy's (0: a free one); `url` is where students go; `replica_url(name)` reaches
    one replica directly."""

    replicas_n: int
    database: str
    models: Path
    port: int = 0
    host: str = "127.0.0.1"
    work: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="mnistlab-school-")))
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        if self.port and not port_free(self.host, self.port):
            raise ConfigError(f"Port {self.port} is taken on this machine (another MNIST Lab or another "
                              f"server): choose a free one with --port.")
        self.port = self.port or free_port()
        self.url = f"http://{'127.0.0.1' if self.host in ('0.0.0.0', '') else self.host}:{self.port}"
        secret = os.environ.get("STREAMLIT_SERVER_COOKIE_SECRET") or secrets.token_hex(32)
        shared = shared_env(self.database, self.models, secret)
        self.database = shared[db.ENV]  # the URL every replica reads, also where none was named
        self.replicas: dict[str, Process] = {}
        self.addresses: dict[str, str] = {}
        for name in replica_names(self.replicas_n):
            port = free_port()
            self.addresses[name] = f"127.0.0.1:{port}"
            argv = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                    "--server.port", str(port), "--server.address", "127.0.0.1",
                    "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"]
            self.replicas[name] = Process(name, argv, {**os.environ, **self.env, **shared},
                                          self.work / f"replica-{name}.log")
        self.config_path = self.work / "haproxy.cfg"
        self.config_path.write_text(haproxy_config(self.addresses, f"{self.host}:{self.port}",
                                                   log="stdout format raw local0", check_every_s=1))
        self.haproxy = Process("haproxy", [haproxy_binary(), "-db", "-f", str(self.config_path)],
                               dict(os.environ), self.work / "haproxy.log")

    def replica_url(self, name: str) -> str:
        return f"http://{self.addresses[name]}"

    def start(self, timeout_s: float = 180) -> School:
        check = subprocess.run([haproxy_binary(), "-c", "-q", "-f", str(self.config_path)],
                               capture_output=True, text=True)
        if check.returncode:
            raise RuntimeError(f"HAProxy refused {self.config_path}:\n{check.stdout}{check.stderr}")
        for replica in self.replicas.values():
            replica.start()
        self.haproxy.start()
        try:
            for name, replica in self.replicas.items():
                wait_healthy(self.replica_url(name), replica, timeout_s)
            for name in self.replicas:  # and HAProxy has seen each one up
                wait_healthy(self.url, self.haproxy, 30, replica=name)
        except BaseException:  # also Ctrl-C while they start: nothing is left running
            self.stop()
            raise
        return self

    def stop(self) -> None:
        self.haproxy.stop()
        for replica in self.replicas.values():
            replica.stop()


def wait_healthy(url: str, process: Process, timeout_s: float, replica: str | None = None) -> None:
    """Until `url` answers its health check; through HAProxy with `replica`, until that replica does."""
    deadline = time.monotonic() + timeout_s
    headers = {"Cookie": f"{COOKIE}={replica}"} if replica else {}
    while time.monotonic() < deadline:
        if not process.running():
            raise RuntimeError(f"{process.name} exited:\n{process.log()[-3000:]}")
        try:
            request = urllib.request.Request(url + HEALTH, headers=headers)
            with urllib.request.urlopen(request, timeout=2) as r:
                if r.status == 200 and (replica is None or r.headers.get(HEADER) == replica):
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{process.name} did not answer within {timeout_s:.0f} s:\n{process.log()[-3000:]}")


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m mnistlab school", description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=2, help="app replicas on this machine (default 2)")
    parser.add_argument("--port", type=int, default=8501, help="where browsers connect (default 8501)")
    parser.add_argument("--host", default="0.0.0.0", help="HAProxy's address (default: every interface)")
    parser.add_argument("--db", default=os.environ.get(db.ENV, ""),
                        help=f"the database the replicas share (default ${db.ENV}, else the SQLite file in "
                             f"the models folder: replicas on this one machine may share it)")
    parser.add_argument("--models", type=Path, default=None,
                        help="the shared models folder (default $MNISTLAB_MODELS or ~/.mnistlab/models)")
    parser.add_argument("--print-config", metavar="NAME=HOST:PORT", nargs="+",
                        help="only print HAProxy's configuration for these servers (e.g. a=10.0.0.11:8501)")
    args = parser.parse_args(argv)
    if args.print_config:
        servers = dict(s.split("=", 1) for s in args.print_config)
        print(haproxy_config(servers, f"{'' if args.host == '0.0.0.0' else args.host}:{args.port}"), end="")
        return 0
    from mnistlab import model_files

    def stop_on(signum, frame):  # `kill`, systemd, a closed terminal: stop as Ctrl-C does, replicas too
        raise KeyboardInterrupt

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop_on)
    try:
        school = School(args.replicas, args.db, args.models or model_files.models_dir(), args.port,
                        args.host)
    except ConfigError as e:
        print(f"mnistlab school: {e}", file=sys.stderr)
        return 1
    print(f"Starting {args.replicas} replicas and HAProxy (logs in {school.work}) ...", flush=True)
    try:
        school.start()
    except RuntimeError as e:  # a replica or HAProxy exited or did not answer: its log says why
        print(f"mnistlab school: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # stopped while starting: start() has stopped what it started
        return 130
    where = (f"; students open http://<this machine's address>:{school.port}" if args.host in ("0.0.0.0", "")
             else "")
    print(f"MNIST Lab: {args.replicas} replicas behind HAProxy at {school.url}{where}. Ctrl-C stops them.",
          flush=True)
    try:
        while school.haproxy.running() and any(r.running() for r in school.replicas.values()):
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C while they stop changes nothing
        school.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
