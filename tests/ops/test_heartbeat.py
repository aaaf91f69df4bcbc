"""Worker heartbeats: registration, a killed daemon ages out, crashes are reported once."""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from db.engine import read_sessions
from db.models import Worker
from tests.daemon import Daemon
from tests.ops.conftest import FAST_HEARTBEAT, wait_for
from worker import heartbeat
from worker.app import App, build
from worker.settings import ConfigError, load
from worker.status import workers

pytestmark = pytest.mark.acceptance


def _app(cfg: Path) -> App:
    application = build(load(cfg, env={}))
    application.migrate()
    return application


@pytest.mark.quiet  # a bound in seconds: see tests/conftest.py:_quiet_machine
def test_killed_worker_leaves_the_live_list_within_the_timeout(
        make_config: Callable[..., Path], start_worker: Callable[..., Daemon]) -> None:
    cfg = make_config(heartbeat=FAST_HEARTBEAT, queue={"workers": 2})
    app = _app(cfg)
    timeout = FAST_HEARTBEAT["timeout_s"]
    worker = start_worker(cfg, "worker")
    live = wait_for(lambda: workers.live_workers(app.engine, timeout), timeout=30)
    assert len(live) == 1 and live[0].pid == worker.popen.pid and live[0].concurrency == 2
    first_beat = live[0].heartbeat_at
    wait_for(lambda: workers.live_workers(app.engine, timeout)[0].heartbeat_at > first_beat, timeout=5)

    os.kill(worker.popen.pid, signal.SIGKILL)
    killed_at = time.time()
    worker.popen.wait(timeout=10)
    # Still listed right after the kill: liveness is the heartbeat's age, nothing else.
    assert workers.live_workers(app.engine, timeout)
    wait_for(lambda: not workers.live_workers(app.engine, timeout), timeout=timeout + 5, interval=0.05)
    gone_after = time.time() - killed_at
    assert gone_after <= timeout + 0.3, f"listed {gone_after:.2f}s after the kill (timeout {timeout}s)"
    with read_sessions(app.engine)() as s:
        row = s.get(Worker, live[0].id)
        assert row is not None and row.stopped_at is None  # killed: no clean stop recorded
    assert workers.stale_count(app.engine, timeout) == 1
    app.close()


def test_clean_stop_records_stopped_at(make_config: Callable[..., Path],
                                       start_worker: Callable[..., Daemon]) -> None:
    cfg = make_config(heartbeat=FAST_HEARTBEAT)
    app = _app(cfg)
    worker = start_worker(cfg, "worker")
    wait_for(lambda: workers.live_workers(app.engine, 1.5), timeout=30)
    assert worker.stop(signal.SIGTERM) == 0, worker.log()
    # Gone at once, not after the timeout, and not counted as a crash.
    assert workers.live_workers(app.engine, 1.5) == []
    assert workers.stale_count(app.engine, 1.5) == 0
    app.close()


def test_reap_reports_a_crash_once_and_prunes_old_rows(app: App) -> None:
    now = time.time()
    heartbeat.register(app.engine, "alive", 1, now=now)
    heartbeat.register(app.engine, "crashed", 1, now=now - 100)
    heartbeat.register(app.engine, "ancient", 1, now=now - 10_000)
    heartbeat.mark_stopped(app.engine, "ancient", now=now - 10_000)

    crashed = heartbeat.reap(app.engine, timeout_s=30, prune_after_s=3600, now=now)
    assert [w.id for w in crashed] == ["crashed"]
    assert heartbeat.reap(app.engine, timeout_s=30, prune_after_s=3600, now=now) == []  # once
    with read_sessions(app.engine)() as s:
        rows = {w.id: w for w in s.query(Worker)}
    assert set(rows) == {"alive", "crashed"}  # "ancient" pruned
    assert rows["crashed"].stopped_at == pytest.approx(now - 100)
    # A worker that was only slow comes back to life with its next beat.
    assert heartbeat.beat(app.engine, "crashed")
    assert {w.id for w in workers.live_workers(app.engine, 30)} == {"alive", "crashed"}


def test_heartbeat_thread_logs_a_crashed_peer_as_an_error(app: App, caplog: pytest.LogCaptureFixture) -> None:
    heartbeat.register(app.engine, "peer-1-dead", 2, now=time.time() - 60)
    beat = heartbeat.Heartbeat(app.engine, "me-1-live", 1,
                               heartbeat.HeartbeatSettings(interval_s=0.05, timeout_s=1, prune_after_s=3600))
    with caplog.at_level(logging.INFO, logger="worker.heartbeat"):
        beat.start()
        wait_for(lambda: any(r.levelno == logging.ERROR for r in caplog.records), timeout=10)
        beat.stop()
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "peer-1-dead" in errors[0].getMessage()
    assert "presumed crashed" in errors[0].getMessage()
    assert workers.live_workers(app.engine, 1) == []  # this one stopped cleanly too


def test_huey_worker_death_is_logged_as_an_error(caplog: pytest.LogCaptureFixture) -> None:
    heartbeat.escalate_worker_deaths()
    heartbeat.escalate_worker_deaths()  # idempotent
    with caplog.at_level(logging.WARNING, logger="huey.consumer"):
        logging.getLogger("huey.consumer").warning("Worker %d died, restarting.", 2)
        logging.getLogger("huey.consumer").warning("Shutdown timeout elapsed")
    levels = [(r.getMessage(), r.levelname) for r in caplog.records]
    assert levels == [("Worker 2 died, restarting.", "ERROR"), ("Shutdown timeout elapsed", "WARNING")]


def test_heartbeat_settings_are_checked(make_config: Callable[..., Path]) -> None:
    cfg = make_config(heartbeat={"interval_s": 5.0, "timeout_s": 2.0})
    with pytest.raises(ConfigError, match="heartbeat.timeout_s"):
        load(cfg, env={})
