"""Online backups of the shared SQLite database, checked and rotated.

The copy is made with SQLite's backup API in one step (``pages=-1``): it
reads one consistent snapshot, so it holds every transaction committed before
it began, and in WAL mode writers keep committing meanwhile (a plain file copy
of a WAL database can miss or tear recent commits). The copy is written under
a temporary name, switched to ``journal_mode=DELETE`` so it is one
self-contained file, checked with ``PRAGMA integrity_check``, and only then
renamed to ``<stem>-YYYYmmddTHHMMSSffffffZ.db``. Retention keeps the newest
``keep`` files of that pattern and never touches anything else in the folder.

PostgreSQL is backed up with its own tools (``pg_dump``); this duty says so.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from db.maintenance.errors import DutyFailed, MaintenanceError, TargetError
from db.maintenance.files import connect, sqlite_path

log = logging.getLogger(__name__)

STAMP = "%Y%m%dT%H%M%S%fZ"


def _require_sqlite(engine: Engine) -> Path:
    path = sqlite_path(engine)
    if path is None:
        raise MaintenanceError(f"backup of a {engine.dialect.name} database: use its own tools (pg_dump)")
    return path


def backup_to(engine: Engine, dest: Path, *, overwrite: bool = False) -> dict[str, Any]:
    """Copy the live database to ``dest`` and check the copy.

    >>> backup_to(engine, Path("/tmp/app-copy.db"))["integrity"]  # doctest: +SKIP
    'ok'
    """
    return backup_file(_require_sqlite(engine), dest, overwrite=overwrite)


def backup_file(source: Path, dest: Path, *, overwrite: bool = False) -> dict[str, Any]:
    """Online backup of the SQLite file ``source`` into ``dest`` (see module docs)."""
    dest = Path(dest)
    if dest.exists() and not overwrite:
        raise MaintenanceError(f"backup target already exists: {dest}")
    if not dest.parent.is_dir():
        raise TargetError(f"backup folder not found: {dest.parent}")
    tmp = dest.with_name(f".tmp-{dest.name}-{os.getpid()}")
    began = time.perf_counter()
    try:
        with connect(source, readonly=True) as src:
            try:
                out = sqlite3.connect(tmp, isolation_level=None)
            except sqlite3.Error as exc:
                raise TargetError(f"backup target cannot be written: {dest} ({exc})") from exc
            try:
                src.backup(out, pages=-1)
                out.execute("PRAGMA journal_mode = DELETE")
                problems = [r[0] for r in out.execute("PRAGMA integrity_check").fetchall()]
                rows = out.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0]
            except sqlite3.Error as exc:
                raise TargetError(f"backup to {dest} failed: {exc}") from exc
            finally:
                out.close()
        seconds = time.perf_counter() - began
        figures: dict[str, Any] = {"path": str(dest), "bytes": tmp.stat().st_size,
                                   "seconds": round(seconds, 3), "schema_objects": rows,
                                   "integrity": "ok" if problems == ["ok"] else problems[:20]}
        if problems != ["ok"]:
            raise DutyFailed(f"backup copy failed integrity_check: {problems[:3]}", figures)
        os.replace(tmp, dest)
        log.info("backup of %s written to %s (%d bytes, %.2f s)", source, dest, figures["bytes"], seconds)
        return figures
    finally:
        tmp.unlink(missing_ok=True)


def backup_name(stem: str, when: datetime | None = None) -> str:
    when = when or datetime.now(UTC)
    return f"{stem}-{when.strftime(STAMP)}.db"


def backups_in(folder: Path, stem: str) -> list[Path]:
    """Backups made by :func:`backup` for ``stem``, oldest first."""
    pattern = re.compile(re.escape(stem) + r"-\d{8}T\d{12}Z\.db\Z")
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if pattern.match(p.name))


def backup(engine: Engine, folder: Path, *, keep: int = 7) -> dict[str, Any]:
    """The backup duty: a timestamped, checked copy in ``folder``; keep the newest ``keep``.

    >>> backup(engine, Path("data/backups"), keep=7)["kept"]  # doctest: +SKIP
    7
    """
    if keep < 1:
        raise ValueError("keep must be >= 1")
    source = _require_sqlite(engine)
    folder.mkdir(parents=True, exist_ok=True)
    figures = backup_file(source, folder / backup_name(source.stem))
    existing = backups_in(folder, source.stem)
    removed = existing[:-keep]
    for old in removed:
        old.unlink(missing_ok=True)
        log.info("backup retention removed %s", old)
    figures.update(kept=len(existing) - len(removed), removed=[p.name for p in removed])
    return figures
