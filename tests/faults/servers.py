"""Private Redis and PostgreSQL servers for outage tests, on free ports, started by the tests.

The machine's own services (6379, 5432) are never stopped: a test that must
take a backend down starts its own here, in a temporary directory, and stops
and restarts it at will. PostgreSQL is made with ``initdb`` + ``pg_ctl`` from
``/usr/lib/postgresql/*/bin`` (as the ``postgres`` user when we are root, since
initdb refuses root); it takes ~1-2 s, so the fixtures share one per session.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, up: bool, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                if up:
                    return
        except OSError:
            if not up:
                return
        time.sleep(0.05)
    raise RuntimeError(f"port {port} did not go {'up' if up else 'down'} within {timeout}s")


class RedisServer:
    """``redis-server`` on a free port; ``stop()`` and ``start()`` again (its data is not kept)."""

    def __init__(self, directory: Path) -> None:
        self.directory, self.port = directory, free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> str | None:
        return None if shutil.which("redis-server") else "redis-server is not installed"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_port(self.port, up=True)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()  # abrupt: a crash, not a clean shutdown
            self.proc.wait(10)
        _wait_port(self.port, up=False)


class PostgresServer:
    """A PostgreSQL cluster of our own in ``directory``, trust auth, on a free port."""

    def __init__(self, directory: Path) -> None:
        self.directory, self.port = directory, free_port()
        self.data = directory / "data"

    @staticmethod
    def bindir() -> Path | None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        return Path(found[-1]).parent if found else None

    @classmethod
    def available(cls) -> str | None:
        return None if cls.bindir() else "no /usr/lib/postgresql/*/bin/initdb"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        bindir = self.bindir()
        assert bindir is not None
        cmd = [str(bindir / args[0]), *args[1:]]
        kwargs: dict = {"check": True, "stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE, "timeout": 60}
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            pw = pwd.getpwnam("postgres")
            kwargs["user"], kwargs["group"] = pw.pw_uid, pw.pw_gid
        subprocess.run(cmd, **kwargs)

    def init(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.directory, pw.pw_uid, pw.pw_gid)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-w", "-t", "30", "-l", str(self.directory / "log"), "-o",
                  f"-p {self.port} -c listen_addresses=127.0.0.1 -c fsync=off "
                  f"-c unix_socket_directories='{self.directory}'", "start")

    def stop(self, mode: str = "immediate") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-w", "-t", "30", "-m", mode, "stop")
        _wait_port(self.port, up=False)
