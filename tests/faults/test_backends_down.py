"""A backend that is down: the worker waits for it, commands say so in one line, enqueue records.

Private servers only (``tests/faults/servers.py``): stopped and started by
these tests, never the machine's own PostgreSQL and Redis.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import run_cli, wait_for
from tests.daemon import Daemon
from tests.faults.servers import PostgresServer, RedisServer, free_port
from tests.imagefiles import photo

pytestmark = pytest.mark.acceptance


def _status(cfg: Path) -> dict:
    return json.loads(run_cli(cfg, "status", "--json").stdout)


def test_worker_started_with_postgres_down_waits_and_comes_up(
        fault_config: Callable[..., Path], pg_url: str, private_postgres: PostgresServer,
        start_worker: Callable[..., Daemon], tmp_path: Path) -> None:
    cfg = fault_config(database={"url": pg_url})
    private_postgres.stop()
    worker = start_worker(cfg, "worker")
    where = f"PostgreSQL at 127.0.0.1:{private_postgres.port}"
    wait_for(lambda: worker.log().count(f"waiting for {where}: connection refused; next try in") >= 2,
             timeout=30, what="one wait line per backoff step")
    health = run_cli(cfg, "health", "--local", check=False)
    assert health.returncode == 1
    assert f"unhealthy: starting: waiting for {where}: connection refused" in health.stderr
    assert worker.popen.poll() is None, "the worker must wait, not exit"
    assert "Traceback" not in worker.log()

    private_postgres.start()
    photo(tmp_path / "in" / "a.jpg", (200, 150))
    run_cli(cfg, "enqueue", str(tmp_path / "in"))
    wait_for(lambda: _status(cfg)["images"]["completed"] == 1, timeout=60, what="the image completed")
    assert "database and queue answer after" in worker.log()
    assert worker.stop() == 0


def test_worker_started_with_redis_down_waits_and_comes_up(
        fault_config: Callable[..., Path], redis_queue: dict[str, str], private_redis: RedisServer,
        start_worker: Callable[..., Daemon], tmp_path: Path) -> None:
    cfg = fault_config(queue=redis_queue)
    private_redis.stop()
    worker = start_worker(cfg, "worker")
    where = f"Redis at 127.0.0.1:{private_redis.port}"
    wait_for(lambda: f"waiting for {where}: connection refused; next try in" in worker.log(),
             timeout=30, what="the wait line")
    # enqueue while the queue is down: every file recorded (row + original), exit 0
    for i in range(3):
        photo(tmp_path / "in" / f"p{i}.jpg", (180 + 10 * i, 120))
    proc = run_cli(cfg, "enqueue", str(tmp_path / "in"))
    assert "3 recorded and waiting for the queue" in proc.stderr
    assert "Traceback" not in proc.stderr
    originals = list((cfg.parent / "data" / "media" / "originals").rglob("*.jpg"))
    assert len(originals) == 3

    private_redis.start()
    wait_for(lambda: _status(cfg)["images"]["completed"] == 3, timeout=60,
             what="the recorded images queued by the reconciler and completed")
    assert "Traceback" not in worker.log()
    assert worker.stop() == 0


@pytest.mark.parametrize("command", [("status",), ("migrate",), ("health",), ("enqueue", "IMG")])
def test_unreachable_postgres_is_one_line(fault_config: Callable[..., Path], tmp_path: Path,
                                          command: tuple[str, ...]) -> None:
    port = free_port()
    cfg = fault_config(database={"url": f"postgresql+psycopg://postgres@127.0.0.1:{port}/none"})
    img = photo(tmp_path / "x.jpg", (64, 64))
    proc = run_cli(cfg, *[str(img) if a == "IMG" else a for a in command], check=False)
    assert proc.returncode == 1
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in proc.stderr
    wanted = f"PostgreSQL at 127.0.0.1:{port}: connection refused" if command == ("health",) \
        else f"darkroom: PostgreSQL at 127.0.0.1:{port} unreachable: connection refused"
    assert any(wanted in ln for ln in lines), proc.stderr
    if command != ("health",):
        assert len(lines) == 1, proc.stderr


@pytest.mark.parametrize("command", [("status",), ("retry", "--failed")])
def test_unreachable_redis_is_one_line(fault_config: Callable[..., Path], command: tuple[str, ...]) -> None:
    port = free_port()
    cfg = fault_config(queue={"url": f"redis://127.0.0.1:{port}/0"})
    proc = run_cli(cfg, *command, check=False)
    assert proc.returncode == 1 or command == ("retry", "--failed"), proc.stderr
    assert "Traceback" not in proc.stderr
    if proc.returncode == 1:
        assert f"darkroom: Redis at 127.0.0.1:{port} unreachable: connection refused" in proc.stderr.splitlines()
