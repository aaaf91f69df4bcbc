"""Worker heartbeats: each ``darkroom worker`` daemon keeps a row in ``workers``.

The daemon registers itself at start (host, pid, version, worker count),
then a thread in its main process refreshes ``heartbeat_at`` every
``heartbeat.interval_s``. A worker is *live* while its heartbeat is younger
than ``heartbeat.timeout_s`` and it has not recorded ``stopped_at``.

The same thread looks after the others: a row whose heartbeat went stale
without a clean stop is a crashed daemon; the first live daemon to notice
marks it stopped (a compare-and-set, so it is reported once) and logs an
error. Rows stopped longer ago than ``heartbeat.prune_after_s`` are deleted.

>>> beat = Heartbeat(engine, "web1-4242-a1b2c3", concurrency=2)   # doctest: +SKIP
>>> beat.start(); ...; beat.stop()                                # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from importlib import metadata

from sqlalchemy import Engine, and_, delete, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from db.engine import read_sessions, rowcount, write_session
from db.errors import DatabaseBusy, DatabaseUnreachable
from db.models import Worker
from worker.sections import HeartbeatSettings

log = logging.getLogger(__name__)


def darkroom_version() -> str:
    try:
        return metadata.version("darkroom")
    except metadata.PackageNotFoundError:  # running from a source tree
        return "unknown"


def register(engine: Engine, worker_id: str, concurrency: int, now: float | None = None) -> None:
    """Insert (or revive) this daemon's row."""
    now = now or time.time()
    with write_session(engine) as s:
        row = s.get(Worker, worker_id)
        if row is None:
            s.add(Worker(id=worker_id, host=socket.gethostname(), pid=os.getpid(),
                         version=darkroom_version(), concurrency=concurrency, started_at=now,
                         heartbeat_at=now))
        else:
            row.heartbeat_at, row.stopped_at = now, None


def beat(engine: Engine, worker_id: str, now: float | None = None) -> bool:
    """Refresh the heartbeat; False if the row is gone (pruned by someone)."""
    now = now or time.time()
    with write_session(engine) as s:
        return rowcount(s.execute(update(Worker).where(Worker.id == worker_id)
                                  .values(heartbeat_at=now, stopped_at=None))) == 1


def mark_stopped(engine: Engine, worker_id: str, now: float | None = None) -> None:
    now = now or time.time()
    with write_session(engine) as s:
        s.execute(update(Worker).where(Worker.id == worker_id)
                  .values(heartbeat_at=now, stopped_at=now))


def reap(engine: Engine, timeout_s: float, prune_after_s: float, now: float | None = None) -> list[Worker]:
    """Mark crashed workers stopped (returned, each once) and delete old rows."""
    now = now or time.time()
    with read_sessions(engine)() as s:
        stale = list(s.scalars(select(Worker).where(
            Worker.stopped_at.is_(None), Worker.heartbeat_at < now - timeout_s)))
    crashed = []
    with write_session(engine) as s:
        for w in stale:
            # Compare-and-set: when several daemons notice, one reports it.
            hit = rowcount(s.execute(update(Worker).where(
                Worker.id == w.id, Worker.stopped_at.is_(None), Worker.heartbeat_at == w.heartbeat_at)
                .values(stopped_at=w.heartbeat_at)))
            if hit:
                crashed.append(w)
        s.execute(delete(Worker).where(or_(
            and_(Worker.stopped_at.is_not(None), Worker.stopped_at < now - prune_after_s),
            Worker.heartbeat_at < now - prune_after_s)))
    return crashed


class Heartbeat(threading.Thread):
    """The daemon's heartbeat thread (its main process only; children are not in ``workers``)."""

    def __init__(self, engine: Engine, worker_id: str, concurrency: int,
                 settings: HeartbeatSettings = HeartbeatSettings(),
                 ready: Callable[[], bool] | None = None, ready_timeout_s: float = 30.0) -> None:
        super().__init__(name="heartbeat", daemon=True)
        self.engine, self.worker_id, self.concurrency = engine, worker_id, concurrency
        self.settings = settings
        self.ready, self.ready_timeout_s = ready, ready_timeout_s
        self.registered = threading.Event()
        self._stop_event = threading.Event()

    def run(self) -> None:
        s = self.settings
        # Listed as live only once the daemon can take work and stop cleanly.
        deadline = time.monotonic() + self.ready_timeout_s
        while self.ready is not None and not self.ready() and time.monotonic() < deadline:
            if self._stop_event.wait(0.02):
                return
        try:
            register(self.engine, self.worker_id, self.concurrency)
        except (DatabaseBusy, DatabaseUnreachable, SQLAlchemyError) as exc:
            log.warning("could not register worker %s (%s); will retry", self.worker_id,
                        exc.__class__.__name__)
        self.registered.set()
        while not self._stop_event.wait(s.interval_s):
            try:
                if not beat(self.engine, self.worker_id):
                    log.warning("worker %s: heartbeat row was pruned; registering again", self.worker_id)
                    register(self.engine, self.worker_id, self.concurrency)
                for w in reap(self.engine, s.timeout_s, s.prune_after_s):
                    log.error("worker %s (host %s, pid %d) stopped heartbeating at %s without a "
                              "clean stop: presumed crashed; its images return to pending when "
                              "their leases expire", w.id, w.host, w.pid,
                              time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(w.heartbeat_at)),
                              extra={"worker_id": w.id, "event": "worker_crashed"})
            except DatabaseUnreachable as exc:  # logged once per outage by the outage log
                from jobs.outage import OUTAGES

                OUTAGES.down(exc.where, exc.reason)
            except (DatabaseBusy, SQLAlchemyError) as exc:  # nothing may stop the heartbeat thread
                log.warning("heartbeat failed (%s); will try again", exc.__class__.__name__)

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout=5)
        if not self.registered.is_set():
            return
        try:
            mark_stopped(self.engine, self.worker_id)
        except (DatabaseBusy, DatabaseUnreachable, SQLAlchemyError):
            log.warning("could not record the stop of worker %s; it will age out", self.worker_id)


class _EscalateDeaths(logging.Filter):
    """huey logs a dead worker process as a warning; for us a crash is an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.WARNING and "died" in str(record.msg):
            record.levelno, record.levelname = logging.ERROR, "ERROR"
        return True


_escalate = _EscalateDeaths()


def escalate_worker_deaths() -> None:
    """Log huey's "Worker N died, restarting." at ERROR (idempotent)."""
    logger = logging.getLogger("huey.consumer")
    if _escalate not in logger.filters:
        logger.addFilter(_escalate)
