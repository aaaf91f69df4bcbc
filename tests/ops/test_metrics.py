"""Prometheus metrics scraped over HTTP from a running ``darkroom worker``; job log lines."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from db.engine import write_session
from db.models import MaintenanceRun
from tests.daemon import Daemon
from tests.ops.conftest import FAST_HEARTBEAT, free_port, make_files, submit, wait_for
from worker.app import App, build
from worker.settings import ConfigError, load
from worker.status import metrics

pytestmark = pytest.mark.acceptance


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, keyed by (name, sorted labels)."""
    text = httpx.get(url, timeout=10).raise_for_status().text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_endpoint_counts_the_jobs_of_a_batch(make_config: Callable[..., Path], tmp_path: Path,
                                                     start_worker: Callable[..., Daemon]) -> None:
    port = free_port()
    cfg = make_config(heartbeat=FAST_HEARTBEAT, queue={"workers": 2})
    app = build(load(cfg, env={}))
    app.migrate()
    # WARNING level and JSON logs: the per-job INFO record must still feed the
    # counters, without being printed.
    worker = start_worker(cfg, "--log-level", "WARNING", "--log-format", "json",
                          "worker", "--metrics-port", str(port))
    url = f"http://127.0.0.1:{port}/metrics"

    def ready() -> bool:
        try:
            return scrape(url).get(("darkroom_workers_live", ())) == 1.0
        except httpx.TransportError:
            return False

    wait_for(ready, timeout=30, interval=0.2)
    before = scrape(url)
    assert before[("darkroom_jobs_total", (("outcome", "completed"),))] == 0.0

    goods, bads = make_files(tmp_path / "in", 3, 1)
    ids = [submit(app, p) for p in goods + bads]

    def counted() -> dict | None:
        s = scrape(url)
        done = s.get(("darkroom_jobs_total", (("outcome", "completed"),)), 0) + \
            s.get(("darkroom_jobs_total", (("outcome", "failed"),)), 0)
        return s if done >= 4 else None

    s = wait_for(counted, timeout=60, interval=0.25)
    assert s[("darkroom_jobs_total", (("outcome", "completed"),))] == 3.0
    assert s[("darkroom_jobs_total", (("outcome", "failed"),))] == 1.0
    assert s[("darkroom_jobs_total", (("outcome", "retry"),))] == 0.0
    assert s[("darkroom_job_duration_seconds_count", (("outcome", "completed"),))] == 3.0
    assert s[("darkroom_job_duration_seconds_count", (("outcome", "failed"),))] == 1.0
    for stage in ("decode", "resize", "encode_webp", "encode_avif", "write", "db"):
        assert s[("darkroom_job_stage_duration_seconds_count", (("stage", stage),))] == 3.0, stage
        assert s[("darkroom_job_stage_duration_seconds_sum", (("stage", stage),))] >= 0.0
    assert s[("darkroom_job_stage_duration_seconds_bucket", (("le", "+Inf"), ("stage", "decode")))] == 3.0
    # Shared state, read from the database and queue at scrape time.
    assert s[("darkroom_images", (("status", "completed"),))] == 3.0
    assert s[("darkroom_images", (("status", "failed"),))] == 1.0
    # Each completion queues the embedding step's trigger, and the scheduler queues the
    # reconciler: a message can sit in the queue for a moment. With the queue empty (read
    # directly, before and after the scrape) the gauge must read 0 too.
    def drained() -> dict | None:
        if app.huey.pending_count():
            return None
        again = scrape(url)
        queued = again[("darkroom_queue_depth", (("state", "queued"),))]
        return again if queued == 0.0 and app.huey.pending_count() == 0 else None

    s = wait_for(drained, timeout=30, interval=0.1, what="darkroom_queue_depth 0 with the queue empty")
    assert s[("darkroom_oldest_pending_age_seconds", ())] == 0.0
    assert s[("darkroom_database_up", ())] == 1.0
    assert s[("darkroom_wal_size_bytes", (("store", "database"),))] > 0
    assert s[("darkroom_database_size_bytes", (("store", "database"),))] > 0

    assert worker.stop(signal.SIGTERM) == 0, worker.log()[-3000:]
    lines = [json.loads(line) for line in worker.log().splitlines() if line.startswith("{")]
    failed = [r for r in lines if r.get("outcome") == "failed"]
    assert len(failed) == 1 and failed[0]["level"] == "warning" and failed[0]["image_id"] == ids[-1]
    assert failed[0]["error"].startswith("not an image") and "duration_s" in failed[0]
    assert not [r for r in lines if r.get("outcome") == "completed"]  # INFO not printed at WARNING
    assert not list(Path("/tmp").glob(f"darkroom-metrics-*/*_{worker.popen.pid}.db"))
    app.close()


