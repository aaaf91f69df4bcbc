"""Open the SQLite file behind an engine (or the queue's file) directly.

Checkpoints, backups, checks and ``PRAGMA optimize`` run on a plain
``sqlite3`` connection of their own: the engine's connections start every
transaction with ``BEGIN IMMEDIATE``, and ``wal_checkpoint``, ``VACUUM`` and
the backup API want no transaction around them. Opening the file also gives
one place that turns "missing", "unreadable" and "not a database" into a
clear :class:`TargetError` instead of silently creating an empty file.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, inspect
from sqlalchemy.exc import SQLAlchemyError

from db.engine import sqlite_file
from db.errors import DatabaseBusy, DatabaseUnreachable
from db.maintenance.errors import TargetError

DEFAULT_BUSY_MS = 5_000


def sqlite_path(engine: Engine) -> Path | None:
    """The file of an SQLite engine; ``None`` for other databases."""
    if engine.url.get_backend_name() != "sqlite":
        return None
    path = sqlite_file(engine.url.render_as_string(hide_password=False))
    if path is None:
        raise TargetError("the database is in memory: there is no file to maintain")
    return path


def require_file(path: Path, what: str = "database") -> Path:
    """Raise :class:`TargetError` unless ``path`` is an existing, readable file."""
    if not path.exists():
        raise TargetError(f"{what} not found: {path}")
    if not path.is_file():
        raise TargetError(f"{what} is not a file: {path}")
    if not os.access(path, os.R_OK):
        raise TargetError(f"{what} is not readable (permission denied): {path}")
    return path


@contextmanager
def connect(path: Path, *, what: str = "database", readonly: bool = False,
            busy_ms: int = DEFAULT_BUSY_MS) -> Iterator[sqlite3.Connection]:
    """A plain autocommit connection to an existing SQLite file.

    >>> with connect(Path("data/app.db")) as conn:  # doctest: +SKIP
    ...     conn.execute("PRAGMA quick_check").fetchall()
    [('ok',)]
    """
    require_file(path, what)
    mode = "ro" if readonly else "rw"  # never "rwc": a typo must not create a file
    try:
        conn = sqlite3.connect(f"file:{path}?mode={mode}", uri=True, isolation_level=None,
                               timeout=busy_ms / 1000)
    except sqlite3.Error as exc:
        raise TargetError(f"{what} cannot be opened: {path} ({exc})") from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_ms)}")
        try:
            conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()
        except sqlite3.DatabaseError as exc:
            raise TargetError(f"{what} is not a readable SQLite database: {path} ({exc})") from exc
        yield conn
    finally:
        conn.close()


def wal_path(path: Path) -> Path:
    return path.with_name(path.name + "-wal")


def wal_bytes(path: Path) -> int:
    """Size of the write-ahead log next to ``path`` (0 when there is none)."""
    try:
        return wal_path(path).stat().st_size
    except FileNotFoundError:
        return 0


def require_database(engine: Engine) -> None:
    """Raise :class:`TargetError` unless the shared database exists, opens and has Darkroom's tables.

    Maintenance commands call this first, so a typo in the URL never creates
    an empty database file to "maintain".
    """
    path = sqlite_path(engine)
    if path is not None:
        with connect(path, readonly=True):
            pass
    try:
        present = inspect(engine).has_table("maintenance_runs")
    except (SQLAlchemyError, DatabaseBusy, DatabaseUnreachable) as exc:
        url = engine.url.render_as_string(hide_password=True)
        raise TargetError(f"database cannot be reached: {url} ({exc.__class__.__name__}: "
                          f"{str(exc).splitlines()[0]})") from exc
    if not present:
        raise TargetError(f"database has no Darkroom tables: {path or engine.url.database}; "
                          "run `darkroom migrate` first")
