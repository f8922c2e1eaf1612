"""A real PostgreSQL server for the tests, started by the tests themselves: Debian's `postgresql`
binaries, a cluster made with initdb in a temporary folder and run with pg_ctl, listening on a Unix
socket in that folder only. PostgreSQL refuses to run as root: as root the cluster belongs to the
`postgres` user. Skips where PostgreSQL is not installed (`.ci/run` installs it)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def _bin(name: str) -> str | None:
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


def available() -> bool:
    return all(_bin(n) for n in ("initdb", "pg_ctl"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """One cluster: `url(db)` for each database made with `create(db)`; `stop()` removes it all."""

    def __init__(self):
        self.folder = Path(tempfile.mkdtemp(prefix="mnistlab-pg-"))
        self.port = _free_port()
        self.as_root = os.geteuid() == 0
        data, log = self.folder / "data", self.folder / "log"
        if self.as_root:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run([_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                   "--no-sync"])
        self._run([_bin("pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "start",
                   "-o", f"-k {self.folder} -p {self.port} -c listen_addresses='' -c fsync=off"])

    def _run(self, argv: list[str]) -> None:
        if self.as_root:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        subprocess.run(argv, check=True, capture_output=True, cwd=self.folder)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@/{database}?host={self.folder}&port={self.port}"

    def create(self, database: str) -> str:
        """A new, empty database; its URL."""
        from sqlalchemy import create_engine, text

        admin = create_engine(self.url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{database}"'))
        admin.dispose()
        return self.url(database)

    def stop(self) -> None:
        try:
            self._run([_bin("pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate", "-w", "stop"])
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