def test_json_log_line_carries_the_job_fields(make_config: Callable[..., Path], tmp_path: Path) -> None:
    from tests.conftest import run_cli

    cfg = make_config()
    goods, bads = make_files(tmp_path / "in", 1, 1)
    app = build(load(cfg, env={}))
    app.migrate()
    for p in (goods[0], bads[0]):
        submit(app, p)
    app.close()
    out = run_cli(cfg, "--log-format", "json", "worker", "--drain").stderr
    jobs = {r["outcome"]: r for r in map(json.loads, out.splitlines()) if "outcome" in r}
    done, failed = jobs["completed"], jobs["failed"]
    assert done["level"] == "info" and failed["level"] == "warning"
    assert set(done["timings"]) >= {"decode", "resize", "encode_webp", "encode_avif", "write", "db"}
    assert done["duration_s"] > 0 and done["image_id"] and done["error"] is None
    assert failed["error"].startswith("not an image") and "<script>" in failed["error"]


def test_job_metrics_handler_counts_records(tmp_path: Path) -> None:
    """The handler alone, on a real (single-process) registry."""
    from prometheus_client import CollectorRegistry, generate_latest

    m = metrics.JobMetrics()
    registry = CollectorRegistry()
    for c in (m.jobs, m.duration, m.stage):
        registry.register(c)
    handler = metrics.JobMetricsHandler(m)
    log = logging.getLogger(metrics.JOB_LOGGER)
    rec = log.makeRecord(log.name, logging.INFO, __file__, 1, "image x completed", (), None,
                         extra={"outcome": "completed", "duration_s": 0.5, "timings": {"decode": 0.1}})
    handler.handle(rec)
    handler.handle(log.makeRecord(log.name, logging.INFO, __file__, 1, "unrelated", (), None))
    text = generate_latest(registry).decode()
    assert 'darkroom_jobs_total{outcome="completed"} 1.0' in text
    assert 'darkroom_job_stage_duration_seconds_count{stage="decode"} 1.0' in text


def test_metrics_flag_refused_with_drain(make_config: Callable[..., Path]) -> None:
    from tests.conftest import run_cli

    proc = run_cli(make_config(), "worker", "--drain", "--metrics-port", "9999", check=False)
    assert proc.returncode == 1 and "--metrics-port" in proc.stderr


def test_metrics_port_is_checked(make_config: Callable[..., Path]) -> None:
    with pytest.raises(ConfigError, match="metrics.port"):
        load(make_config(metrics={"port": 70000}), env={})


def test_state_collector_reports_maintenance_and_sizes(app: App) -> None:
    from prometheus_client import CollectorRegistry

    now = time.time()
    with write_session(app.engine) as s:
        s.add_all([
            MaintenanceRun(name="checkpoint", started_at=now - 100, finished_at=now - 98, outcome="ok"),
            MaintenanceRun(name="checkpoint", started_at=now - 50, finished_at=now - 49.5, outcome="ok"),
            MaintenanceRun(name="backup", started_at=now - 20, finished_at=now - 17, outcome="failed",
                           error="disk full"),
        ])
    registry = CollectorRegistry()
    registry.register(metrics.StateCollector(app))
    got = {(s.name, tuple(sorted(s.labels.items()))): s.value
           for family in registry.collect() for s in family.samples}
    assert got[("darkroom_maintenance_runs_total", (("duty", "checkpoint"), ("outcome", "ok")))] == 2
    assert got[("darkroom_maintenance_runs_total", (("duty", "backup"), ("outcome", "failed")))] == 1
    assert got[("darkroom_maintenance_duration_seconds_count", (("duty", "checkpoint"),))] == 2
    assert got[("darkroom_maintenance_duration_seconds_sum", (("duty", "checkpoint"),))] == pytest.approx(2.5)
    assert got[("darkroom_maintenance_last_duration_seconds", (("duty", "backup"),))] == pytest.approx(3.0)
    assert got[("darkroom_maintenance_last_run_timestamp_seconds", (("duty", "checkpoint"),))] == \
        pytest.approx(now - 50)
    assert got[("darkroom_database_up", ())] == 1
    assert got[("darkroom_workers_live", ())] == 0
    db_file = app.settings.paths.data_dir / "app.db"
    assert got[("darkroom_database_size_bytes", (("store", "database"),))] == db_file.stat().st_size
    media = app.settings.paths.media_dir
    assert got[("darkroom_media_free_bytes", ())] == pytest.approx(shutil.disk_usage(media).free, rel=0.05)
    assert got[("darkroom_media_writable", ())] == 1
    media.chmod(0o500)  # read-only (root ignores modes: then only the gauge's presence is checked)
    try:
        again = {(s.name, tuple(sorted(s.labels.items()))): s.value
                 for family in registry.collect() for s in family.samples}
    finally:
        media.chmod(0o755)
    assert again[("darkroom_media_writable", ())] == (1 if os.geteuid() == 0 else 0)


def test_dirs_of_killed_daemons_are_removed(tmp_path: Path) -> None:
    gone = tmp_path / f"{metrics.DIR_PREFIX}{2**22 + 12345}-abc"  # above pid_max: never alive
    mine = tmp_path / f"{metrics.DIR_PREFIX}{os.getpid()}-def"
    other = tmp_path / "unrelated-dir"
    for d in (gone, mine, other):
        d.mkdir()
        (d / "counter_1.db").write_bytes(b"x")
    assert metrics.remove_dead_dirs(tmp_path) == 1
    assert not gone.exists() and mine.exists() and other.exists()
