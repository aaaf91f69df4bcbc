"""Prometheus metrics of a ``darkroom worker`` daemon (``--metrics-port N``).

Two kinds of figures, collected where each is true:

* **Job counters and histograms** (``darkroom_jobs_total``,
  ``darkroom_job_duration_seconds``, ``darkroom_job_stage_duration_seconds``)
  happen in the forked worker processes. They use prometheus_client's
  multiprocess mode: the daemon makes a fresh ``PROMETHEUS_MULTIPROC_DIR``
  before it forks, each child writes its own memory-mapped file there, and
  the endpoint in the main process sums them. Counting from the database
  instead would be wrong here: the database is shared by every worker host,
  so each daemon would report the whole fleet's jobs (summing in Prometheus
  would double count), and retries and skips leave no row to count.
  The figures come from the one log record per job that ``jobs.image_job``
  already emits (``extra=`` outcome, duration_s, timings), so the job code
  needs no metrics hooks.
* **Shared state** (queue depth, oldest pending age, image counts,
  maintenance runs, WAL and database sizes, live workers) is read from the
  database and the queue at scrape time, in the main process, by
  :class:`StateCollector`. These describe the installation, not this daemon.

>>> server = start(app)                    # doctest: +SKIP
>>> # curl http://127.0.0.1:9464/metrics
>>> server.stop()                          # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from db import images
from jobs.queue import queue_depth
from worker.status import figures
from worker.status.health import media_state
from worker.status.workers import live_workers

if TYPE_CHECKING:
    from worker.app import App

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
DIR_PREFIX = "darkroom-metrics-"  # + "<daemon pid>-<random>" in the temp dir
JOB_LOGGER = "jobs.image_job"
STAGES = ("decode", "resize", "encode_webp", "encode_avif", "write", "db")
JOB_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
STAGE_BUCKETS_S = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class JobMetrics:
    """The per-process metric objects (made after the multiprocess dir is set)."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Histogram

        # registry=None: in multiprocess mode the values live in files that
        # the endpoint's MultiProcessCollector reads; nothing registers twice.
        self.jobs = Counter("darkroom_jobs", "Image jobs by outcome (completed, failed, retry, skipped).",
                            ["outcome"], registry=None)
        self.duration = Histogram("darkroom_job_duration_seconds", "Wall time of an image job.",
                                  ["outcome"], buckets=JOB_BUCKETS_S, registry=None)
        self.stage = Histogram("darkroom_job_stage_duration_seconds",
                               "Time per stage of a completed image job.", ["stage"],
                               buckets=STAGE_BUCKETS_S, registry=None)
        self.restarts = Counter("darkroom_worker_process_restarts",
                                "Worker processes that died and were restarted.", registry=None)
        for outcome in ("completed", "failed", "retry", "skipped"):
            self.jobs.labels(outcome)  # present (at 0) before the first job


class JobMetricsHandler(logging.Handler):
    """Turns the per-job log record into metric updates (in whichever process logs it)."""

    def __init__(self, metrics: JobMetrics) -> None:
        super().__init__(logging.NOTSET)
        self.metrics = metrics

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if record.name == JOB_LOGGER:
                outcome = getattr(record, "outcome", None)
                if not isinstance(outcome, str):
                    return
                m = self.metrics
                m.jobs.labels(outcome).inc()
                duration = getattr(record, "duration_s", None)
                if isinstance(duration, (int, float)):
                    m.duration.labels(outcome).observe(duration)
                timings = getattr(record, "timings", None)
                if isinstance(timings, dict):
                    for stage, seconds in timings.items():
                        if isinstance(seconds, (int, float)):
                            m.stage.labels(str(stage)).observe(seconds)
            elif record.name == "huey.consumer" and "died" in str(record.msg):
                self.metrics.restarts.inc()
        except Exception:  # metrics must never break a job
            self.handleError(record)


