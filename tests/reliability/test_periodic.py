"""The periodic guard: one run per period across processes, on SQLite and PostgreSQL."""

from __future__ import annotations

import math
import multiprocessing
import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text

from db import leases
from db.engine import make_engine, read_sessions
from db.migrate import upgrade
from db.models import MaintenanceRun
from tests.conftest import run_cli
from tests.daemon import Daemon
from tests.reliability.conftest import query

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'app.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh schema in the local PostgreSQL, dropped afterwards."""
    schema = f"leases_{uuid.uuid4().hex[:10]}"
    admin = make_engine(PG_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
    except Exception as exc:
        admin.dispose()
        pytest.skip(f"local PostgreSQL not available: {exc}")
    url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


def runs(engine: Engine, name: str) -> list[MaintenanceRun]:
    with read_sessions(engine)() as s:
        return list(s.scalars(select(MaintenanceRun).where(MaintenanceRun.name == name)
                              .order_by(MaintenanceRun.started_at)))


def _contender(url: str, start_at: float, results: multiprocessing.Queue[bool]) -> None:
    engine = make_engine(url)
    while time.time() < start_at:
        time.sleep(0.001)
    results.put(leases.run_once_per_period(engine, "nightly", 3600, lambda: time.sleep(0.2) or {"n": 1}))
    engine.dispose()


def _race(url: str, n: int = 6) -> list[bool]:
    ctx = multiprocessing.get_context("fork")
    results: multiprocessing.Queue[bool] = ctx.Queue()
    start_at = time.time() + 0.5
    procs = [ctx.Process(target=_contender, args=(url, start_at, results)) for _ in range(n)]
    for p in procs:
        p.start()
    out = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(10)
    return out


def test_processes_racing_for_a_period_run_it_once_sqlite(sqlite_engine: Engine) -> None:
    assert sorted(_race(str(sqlite_engine.url))) == [False] * 5 + [True]
    [run] = runs(sqlite_engine, "nightly")
    assert run.outcome == "ok" and run.figures == '{"n": 1}' and run.finished_at is not None


@pytest.mark.scaleout
def test_processes_racing_for_a_period_run_it_once_postgresql(pg_url: str) -> None:
    assert sorted(_race(pg_url)) == [False] * 5 + [True]
    engine = make_engine(pg_url)
    assert len(runs(engine, "nightly")) == 1
    engine.dispose()


def test_next_period_runs_again_and_a_killed_holder_blocks_only_until_its_lease_expires(
        sqlite_engine: Engine) -> None:
    calls: list[int] = []
    period = 1.0

    def next_period() -> None:
        time.sleep(period - time.time() % period + 0.01)

    next_period()
    assert leases.run_once_per_period(sqlite_engine, "tick", period, lambda: calls.append(1) or {})
    assert not leases.run_once_per_period(sqlite_engine, "tick", period, lambda: calls.append(1) or {})
    next_period()
    assert leases.run_once_per_period(sqlite_engine, "tick", period, lambda: calls.append(1) or {})
    assert len(calls) == 2

    # A holder that died mid-run never releases; its lease (0.3 s) expires.
    assert leases.acquire(sqlite_engine, "backup", "dead-owner", lease_s=0.3)
    assert not leases.run_once_per_period(sqlite_engine, "backup", 3600, dict)
    time.sleep(0.35)
    assert leases.run_once_per_period(sqlite_engine, "backup", 3600, dict)


def test_a_failing_run_is_recorded_and_uses_up_its_period(sqlite_engine: Engine) -> None:
    def boom() -> dict[str, int]:
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        leases.run_once_per_period(sqlite_engine, "sweep", 3600, boom)
    [run] = runs(sqlite_engine, "sweep")
    assert run.outcome == "failed" and run.error == "RuntimeError: disk on fire"
    assert not leases.run_once_per_period(sqlite_engine, "sweep", 3600, dict)
    assert leases.acquire(sqlite_engine, "sweep", "someone", 10)  # released despite the error


@pytest.mark.acceptance
def test_two_daemons_on_one_queue_run_each_periodic_task_once_per_period(
        make_config: Callable[..., Path], start_worker: Callable[..., Daemon]) -> None:
    period = 1.0
    cfg = make_config(jobs={"reconcile_interval_s": period})
    run_cli(cfg, "migrate")
    # Quiet reconciler runs are not recorded in the database; each run says so at DEBUG level.
    a = start_worker(cfg, log_level="DEBUG")
    b = start_worker(cfg, log_level="DEBUG")
    a.wait_children(2)
    b.wait_children(2)
    time.sleep(5 * period)
    assert a.stop() == 0 and b.stop() == 0
    ran = {w: re.findall(r"reconcile: running for period (\d+)", w.log()) for w in (a, b)}
    periods = ran[a] + ran[b]
    assert len(periods) >= 4, periods
    assert len(periods) == len(set(periods)), f"a period ran twice: {sorted(periods)}"
    [(last,)] = query(cfg, "SELECT last_run_at FROM leases WHERE name = 'reconcile'")
    assert str(math.floor(last / period)) == max(periods, key=int)
