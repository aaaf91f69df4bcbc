"""Start into an outage and wait: what ``darkroom worker`` does before it takes work.

A worker started while PostgreSQL or Redis is down (a deploy, a reboot that
brought the worker up first) does not exit with a traceback for its
supervisor to give up on: it waits, logging one line per backoff step::

    waiting for PostgreSQL at db:5432: connection refused; next try in 4 s

and starts working once the database and the queue both answer. The backoff
is ``[outage] backoff_s`` doubling up to ``max_backoff_s``. Its heartbeat
thread is not started yet (the worker is not listed as live while it cannot
work), and a small file in ``<data_dir>/starting/`` lets ``darkroom health``
on this host say ``starting: waiting for ...``. SIGTERM/SIGINT while waiting
end the wait and the process cleanly (exit 0).

>>> ready = wait_for_backends(app, stop_event)    # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from db.errors import DatabaseBusy, DatabaseUnreachable, describe_url, reason_of, unreachable_from
from jobs.outage import say_seconds
from jobs.queue import QueueUnreachable, describe_queue_url, ping, queue_errors

if TYPE_CHECKING:
    from worker.app import App

log = logging.getLogger(__name__)

STARTING_DIR = "starting"


def probe(app: App) -> DatabaseUnreachable | QueueUnreachable | None:
    """The first backend that does not answer, or None when both do."""
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    from db.engine import is_sqlite, make_engine

    s = app.settings
    url = s.database.url
    try:
        if is_sqlite(url):
            with app.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        else:  # a separate engine with a connect timeout: an unroutable host must not hang the wait
            engine = make_engine(url, connect_args={"connect_timeout": max(1, int(s.health.connect_timeout_s))},
                                 poolclass=_null_pool())
            try:
                with engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
            finally:
                engine.dispose()
    except (DatabaseUnreachable, DatabaseBusy, SQLAlchemyError) as exc:
        down = unreachable_from(exc, url)
        if down is None:
            backend, address = describe_url(url)
            down = DatabaseUnreachable(backend, address, reason_of(exc))
        return down
    try:
        ping(app.huey)
    except queue_errors() as exc:
        backend, address = describe_queue_url(s.queue.url)
        return QueueUnreachable(backend, address, reason_of(exc))
    return None


def wait_for_backends(app: App, stop: threading.Event) -> bool:
    """Block until the database and the queue answer; False if ``stop`` was set meanwhile."""
    o = app.settings.outage
    failures = 0
    started = time.monotonic()
    marker = _marker_path(app.settings.paths.data_dir)
    try:
        while not stop.is_set():
            down = probe(app)
            if down is None:
                if failures:
                    log.info("database and queue answer after %s of waiting; starting",
                             say_seconds(time.monotonic() - started))
                return True
            failures += 1
            delay = o.policy.delay(failures)
            log.warning("waiting for %s: %s; next try in %s", down.where, down.reason, say_seconds(delay),
                        extra={"backend": down.where, "event": "startup_wait"})
            _write_marker(marker, f"{down.where}: {down.reason}")
            if stop.wait(delay):
                break
        return False
    finally:
        marker.unlink(missing_ok=True)


def waiting(data_dir: Path) -> list[str]:
    """What each worker on this host that is still starting waits for (read by ``health``)."""
    out: list[str] = []
    directory = data_dir / STARTING_DIR
    if not directory.is_dir():
        return out
    host = socket.gethostname()
    for path in sorted(directory.glob("*.json")):
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if state.get("host") == host and _alive(int(state.get("pid", 0))):
            out.append(str(state.get("waiting_for", "the database and the queue")))
    return out


def _marker_path(data_dir: Path) -> Path:
    return data_dir / STARTING_DIR / f"{socket.gethostname()}-{os.getpid()}.json"


def _write_marker(path: Path, waiting_for: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                                   "waiting_for": waiting_for, "at": time.time()}))
        os.replace(tmp, path)
    except OSError:  # the data dir itself is in trouble: the log line still says it
        log.debug("could not write %s", path)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _null_pool() -> type:
    from sqlalchemy.pool import NullPool

    return NullPool
