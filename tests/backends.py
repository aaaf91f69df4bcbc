"""Backend combinations for tests: where the shared database and the queue live.

Three combinations run the tests that matter (see ``tests/conftest.py``):

========================  ===================  ==================
id                        database             queue
========================  ===================  ==================
``sqlite``                SQLite file (WAL)    huey SQLite file
``pg-redis``              PostgreSQL           huey on Redis
``sqlite-redis``          SQLite file (WAL)    huey on Redis
========================  ===================  ==================

Each test gets its own PostgreSQL schema (selected by ``search_path`` in the
URL's ``options``) and its own huey queue name (the Redis key prefix), and
both are removed afterwards, so tests never see each other's rows or
messages. The servers are the local ones (127.0.0.1); a test needing one that
is down is skipped with the reason, CI starts them (``.ci/run``).

Example::

    with isolated_postgres() as url:       # a fresh schema, dropped after
        engine = make_engine(url)
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import quote, urlsplit

# Only the machine's own servers (PREAMBLE: no other hosts). The env vars
# let a developer point at another port on localhost.
PG_BASE_URL = os.environ.get("DARKROOM_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("DARKROOM_TEST_REDIS", "redis://127.0.0.1:6379/0")
LOCAL_HOSTS = ("127.0.0.1", "::1", "localhost")


@dataclass(frozen=True)
class Backend:
    """One combination of shared database and queue storage."""

    id: str
    database: str  # "sqlite" | "postgresql"
    queue: str  # "sqlite" | "redis"

    @property
    def needs_servers(self) -> bool:
        return self.database == "postgresql" or self.queue == "redis"


SQLITE = Backend("sqlite", "sqlite", "sqlite")
PG_REDIS = Backend("pg-redis", "postgresql", "redis")
SQLITE_REDIS = Backend("sqlite-redis", "sqlite", "redis")
ALL = (SQLITE, PG_REDIS, SQLITE_REDIS)


@dataclass
class BackendSetup:
    """The config sections that point an installation at a backend."""

    backend: Backend
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    database_url: str | None = None  # PostgreSQL URL (with the schema), if any
    queue_name: str | None = None  # Redis key prefix, if any


def _check_local(url: str) -> None:
    host = urlsplit(url).hostname
    if host not in LOCAL_HOSTS:
        raise RuntimeError(f"test servers must be local, got host {host!r} in {url}")


@cache
def postgres_unreachable() -> str | None:
    """None when PostgreSQL answers, else the reason (cached per session)."""
    _check_local(PG_BASE_URL)
    try:
        import psycopg

        with psycopg.connect(_libpq(PG_BASE_URL), connect_timeout=3) as conn:
            conn.execute("select 1")
    except Exception as exc:  # any failure means "skip", with the reason
        return f"PostgreSQL at {PG_BASE_URL} unreachable ({exc.__class__.__name__}: {exc})".strip()
    return None


@cache
def redis_unreachable() -> str | None:
    _check_local(REDIS_URL)
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3, socket_timeout=3).ping()
    except Exception as exc:
        return f"Redis at {REDIS_URL} unreachable ({exc.__class__.__name__}: {exc})"
    return None


def unreachable(backend: Backend) -> str | None:
    """Why ``backend`` cannot be used here, or None."""
    if backend.database == "postgresql" and (why := postgres_unreachable()):
        return why
    if backend.queue == "redis" and (why := redis_unreachable()):
        return why
    return None


def _libpq(url: str) -> str:
    """The libpq form of an SQLAlchemy URL (drops the ``+psycopg`` driver)."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _admin() -> Any:
    import psycopg

    return psycopg.connect(_libpq(PG_BASE_URL), autocommit=True, connect_timeout=5)


@contextmanager
def isolated_postgres(prefix: str = "dr_test") -> Iterator[str]:
    """A new empty schema; yields an SQLAlchemy URL whose connections use it.

    Every connection made from the URL is tagged with the schema name as its
    ``application_name``, so teardown can end stragglers (a killed worker's
    half-closed session) before ``DROP SCHEMA ... CASCADE``.
    """
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with _admin() as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in PG_BASE_URL else "?"
    url = f"{PG_BASE_URL}{sep}options={quote(f'-csearch_path={schema}')}&application_name={schema}"
    try:
        yield url
    finally:
        drop_postgres_schema(schema)


def drop_postgres_schema(schema: str) -> None:
    with _admin() as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE application_name = %s AND pid <> pg_backend_pid()", (schema,))
        conn.execute("SET lock_timeout = '10s'")
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def schema_of(url: str) -> str:
    """The schema an :func:`isolated_postgres` URL selects."""
    return url.rsplit("application_name=", 1)[1].split("&", 1)[0]


@contextmanager
def isolated_redis_queue(prefix: str = "dr_test") -> Iterator[str]:
    """A unique huey queue name (its Redis key prefix); its keys are deleted after.

    huey strips everything but ``[A-Za-z0-9_]`` from names, so the name uses
    only those.
    """
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        delete_redis_queue(name)


def redis_keys(name: str) -> list[bytes]:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        # huey.redis.<name>, huey.schedule.<name>, huey.r.<name>.*, huey.c.<name>.*
        return [k for k in client.scan_iter(match=f"huey.*{name}*")
                if k.split(b".", 2)[2].startswith(name.encode())]
    finally:
        client.close()


def delete_redis_queue(name: str) -> None:
    import redis

    keys = redis_keys(name)
    if keys:
        client = redis.Redis.from_url(REDIS_URL)
        try:
            client.delete(*keys)
        finally:
            client.close()


@contextmanager
def backend_setup(backend: Backend) -> Iterator[BackendSetup]:
    """Provision ``backend`` for one test; yields the config sections to apply."""
    setup = BackendSetup(backend)
    with ExitStack() as stack:
        if backend.database == "postgresql":
            setup.database_url = stack.enter_context(isolated_postgres())
            setup.sections["database"] = {"url": setup.database_url}
        if backend.queue == "redis":
            setup.queue_name = stack.enter_context(isolated_redis_queue())
            setup.sections["queue"] = {"url": REDIS_URL, "name": setup.queue_name}
        yield setup

