"""Periodic tasks during a database outage: one line in the outage log, not a traceback per run.

The database is a closed port on 127.0.0.1 (nothing listens): the tasks are
called the way huey's worker calls them (``call_local``), with huey's own
logging captured.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from jobs.maintenance import duties
from jobs.maintenance.settings import MaintenanceSettings
from jobs.outage import Outages, OutageSettings, quiet_when_database_down
from jobs.queue import make_huey
from tests.faults.servers import free_port
from worker.settings import load


def _closed_engine():  # type: ignore[no-untyped-def]
    return create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none",
                         connect_args={"connect_timeout": 1})


def test_maintenance_duties_log_one_line_per_outage(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    engine = _closed_engine()
    settings = load(None, env={})
    huey = make_huey(settings.queue.__class__(url=f"sqlite:///{tmp_path / 'q.db'}"))
    env = duties.DutyEnv(settings=MaintenanceSettings(), media_dir=tmp_path / "media")
    outages = Outages(OutageSettings(summary_interval_s=3600.0), logger=logging.getLogger("test.outage"))
    import jobs.outage

    real, jobs.outage.OUTAGES = jobs.outage.OUTAGES, outages
    try:
        tasks = duties.register(huey, env, lambda: engine)
        with caplog.at_level(logging.INFO):
            for _ in range(3):
                for task in tasks.values():
                    task.call_local()  # what huey's worker runs for each periodic firing
    finally:
        jobs.outage.OUTAGES = real
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert "PostgreSQL at 127.0.0.1:" in lines[0].getMessage() and "unreachable" in lines[0].getMessage()
    assert not any(r.exc_info for r in caplog.records)


def test_other_errors_still_raise_and_recovery_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    engine = _closed_engine()
    outages = Outages(OutageSettings(), logger=logging.getLogger("test.outage"))
    calls = {"n": 0}

    @quiet_when_database_down(lambda: engine, outages)
    def touch() -> str:
        calls["n"] += 1
        if calls["n"] == 1:
            with engine.connect() as conn:
                conn.execute(text("select 1"))
        return "ran"

    @quiet_when_database_down(lambda: engine, outages)
    def broken() -> None:
        raise ValueError("a bug, not an outage")

    with caplog.at_level(logging.INFO):
        assert touch() is None  # the outage: no exception for huey to log
        assert touch() == "ran"  # the database answers again
    messages = [r.getMessage() for r in caplog.records if r.name == "test.outage"]
    assert len(messages) == 2 and "unreachable" in messages[0] and "is back after" in messages[1]
    with pytest.raises(ValueError):
        broken()
