"""Fixtures of the outage tests: private servers shared per session, quick outage backoffs.

Each test gets its own database on the private PostgreSQL (``CREATE DATABASE``)
and its own queue name on the private Redis, so the servers are started once
per session (initdb costs ~1-2 s) and stopped and restarted by the tests that
need an outage. The machine's own services are never touched.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_SECTIONS, merge, write_config
from tests.daemon import Daemon, started_daemons
from tests.faults.servers import PostgresServer, RedisServer

# Outages in tests last seconds: short backoffs so recovery is noticed at once.
FAULT_SECTIONS: dict[str, dict[str, Any]] = {
    "outage": {"backoff_s": 0.2, "max_backoff_s": 1.0, "summary_interval_s": 5.0},
    "health": {"connect_timeout_s": 1.0, "media_min_free_mb": 0.0},
    "heartbeat": {"interval_s": 0.5, "timeout_s": 5.0},
    "maintenance": {"enabled": False},
}


def _private_dir(prefix: str) -> Path:
    """A directory the ``postgres`` user can reach (pytest's tmp dirs are 0700 root)."""
    d = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(d, pw.pw_uid, pw.pw_gid)
    return d


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PostgresServer]:
    why = PostgresServer.available()
    if why:
        pytest.skip(why)
    server = PostgresServer(_private_dir("darkroom-pg-"))
    server.init()
    server.start()
    yield server
    try:
        server.stop("fast")
    except Exception:  # already stopped by a test
        pass
    shutil.rmtree(server.directory, ignore_errors=True)


@pytest.fixture(scope="session")
def private_redis() -> Iterator[RedisServer]:
    why = RedisServer.available()
    if why:
        pytest.skip(why)
    server = RedisServer(Path(tempfile.mkdtemp(prefix="darkroom-redis-")))
    server.start()
    yield server
    server.stop()
    shutil.rmtree(server.directory, ignore_errors=True)


@pytest.fixture
def pg_url(private_postgres: PostgresServer) -> Iterator[str]:
    """A fresh database on the private server (running at the start of the test)."""
    import psycopg

    if not _answers(private_postgres):
        private_postgres.start()
    name = f"t_{uuid.uuid4().hex[:10]}"
    admin = private_postgres.url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield private_postgres.url.rsplit("/", 1)[0] + f"/{name}"
    if not _answers(private_postgres):
        private_postgres.start()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def redis_queue(private_redis: RedisServer) -> Iterator[dict[str, str]]:
    """The queue section of a config on the private Redis (running at the start of the test)."""
    if private_redis.proc is None or private_redis.proc.poll() is not None:
        private_redis.start()
    yield {"url": private_redis.url, "name": f"q_{uuid.uuid4().hex[:10]}"}
    if private_redis.proc is None or private_redis.proc.poll() is not None:
        private_redis.start()


def _answers(server: PostgresServer) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=0.3):
            return True
    except OSError:
        return False


@pytest.fixture
def fault_config(tmp_path: Path) -> Callable[..., Path]:
    """``fault_config(database={...}, queue={...})``: a config.toml with quick outage settings."""
    counter = {"n": 0}

    def _make(**sections: dict[str, Any]) -> Path:
        counter["n"] += 1
        home = tmp_path / f"install{counter['n']}"
        return write_config(home / "config.toml", merge(merge(TEST_SECTIONS, FAULT_SECTIONS), sections))

    return _make


@pytest.fixture
def start_worker() -> Iterator[Callable[..., Daemon]]:
    """``start_worker(config, "worker", ...)``; stopped with SIGTERM at teardown, then cleaned up."""
    with started_daemons(signal.SIGTERM, new_session=True) as start:
        yield start
