"""The huey instance, built from queue settings (SQLite file or Redis).

``make_huey`` + ``jobs.tasks.register`` are the only way a huey instance is
made, so producers (CLI, API) and consumers agree on task names.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from db.engine import sqlite_file
from db.errors import BackendUnreachable
from jobs.huey_import import Huey, PriorityRedisExpireHuey, SqliteHuey, enable_redis
from jobs.huey_private import TunedSqliteStorage


@dataclass(frozen=True)
class QueueConfig:
    """``[queue]`` in config.toml: where the queue lives and how the consumer polls it."""

    # sqlite:///path (huey SqliteHuey, its own file) or redis://host:port/db
    url: str = "sqlite:///data/queue.db"
    name: str = "darkroom"
    workers: int = 2
    worker_type: str = "process"  # process | thread
    # Idle polling (SQLite storage; Redis blocks instead): the first poll after
    # a job waits initial_delay_s, each empty poll multiplies the wait by
    # backoff, up to max_delay_s, which bounds how long a new image waits on an
    # idle worker (measured: bench/idle_pickup.py, docs/reliability.md).
    initial_delay_s: float = 0.05
    backoff: float = 1.15
    max_delay_s: float = 0.25
    busy_timeout_s: float = 30.0
    result_ttl_s: int = 3600  # Redis only; results are off anyway

    def check(self) -> None:
        if not (self.url.startswith("sqlite:///") or self.url.startswith(("redis://", "rediss://", "unix://"))):
            raise ValueError("url: expected sqlite:///path or redis://host:port/db")
        # huey drops every other character from a Redis queue name, so
        # "dark-room" and "darkroom" would silently be one queue.
        if not self.name or not all(c.isascii() and (c.isalnum() or c == "_") for c in self.name):
            raise ValueError("name: expected letters, digits and _ only (the Redis key prefix)")
        if self.workers < 1:
            raise ValueError("workers: expected an integer >= 1")
        if self.worker_type not in ("process", "thread"):
            raise ValueError("worker_type: expected 'process' or 'thread'")
        if self.max_delay_s <= 0:
            raise ValueError("max_delay_s: expected a number > 0")
        if not 0 < self.initial_delay_s <= self.max_delay_s:
            raise ValueError("initial_delay_s: expected a number > 0 and <= max_delay_s")
        if self.backoff < 1:
            raise ValueError("backoff: expected a number >= 1")
        if self.busy_timeout_s <= 0:
            raise ValueError("busy_timeout_s: expected a number > 0")
        if self.result_ttl_s < 1:
            raise ValueError("result_ttl_s: expected an integer >= 1")


class DarkroomSqliteHuey(SqliteHuey):
    storage_class = TunedSqliteStorage


def sqlite_queue_path(url: str) -> Path | None:
    return sqlite_file(url)


class QueueUnreachable(BackendUnreachable):
    """The queue (Redis, or the SQLite queue file) does not answer."""


def describe_queue_url(url: str) -> tuple[str, str]:
    """(backend name, address) of a queue URL, without credentials.

    >>> describe_queue_url("redis://:secret@queue.internal/0")
    ('Redis', 'queue.internal:6379')
    """
    path = sqlite_queue_path(url)
    if path is not None:
        return "SQLite queue", str(path)
    if url.startswith("unix://"):
        return "Redis", url[len("unix://"):].split("?")[0]
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return "Redis", f"{parts.hostname or 'localhost'}:{parts.port or 6379}"


def queue_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "the queue does not answer" (Redis connection errors, SQLite I/O)."""
    import sqlite3

    out: list[type[BaseException]] = [sqlite3.OperationalError, OSError]
    if "redis" in sys.modules:  # else nothing raised a redis error (and importing it costs 0.1 s)
        import redis.exceptions

        out += [redis.exceptions.ConnectionError, redis.exceptions.TimeoutError]
    return tuple(out)


def unreachable_queue(exc: BaseException, url: str) -> QueueUnreachable | None:
    """``exc`` as a :class:`QueueUnreachable` naming ``url``, or None if it is not a queue outage."""
    from db.errors import reason_of

    if isinstance(exc, QueueUnreachable):
        return exc
    if not isinstance(exc, queue_errors()):
        return None
    backend, address = describe_queue_url(url)
    return QueueUnreachable(backend, address, reason_of(exc))


def ping(huey: Huey) -> None:
    """Raise if the queue does not answer (one round trip)."""
    conn = getattr(huey.storage, "conn", None)
    if conn is not None and hasattr(conn, "ping"):
        conn.ping()
    else:
        huey.pending_count()


def make_huey(cfg: QueueConfig) -> Huey:
    """A huey instance without result storage (nothing grows without bound)."""
    path = sqlite_queue_path(cfg.url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        return DarkroomSqliteHuey(cfg.name, filename=str(path), results=False,
                                  timeout=cfg.busy_timeout_s)
    enable_redis()  # huey was imported without redis-py (jobs/huey_import.py)
    return PriorityRedisExpireHuey(cfg.name, url=cfg.url, results=False,
                                   expire_time=cfg.result_ttl_s)


def queue_depth(huey: Huey) -> dict[str, int]:
    return {"queued": huey.pending_count(), "scheduled": huey.scheduled_count()}
