"""huey, imported without redis-py and psycopg unless a queue needs them.

``huey/storage.py`` tries ``import redis`` and ``import psycopg`` at module
level (about 0.1 s each here), so any ``import huey`` pays for both, even on
the default install whose queue is a SQLite file and whose database is
reached through SQLAlchemy. This module imports huey once with both names
blocked in ``sys.modules`` (unless they were imported already), then unblocks
them: huey's storage module is left believing neither is installed.

Redis queues get redis-py back: :func:`enable_redis` (called by
``jobs.queue.make_huey`` for a ``redis://`` URL) imports it and gives huey's
storage module the five names its Redis classes read. huey's own PostgreSQL
storage is not a queue Darkroom offers (``QueueConfig.check``), so psycopg is
never handed back to huey; SQLAlchemy imports psycopg itself when the
database URL asks for it.

Every runtime use of huey in the project imports it from here (huey's names
are re-exported below), so the guarded import is the first one. If something
imported huey before (a test importing huey directly), the guard does nothing
and huey has redis-py as usual. While the guard is up (the duration of huey's
own import), another thread's ``import redis`` would fail: this module is
imported at start-up, before any thread is started.

>>> import huey.storage
>>> enable_redis()
>>> huey.storage.Redis is not None
True
"""

from __future__ import annotations

import sys
import threading


def _import_huey_without(blocked: tuple[str, ...] = ("redis", "psycopg")) -> None:
    if "huey.storage" in sys.modules:
        return
    guarded = [name for name in blocked if name not in sys.modules]
    for name in guarded:
        sys.modules[name] = None  # type: ignore[assignment]  # "import NAME" raises ImportError
    try:
        import huey  # noqa: F401
    finally:
        for name in guarded:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


_import_huey_without()

from huey import Huey, PriorityRedisExpireHuey, SqliteHuey, crontab  # noqa: E402
from huey.consumer import Consumer, ConsumerStopped, ProcessEnvironment, Scheduler, Worker  # noqa: E402
from huey.storage import SqliteStorage  # noqa: E402

__all__ = [
    "Consumer", "ConsumerStopped", "Huey", "PriorityRedisExpireHuey", "ProcessEnvironment", "Scheduler",
    "SqliteHuey", "SqliteStorage", "Worker", "crontab", "enable_redis",
]

_lock = threading.Lock()


def enable_redis() -> None:
    """Give huey's storage module redis-py (after a guarded import left it without)."""
    import huey.storage as storage

    with _lock:
        if storage.Redis is not None:
            return
        import redis
        import redis.exceptions

        storage.ConnectionPool = redis.ConnectionPool
        storage.Redis = redis.Redis
        storage.ConnectionError = redis.exceptions.ConnectionError
        storage.TimeoutError = redis.exceptions.TimeoutError
        storage.RedisStorage.redis_client = redis.Redis  # a class attribute, bound when huey was imported
