"""Duty leases and run records: one run at a time, missed runs caught up once."""

from __future__ import annotations

import itertools
import json
import multiprocessing
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, update

from db.engine import make_engine, write_session
from db.maintenance.errors import DutyFailed
from db.maintenance.runs import acquire, due, last_run_at, last_runs, release, run_duty
from db.migrate import upgrade
from db.models import Lease, MaintenanceRun


def test_run_is_recorded_and_shown(engine: Engine) -> None:
    result = run_duty(engine, "optimize", lambda: {"freed_pages": 3})
    assert result.outcome == "ok" and result.figures == {"freed_pages": 3}
    run_duty(engine, "backup", lambda: {"warnings": ["slow disk"]})
    with pytest.raises(DutyFailed):
        run_duty(engine, "check", lambda: (_ for _ in ()).throw(DutyFailed("page 3 bad", {"result": "bad"})))
    runs = {r["name"]: r for r in last_runs(engine)}
    assert runs["optimize"]["outcome"] == "ok" and runs["optimize"]["figures"] == {"freed_pages": 3}
    assert runs["backup"]["outcome"] == "warning"
    assert runs["check"]["outcome"] == "failed" and "page 3 bad" in runs["check"]["error"]
    assert runs["check"]["figures"] == {"result": "bad"}
    assert all(r["finished_at"] >= r["started_at"] and not r["running_now"] for r in runs.values())
    assert last_run_at(engine, "check") == runs["check"]["started_at"]  # a failure counts as a run
    run_duty(engine, "optimize", lambda: {"freed_pages": 0})
    assert {r["name"]: r for r in last_runs(engine)}["optimize"]["figures"] == {"freed_pages": 0}


def test_maintenance_runs_and_status_agree_on_the_last_run_under_clock_skew(engine: Engine) -> None:
    from worker.status.figures import last_duty_runs

    run_duty(engine, "check", lambda: {"host": "a"})
    run_duty(engine, "check", lambda: {"host": "b"})  # recorded later, by a host whose clock is behind:
    with write_session(engine) as s:
        s.execute(update(MaintenanceRun).where(MaintenanceRun.figures == json.dumps({"host": "b"}))
                  .values(started_at=MaintenanceRun.started_at - 3600))
    by_cli = {r["name"]: r["figures"] for r in last_runs(engine)}
    by_status = {r.name: r.figures for r in last_duty_runs(engine)}
    assert by_cli == by_status == {"check": {"host": "b"}}  # the run recorded last, whatever its clock


def test_lease_is_exclusive_until_released_or_expired(engine: Engine) -> None:
    now = time.time()
    assert acquire(engine, "sweep", "a", lease_s=60, now=now)
    assert not acquire(engine, "sweep", "b", lease_s=60, now=now + 1)
    assert acquire(engine, "sweep", "b", lease_s=60, now=now + 61)  # a died: its lease expired
    release(engine, "sweep", "a", ran_at=now)  # a stale owner cannot release b's lease
    assert not acquire(engine, "sweep", "c", lease_s=60, now=now + 62)
    release(engine, "sweep", "b", ran_at=now + 62)
    assert acquire(engine, "sweep", "c", lease_s=60, now=now + 63)


def test_a_held_lease_makes_the_run_a_skip(engine: Engine) -> None:
    assert acquire(engine, "backup", "another-worker", lease_s=600)
    ran: list[int] = []
    result = run_duty(engine, "backup", lambda: ran.append(1) or {})
    assert result.outcome == "skipped" and ran == []
    with engine.connect() as conn:
        assert conn.execute(select(MaintenanceRun)).all() == []


def test_missed_run_is_caught_up_once(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    day = 86_400.0
    assert due(engine, "backup", day)  # never ran
    run_duty(engine, "backup", lambda: {"n": 1})
    assert not due(engine, "backup", day)
    # The host was down for five days: the last run is five nights old.
    with write_session(engine) as s:
        s.execute(update(Lease).where(Lease.name == "backup").values(last_run_at=time.time() - 5 * day))
    engine.dispose()

    engine = make_engine(f"sqlite:///{db}")  # the restart
    runs = 0
    for _ in range(5):  # start-up catch-up, then the scheduler's later checks
        if due(engine, "backup", day):
            run_duty(engine, "backup", lambda: {"n": 2})
            runs += 1
    assert runs == 1
    with engine.connect() as conn:
        assert len(conn.execute(select(MaintenanceRun).where(MaintenanceRun.name == "backup")).all()) == 2
    engine.dispose()


def test_min_interval_dedupes_schedulers_firing_the_same_period(engine: Engine) -> None:
    assert run_duty(engine, "optimize", dict, min_interval_s=3_000).outcome == "ok"
    assert run_duty(engine, "optimize", dict, min_interval_s=3_000).outcome == "skipped"
    assert run_duty(engine, "optimize", dict, min_interval_s=0).outcome == "ok"


def _contender(url: str, log: str, start: Any, barrier: Any, rounds: int) -> None:
    engine = make_engine(url)
    barrier.wait()  # every contender is up (a spawn takes a second or more on a busy machine) ...
    barrier.wait()  # ... and the parent has set the common start
    start_at = start.value
    for _ in range(rounds):
        delay = start_at - time.time()
        if delay > 0:
            time.sleep(delay)

        def work() -> dict[str, int]:
            began = time.time()
            time.sleep(0.15)
            with open(log, "a") as fh:
                fh.write(json.dumps([began, time.time()]) + "\n")
            return {}

        run_duty(engine, "backup", work, lease_s=30)
        start_at += 0.4
    engine.dispose()


def test_two_workers_never_run_the_same_duty_at_once(engine: Engine, db_path: Path, tmp_path: Path) -> None:
    log = tmp_path / "runs.jsonl"
    ctx = multiprocessing.get_context("spawn")
    start, barrier = ctx.Value("d", 0.0), ctx.Barrier(4, timeout=60)
    procs = [ctx.Process(target=_contender, args=(f"sqlite:///{db_path}", str(log), start, barrier, 4))
             for _ in range(3)]
    for p in procs:
        p.start()
    barrier.wait()
    start.value = time.time() + 0.2  # all three start their rounds together
    barrier.wait()
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs)
    spans = sorted(json.loads(line) for line in log.read_text().splitlines())
    assert 4 <= len(spans) < 12  # every round ran once; the contenders skipped
    for (_, end), (nxt, _) in itertools.pairwise(spans):
        assert nxt >= end, "two runs of the same duty overlapped"
    with engine.connect() as conn:
        assert len(conn.execute(select(MaintenanceRun)).all()) == len(spans)
