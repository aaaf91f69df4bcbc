"""Engine factory: one place that knows SQLite's pragmas and PostgreSQL's pool.

SQLite connections get WAL, ``synchronous=NORMAL``, foreign keys, a busy
timeout, a cache size and in-memory temp tables on every connect. Write
transactions begin with ``BEGIN IMMEDIATE`` so two writers queue on the busy
timeout instead of one failing with "database is locked" when it upgrades a
read lock; sessions made with :func:`read_sessions` begin a plain deferred
transaction so readers never take the write lock.

Every engine made here names its database's troubles with the project's
errors (``db/errors.py``): a busy database raises :class:`~db.errors.DatabaseBusy`,
one that does not answer (or refuses the connection) raises
:class:`~db.errors.DatabaseUnreachable`, each chained to the driver's error.
Code above ``db`` catches those, never SQLAlchemy's ``OperationalError``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, Result, create_engine, event
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.orm import Session, sessionmaker

from db.errors import DatabaseBusy, DatabaseUnreachable, database_error

READONLY = "darkroom_readonly"


@dataclass(frozen=True)
class SqliteTuning:
    busy_timeout_ms: int = 15_000
    cache_size_kib: int = 32_768
    synchronous: str = "NORMAL"


def is_sqlite(engine_or_url: Engine | str) -> bool:
    url = engine_or_url.url if isinstance(engine_or_url, Engine) else make_url(engine_or_url)
    return url.get_backend_name() == "sqlite"


def sqlite_file(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL, its ``?query`` dropped (None for other backends and ``:memory:``).

    The one reading of a SQLite URL as a path: the database, the queue
    (huey's ``sqlite:///`` URL has the same form), maintenance, status.

    >>> sqlite_file("sqlite:////srv/darkroom/app.db?timeout=5")
    PosixPath('/srv/darkroom/app.db')
    >>> sqlite_file("sqlite:///data/queue.db"), sqlite_file("redis://localhost:6379/0")
    (PosixPath('data/queue.db'), None)
    """
    if not url.startswith("sqlite"):
        return None
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    return Path(u.database)


def make_engine(url: str, tuning: SqliteTuning = SqliteTuning(), **kwargs: Any) -> Engine:
    """Build an engine for ``url`` (SQLite or PostgreSQL).

    >>> engine = make_engine("sqlite:///data/app.db")
    """
    if not is_sqlite(url):
        kwargs.setdefault("pool_pre_ping", True)
        return _name_errors(create_engine(url, **kwargs))

    connect_args = kwargs.pop("connect_args", {})
    # The busy timeout is also set by pragma; this covers the connect itself.
    connect_args.setdefault("timeout", tuning.busy_timeout_ms / 1000)
    connect_args.setdefault("check_same_thread", False)
    engine = create_engine(url, connect_args=connect_args, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module so the
        # "begin" hook below decides how each transaction starts.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {int(tuning.busy_timeout_ms)}")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute(f"PRAGMA synchronous = {tuning.synchronous}")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute(f"PRAGMA cache_size = -{int(tuning.cache_size_kib)}")
        cur.execute("PRAGMA temp_store = MEMORY")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get(READONLY):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return _name_errors(engine)


def _name_errors(engine: Engine) -> Engine:
    """Make ``engine`` raise DatabaseBusy / DatabaseUnreachable instead of SQLAlchemy's errors."""
    url = engine.url.render_as_string(hide_password=True)

    @event.listens_for(engine, "handle_error")
    def _translate(context: ExceptionContext) -> DatabaseBusy | DatabaseUnreachable | None:
        exc = context.sqlalchemy_exception
        if context.is_pre_ping or exc is None:
            return None  # a failed pre-ping only means "reconnect"
        # Refused while connecting for another reason (credentials, no such
        # database): for us, the database does not answer.
        return database_error(exc, url, refused_is_down=context.connection is None)

    return engine


def sessions(engine: Engine) -> sessionmaker[Session]:
    """Session factory for writes (``BEGIN IMMEDIATE`` on SQLite)."""
    return sessionmaker(engine, expire_on_commit=False)


def read_sessions(engine: Engine) -> sessionmaker[Session]:
    """Session factory for reads (deferred transactions on SQLite)."""
    return sessionmaker(engine.execution_options(**{READONLY: True}), expire_on_commit=False)


def rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE/DELETE run through a session touched.

    ``Session.execute`` is typed as returning a plain ``Result``; for DML it is
    a ``CursorResult``, which is what carries ``rowcount``.
    """
    return cast(CursorResult[Any], result).rowcount


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """A session in one write transaction, committed on success."""
    with sessions(engine).begin() as session:
        yield session
