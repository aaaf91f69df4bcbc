"""A backend restarted in the middle of a batch: every image completes, attempts counted honestly.

Private servers only (``tests/faults/servers.py``). Redis is restarted
empty (``--save ""``): the queued messages are gone and the reconciler
queues the rows again. PostgreSQL is stopped with ``-m immediate`` (a
crash) while a worker claims and completes images. No image may end failed
or be charged an attempt for the outage: every row ends ``completed`` with
``attempts == 1`` (one claim that did the work).

The Redis test also counts the worker's log lines during a 20 s outage (the
issue saw ~500 a second); the bound (30 lines) is what one WARNING, a summary
and one INFO per process need with a wide margin (4 lines are seen).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from db import images
from tests.conftest import run_cli, wait_for
from tests.daemon import Daemon
from tests.faults.servers import PostgresServer, RedisServer
from tests.imagefiles import photo
from worker.app import build
from worker.settings import load

pytestmark = pytest.mark.acceptance

BATCH = 24
OUTAGE_S = 20.0
MAX_OUTAGE_LINES = 30


def _batch(tmp_path: Path, cfg: Path) -> None:
    for i in range(BATCH):
        photo(tmp_path / "in" / f"p{i:02d}.jpg", (220 + 6 * i, 160))
    run_cli(cfg, "enqueue", str(tmp_path / "in"))


def _attempts(cfg: Path) -> tuple[dict[str, int], list[int]]:
    app = build(load(cfg, env={}))
    try:
        ids = images.ids_with_status(app.engine, ["pending", "processing", "completed", "failed"])
        rows = [images.get(app.engine, i) for i in ids]
        return images.counts(app.engine), sorted(r.attempts for r in rows if r is not None)
    finally:
        app.close()


def _completed(cfg: Path) -> int:
    try:
        return _attempts(cfg)[0]["completed"]
    except Exception:  # the database is down right now
        return -1


def test_redis_restarted_empty_during_a_batch(
        fault_config: Callable[..., Path], redis_queue: dict[str, str], private_redis: RedisServer,
        start_worker: Callable[..., Daemon], tmp_path: Path) -> None:
    cfg = fault_config(queue=redis_queue, outage={"summary_interval_s": 60.0})
    _batch(tmp_path, cfg)
    worker = start_worker(cfg, "worker")
    wait_for(lambda: _completed(cfg) >= 2, timeout=60, what="the batch under way")
    private_redis.stop()
    before = len(worker.log().splitlines())
    time.sleep(OUTAGE_S)
    during = worker.log().splitlines()[before:]
    private_redis.start()  # empty: every queued message is gone
    wait_for(lambda: _completed(cfg) == BATCH, timeout=120, interval=0.5, what="every image completed")
    counts, attempts = _attempts(cfg)
    assert counts["failed"] == 0 and attempts == [1] * BATCH, attempts
    assert len(during) <= MAX_OUTAGE_LINES, "\n".join(during[:40])
    assert any("unreachable" in line for line in during), "\n".join(during[:40])
    assert "Traceback" not in worker.log()
    assert "is back after" in worker.log()
    assert worker.stop() == 0


def test_postgres_restarted_during_a_batch(
        fault_config: Callable[..., Path], pg_url: str, private_postgres: PostgresServer,
        start_worker: Callable[..., Daemon], tmp_path: Path) -> None:
    cfg = fault_config(database={"url": pg_url})
    _batch(tmp_path, cfg)
    worker = start_worker(cfg, "worker")
    wait_for(lambda: _completed(cfg) >= 2, timeout=60, what="the batch under way")
    private_postgres.stop("immediate")
    time.sleep(5.0)
    private_postgres.start()
    wait_for(lambda: _completed(cfg) == BATCH, timeout=120, interval=0.5, what="every image completed")
    counts, attempts = _attempts(cfg)
    assert counts["failed"] == 0 and attempts == [1] * BATCH, attempts
    assert "Traceback" not in worker.log(), worker.log()[-3000:]
    assert "is back after" in worker.log()
    assert worker.stop() == 0
