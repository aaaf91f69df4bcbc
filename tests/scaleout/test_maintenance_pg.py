"""Maintenance on PostgreSQL: the SQLite steps are replaced or left out, never failing."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from db.engine import read_sessions
from db.models import MaintenanceRun
from tests import backends
from tests.conftest import backend_params, run_cli
from worker import daemon
from worker.app import App

pytestmark = pytest.mark.parametrize("backend", backend_params(backends.PG_REDIS), indirect=True)


def test_every_scheduled_duty_runs_ok_on_postgres(app: App) -> None:
    assert app.engine.dialect.name == "postgresql"
    # No online file backup to schedule on a server database.
    assert "backup" not in app.duties
    assert {"sweep", "optimize", "checkpoint", "check"} <= set(app.duties)
    for task in app.duties.values():
        app.huey.enqueue(task.s())
    daemon.drain(app)
    with read_sessions(app.engine)() as s:
        runs = {r.name: r for r in s.scalars(select(MaintenanceRun))}
    outcomes = {n: r.outcome for n, r in runs.items() if n in app.duties}
    assert outcomes == dict.fromkeys(app.duties, "ok"), {n: r.error for n, r in runs.items()}
    assert "ANALYZE" in (runs["optimize"].figures or "")


def test_explicit_backup_on_postgres_says_to_use_its_own_tools(make_config) -> None:
    cfg = make_config()
    run_cli(cfg, "migrate")
    proc = run_cli(cfg, "maintenance", "backup", check=False)
    assert proc.returncode != 0
    assert "pg_dump" in proc.stderr + proc.stdout
