"""Fixtures for reliability tests: real `darkroom worker` daemons, killed and restarted.

``start_worker(config)`` starts ``python -m worker --config CONFIG worker`` as
a subprocess (output to a log file beside the config) and returns a
:class:`WorkerProc`; every process started this way, and every descendant
it had, is killed at the end of the test whatever happened.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import wait_for  # noqa: F401  (re-exported for the reliability tests)
from tests.reliability.procs import descendants_of, is_running, kill_all

pytestmark = pytest.mark.acceptance


class WorkerProc:
    """A running ``darkroom worker`` subprocess."""

    def __init__(self, config: Path, args: tuple[str, ...], log_path: Path, log_level: str = "INFO") -> None:
        self.config, self.log_path = config, log_path
        env = {k: v for k, v in os.environ.items() if not k.startswith("DARKROOM_")}
        self._log = open(log_path, "ab")  # noqa: SIM115 (open for the daemon's whole life, closed in stop())
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "worker", "--config", str(config), "--log-level", log_level,
             "worker", *args],
            stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=config.parent)
        self.seen: set[int] = set()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def descendants(self) -> list[int]:
        found = descendants_of(self.pid)
        self.seen.update(found)
        return found

    def wait_children(self, n: int, timeout: float = 20) -> list[int]:
        """Wait until the consumer has at least ``n`` child processes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            kids = self.descendants()
            if len(kids) >= n:
                return kids
            if self.popen.poll() is not None:
                raise AssertionError(f"worker exited early:\n{self.log()}")
            time.sleep(0.05)
        raise AssertionError(f"worker has no {n} children after {timeout}s:\n{self.log()}")

    def send(self, signum: int) -> None:
        self.popen.send_signal(signum)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Signal the consumer and wait for it; returns its exit status."""
        if self.popen.poll() is None:
            self.popen.send_signal(signum)
        try:
            return self.popen.wait(timeout)
        finally:
            self._log.close()

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def cleanup(self) -> None:
        pids = [self.pid, *self.seen]
        if self.popen.poll() is None:
            pids.extend(descendants_of(self.pid))
        kill_all([p for p in pids if is_running(p)])
        try:
            self.popen.wait(10)
        except subprocess.TimeoutExpired:
            pass
        self._log.close()


@pytest.fixture
def start_worker() -> Iterator[Callable[..., WorkerProc]]:
    started: list[WorkerProc] = []

    def _start(config: Path, *args: str, log_level: str = "INFO") -> WorkerProc:
        log = config.parent / f"worker-{len(started) + 1}.log"
        proc = WorkerProc(config, args, log, log_level)
        started.append(proc)
        return proc

    yield _start
    for proc in started:
        proc.cleanup()


def db_path(config: Path) -> Path:
    return config.parent / "data" / "app.db"


def query(config: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Read the shared SQLite database directly (what another program would see)."""
    conn = sqlite3.connect(db_path(config), timeout=30)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()



def status_counts(config: Path) -> dict[str, int]:
    return dict(query(config, "SELECT status, count(*) FROM images GROUP BY status"))  # type: ignore[arg-type]


def all_terminal(config: Path, n: int) -> bool:
    counts = status_counts(config)
    return counts.get("completed", 0) + counts.get("failed", 0) == n
