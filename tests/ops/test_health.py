"""``darkroom health``: exit 0 only when database, queue, a heartbeat and the duties are fine."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from db.engine import write_session
from db.models import MaintenanceRun
from tests.conftest import run_cli
from tests.daemon import Daemon
from tests.ops.conftest import FAST_HEARTBEAT, free_port, wait_for
from worker import heartbeat
from worker.app import build
from worker.settings import ConfigError, load
from worker.status.health import check


@pytest.mark.acceptance
def test_health_follows_the_worker(make_config: Callable[..., Path],
                                   start_worker: Callable[..., Daemon]) -> None:
    cfg = make_config(heartbeat=FAST_HEARTBEAT)
    build(load(cfg, env={})).migrate()
    down = run_cli(cfg, "health", check=False)
    assert down.returncode == 1
    assert "unhealthy: no live worker: no heartbeat in the last 1.5s" in down.stderr

    settings = load(cfg, env={})
    worker = start_worker(cfg, "worker")
    wait_for(lambda: check(settings).ok, timeout=30)
    up = run_cli(cfg, "health", "--local", check=False)
    assert up.returncode == 0, up.stderr
    assert up.stdout.startswith("ok: ") and "1 live worker(s) on " in up.stdout

    assert worker.stop() == 0, worker.log()
    assert check(settings).problems == ("no live worker: no heartbeat in the last 1.5s",)


def test_health_fails_when_the_database_file_is_missing(make_config: Callable[..., Path]) -> None:
    cfg = make_config()
    build(load(cfg, env={})).migrate()
    db_file = cfg.parent / "data" / "app.db"
    db_file.unlink()
    proc = run_cli(cfg, "health", check=False)
    assert proc.returncode == 1
    assert f"unhealthy: database unreachable: no database file at {db_file}" in proc.stderr
    assert not db_file.exists()  # asking did not create an empty database


def test_health_fails_when_the_database_server_is_unreachable(make_config: Callable[..., Path]) -> None:
    # A loopback port nothing listens on: the connection is refused at once.
    cfg = make_config(database={"url": f"postgresql+psycopg://darkroom@127.0.0.1:{free_port()}/none"},
                      health={"connect_timeout_s": 2.0})
    (cfg.parent / "data" / "media").mkdir(parents=True, exist_ok=True)
    from jobs.queue import QueueConfig, make_huey

    make_huey(QueueConfig(url=load(cfg, env={}).queue.url))  # the queue itself is fine
    proc = run_cli(cfg, "health", "--json", check=False)
    assert proc.returncode == 1
    problems = json.loads(proc.stdout)["problems"]
    assert len(problems) == 1 and problems[0].startswith("database unreachable: PostgreSQL at 127.0.0.1:")
    assert problems[0].endswith(": connection refused")


def test_health_fails_when_the_queue_is_missing(make_config: Callable[..., Path]) -> None:
    cfg = make_config()
    build(load(cfg, env={})).migrate()
    (cfg.parent / "data" / "queue.db").unlink()
    proc = run_cli(cfg, "health", check=False)
    assert proc.returncode == 1 and "unhealthy: queue unreachable: no queue file" in proc.stderr


def test_overdue_duty_makes_health_fail(make_config: Callable[..., Path]) -> None:
    cfg = make_config(health={"duty_max_age_s": {"checkpoint": 600, "backup": 86400}})
    settings = load(cfg, env={})
    this = build(settings)
    this.migrate()
    now = time.time()
    heartbeat.register(this.engine, "w1", 1, now=now)
    with write_session(this.engine) as s:
        s.add_all([
            MaintenanceRun(name="checkpoint", started_at=now - 3600, finished_at=now - 3599, outcome="ok"),
            # A newer failed run does not count as done.
            MaintenanceRun(name="checkpoint", started_at=now - 60, finished_at=now - 59, outcome="failed",
                           error="database is locked"),
        ])
    result = check(settings, now=now)
    assert not result.ok
    assert result.problems == ("duty 'checkpoint' overdue: last successful run 3600s ago (limit 600s)",)
    # backup never ran, but the worker has been up for less than a day: not overdue yet.

    with write_session(this.engine) as s:
        s.add(MaintenanceRun(name="checkpoint", started_at=now - 10, finished_at=now - 9, outcome="ok"))
    assert check(settings, now=now).ok
    # Once workers have been up longer than the limit, a duty that never ran is overdue.
    later = now + 90_000
    heartbeat.beat(this.engine, "w1", now=later)
    problems = check(settings, now=later).problems
    assert any(p.startswith("duty 'backup' overdue: no successful run recorded") for p in problems)
    this.close()


def test_health_settings_are_checked(make_config: Callable[..., Path]) -> None:
    cfg = make_config(health={"duty_max_age_s": {"backup": -1}})
    with pytest.raises(ConfigError, match="health.duty_max_age_s"):
        load(cfg, env={})
