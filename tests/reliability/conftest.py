"""Fixtures for reliability tests: real `darkroom worker` daemons, killed and restarted.

``start_worker(config)`` starts ``python -m worker --config CONFIG worker`` as
a subprocess (output to a log file beside the config) and returns a
:class:`tests.daemon.Daemon`; every process started this way, and every
descendant it had, is killed at the end of the test whatever happened.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import wait_for  # noqa: F401  (re-exported for the reliability tests)
from tests.daemon import Daemon, started_daemons

pytestmark = pytest.mark.acceptance


@pytest.fixture
def start_worker() -> Iterator[Callable[..., Daemon]]:
    """``start_worker(config, *worker_args, log_level="INFO")``; killed at teardown (not stopped first)."""
    with started_daemons(None) as start:
        count = itertools.count(1)

        def _start(config: Path, *args: str, log_level: str = "INFO") -> Daemon:
            return start(config, "--log-level", log_level, "worker", *args,
                         log_path=config.parent / f"worker-{next(count)}.log")

        yield _start


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