class StateCollector:
    """Gauges of the shared state, read when Prometheus scrapes."""

    def __init__(self, app: App) -> None:
        self.app = app

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily

        app, engine = self.app, self.app.engine
        # First, and without the database: a full or read-only media disk is what an outage alert needs.
        media = media_state(app.settings.paths.media_dir)
        free = GaugeMetricFamily("darkroom_media_free_bytes", "Free bytes on the media dir's filesystem.")
        if media.free_bytes is not None:
            free.add_metric([], media.free_bytes)
        yield free
        writable = GaugeMetricFamily("darkroom_media_writable", "1 if a file could be written in the media dir.")
        writable.add_metric([], int(media.writable))
        yield writable
        up = GaugeMetricFamily("darkroom_database_up", "1 if the shared database answered this scrape.")
        try:
            counts = images.counts(engine)
            age = figures.oldest_pending_age_s(engine)
            duties = figures.duty_totals(engine)
            last = figures.last_duty_runs(engine)
            live = live_workers(engine, app.settings.heartbeat.timeout_s)
            db = figures.database_storage(engine)
        except Exception as exc:
            log.warning("metrics: database unreadable during scrape: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up

        g = GaugeMetricFamily("darkroom_images", "Images per status.", labels=["status"])
        for status, n in counts.items():
            g.add_metric([status], n)
        yield g
        g = GaugeMetricFamily("darkroom_oldest_pending_age_seconds",
                              "Age of the oldest pending image (0 when none is pending).")
        g.add_metric([], age or 0.0)
        yield g
        try:
            depth = queue_depth(app.huey)
            g = GaugeMetricFamily("darkroom_queue_depth", "Messages in the queue.", labels=["state"])
            for state, n in depth.items():
                g.add_metric([state], n)
            yield g
        except Exception as exc:
            log.warning("metrics: queue unreadable during scrape: %s", exc)
        g = GaugeMetricFamily("darkroom_workers_live", "Worker daemons with a fresh heartbeat.")
        g.add_metric([], len(live))
        yield g

        runs = CounterMetricFamily("darkroom_maintenance_runs", "Recorded maintenance runs.",
                                   labels=["duty", "outcome"])
        for duty, outcome, n, _ in duties:
            runs.add_metric([duty, outcome], n)
        yield runs
        summary = SummaryMetricFamily("darkroom_maintenance_duration_seconds",
                                      "Duration of recorded maintenance runs.", labels=["duty"])
        per_duty: dict[str, tuple[int, float]] = {}
        for duty, _, n, seconds in duties:
            c, s = per_duty.get(duty, (0, 0.0))
            per_duty[duty] = (c + n, s + seconds)
        for duty, (n, seconds) in sorted(per_duty.items()):
            summary.add_metric([duty], count_value=n, sum_value=seconds)
        yield summary
        g = GaugeMetricFamily("darkroom_maintenance_last_run_timestamp_seconds",
                              "Start of the latest run of each duty (Unix time).", labels=["duty"])
        d = GaugeMetricFamily("darkroom_maintenance_last_duration_seconds",
                              "Duration of the latest finished run of each duty.", labels=["duty"])
        for r in last:
            g.add_metric([r.name], r.started_at)
            if r.duration_s is not None:
                d.add_metric([r.name], r.duration_s)
        yield g
        yield d

        sizes = [("database", db), ("queue", figures.queue_storage(app.settings.queue.url))]
        g = GaugeMetricFamily("darkroom_database_size_bytes", "Size of the database file.", labels=["store"])
        w = GaugeMetricFamily("darkroom_wal_size_bytes", "Size of the SQLite write-ahead log.", labels=["store"])
        for store, info in sizes:
            if info.get("db_bytes") is not None:
                g.add_metric([store], info["db_bytes"])
            if info.get("wal_bytes") is not None:
                w.add_metric([store], info["wal_bytes"])
        yield g
        yield w


@dataclass
class MetricsServer:
    """A running endpoint; ``stop()`` closes it and removes the multiprocess dir."""

    url: str
    multiproc_dir: Path | None
    _server: Any = None
    _handler: logging.Handler | None = None

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._handler is not None:
            for name in (JOB_LOGGER, "huey.consumer"):
                logging.getLogger(name).removeHandler(self._handler)
            self._handler = None
        if self.multiproc_dir is not None:
            shutil.rmtree(self.multiproc_dir, ignore_errors=True)
            if os.environ.get(MULTIPROC_ENV) == str(self.multiproc_dir):
                del os.environ[MULTIPROC_ENV]
            self.multiproc_dir = None


class _Off:
    """What ``start`` returns when no port is configured."""

    url = ""

    def stop(self) -> None:
        return None


def _multiprocess_registry(directory: Path) -> Any:
    from prometheus_client import CollectorRegistry, values
    from prometheus_client.multiprocess import MultiProcessCollector

    os.environ[MULTIPROC_ENV] = str(directory)
    # prometheus_client picks its value class at import time; pick again now
    # that the directory is set, in case something imported it earlier.
    values.ValueClass = values.get_value_class()
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))
    return registry


def remove_dead_dirs(root: Path | None = None) -> int:
    """Delete multiprocess dirs left by daemons that were killed (SIGKILL skips cleanup)."""
    removed = 0
    for d in Path(root or tempfile.gettempdir()).glob(f"{DIR_PREFIX}*-*"):
        pid_text = d.name[len(DIR_PREFIX):].split("-", 1)[0]
        if not pid_text.isdigit() or not d.is_dir():
            continue
        try:
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
            removed += 1
        except PermissionError:  # alive, another user's
            pass
    return removed


def _keep_job_records() -> None:
    """Make sure the per-job INFO record is created even at ``--log-level WARNING``.

    The record feeds the metrics, so the job logger must be enabled for
    INFO; the root handlers get the root's level so nothing extra is printed.
    """
    job_logger = logging.getLogger(JOB_LOGGER)
    if job_logger.isEnabledFor(logging.INFO):
        return
    root = logging.getLogger()
    for handler in root.handlers:
        if handler.level < root.level:
            handler.setLevel(root.level)
    job_logger.setLevel(logging.INFO)


def start(app: App, port: int | None = None) -> MetricsServer | _Off:
    """Serve ``/metrics`` on ``[metrics] host:port`` if a port is set; call before forking."""
    settings = app.settings.metrics
    port = settings.port if port is None else port
    if not port:
        return _Off()
    from prometheus_client import start_http_server

    remove_dead_dirs()
    directory = Path(tempfile.mkdtemp(prefix=f"{DIR_PREFIX}{os.getpid()}-"))
    registry = _multiprocess_registry(directory)
    registry.register(StateCollector(app))
    handler = JobMetricsHandler(JobMetrics())
    _keep_job_records()
    for name in (JOB_LOGGER, "huey.consumer"):
        logging.getLogger(name).addHandler(handler)
    try:
        server, _thread = start_http_server(port, addr=settings.host, registry=registry)
    except OSError:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    url = f"http://{settings.host}:{server.server_port}/metrics"
    log.info("metrics at %s", url)
    return MetricsServer(url=url, multiproc_dir=directory, _server=server, _handler=handler)
