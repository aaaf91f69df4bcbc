"""Every use of huey's private internals, in one place (huey is pinned ``>=3.5.4,<3.6``).

huey documents its tasks, storages and consumer options, but not the attributes
below; they are named with a leading ``_`` and may change in any release. This
module is the only one in the project that touches them, so a huey upgrade is
checked here (and by the daemon tests in tests/reliability and tests/faults):

``SqliteStorage._create_connection`` (overridden by :class:`TunedSqliteStorage`)
    the one hook that sees each new SQLite connection: we set
    ``synchronous=NORMAL`` on it.
``SqliteStorage._conn``
    the cached connection. After a ``fork`` the child must drop it (a SQLite
    connection must never cross a fork); huey has no public "forget" call, and
    ``close()`` would close the parent's connection too.
``Consumer._signal_actions``
    the signal -> (restart, graceful) table. huey makes only one of
    SIGTERM/SIGINT graceful; we make both graceful.
``Consumer._restart``
    set by SIGHUP. Our loop does not re-exec (that would skip our cleanup); it
    reads the flag to log that the restart is left to the supervisor.
``Worker._logger``
    huey's per-process logger, used for the one task error we still let huey
    report ("Unhandled error during execution of task ..."), so that the
    message reads as huey's own did.
``Scheduler._next_loop``
    the scheduler's monotonic deadline for its next tick. After waiting out a
    queue outage we reset it to now, or the scheduler would count the wait as
    skipped ticks.
``Huey._registry._periodic_tasks``
    the registered periodic tasks (tests check that every maintenance duty is
    scheduled; the public ``read_periodic`` filters by the current time).

``jobs/huey_import.py`` also reaches into huey: it imports huey with redis-py and
psycopg blocked, then hands ``huey.storage`` its redis names back for a Redis queue.

Besides these, ``worker/huey_consumer.py`` overrides huey's ``Worker.loop``,
``Scheduler.loop`` and ``Consumer.check_worker_health``, and ``worker/daemon.py``
calls ``Consumer.loop``: public names without a documented contract, kept to
what huey 3.5 does (each override says which part it changes).

One more, kept beside the import it serves: ``jobs/huey_import.py`` imports
huey with redis-py hidden (start-up time) and, for a Redis queue, sets the
redis names in ``huey.storage``'s module namespace (``Redis``,
``ConnectionPool``, the two error classes, ``RedisStorage.redis_client``)
that huey binds at import.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import weakref
from typing import Any

from jobs.huey_import import Huey, SqliteStorage


class TunedSqliteStorage(SqliteStorage):
    """huey's SQLite storage with ``synchronous=NORMAL`` (WAL keeps it durable
    against process crashes; enqueue is ~3x faster than FULL on this machine),
    made safe across ``fork``.

    huey closes the connection once before it forks its first workers, but a
    worker restarted by the health check is forked later from a consumer whose
    reconciler thread has used the queue since: the child would inherit an
    open SQLite connection (which must never cross a fork) and perhaps a
    locked ``threading.Lock``. After a fork the child drops both and opens
    its own connection on first use.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        ref = weakref.ref(self)

        def _forget_in_child() -> None:
            storage = ref()
            if storage is not None:
                storage._conn = None  # abandoned, not closed: the parent still uses it
                storage.lock = threading.Lock()

        os.register_at_fork(after_in_child=_forget_in_child)

    def _create_connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection = super()._create_connection()
        conn.execute("pragma synchronous=NORMAL")
        return conn


def make_signals_graceful(consumer: Any, *signals: int) -> None:
    """Make each of ``signals`` a graceful stop (no restart) of ``consumer``."""
    for sig in signals:
        consumer._signal_actions[sig] = (False, True)


def restart_requested(consumer: Any) -> bool:
    """True if ``consumer`` stopped because of SIGHUP (huey's "restart")."""
    return bool(consumer._restart)


def process_logger(process: Any) -> Any:
    """The logger huey gave a worker or scheduler (``huey.consumer.Worker`` etc.)."""
    return process._logger


def reset_schedule_clock(scheduler: Any) -> None:
    """Let ``scheduler``'s next tick count from now (after a wait that was not a tick)."""
    scheduler._next_loop = time.monotonic()


def periodic_tasks(huey: Huey) -> list[Any]:
    """The periodic task classes registered on ``huey``."""
    return list(huey._registry._periodic_tasks)
