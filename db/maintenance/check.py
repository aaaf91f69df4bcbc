"""Integrity checks: ``quick_check`` on a schedule, ``integrity_check`` on demand.

Both come with ``foreign_key_check``. A problem raises :class:`DutyFailed`
(logged at error level, recorded as a ``failed`` run, shown by ``darkroom
status``) carrying what SQLite reported. PostgreSQL checks its own pages; the
duty there only proves the database answers.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import Engine, text

from db.maintenance.errors import DutyFailed
from db.maintenance.files import connect, sqlite_path

log = logging.getLogger(__name__)

MAX_REPORTED = 20


def check(engine: Engine, *, full: bool = False) -> dict[str, Any]:
    """Run ``quick_check`` (or ``integrity_check`` when ``full``) and ``foreign_key_check``.

    >>> check(engine)  # doctest: +SKIP
    {'kind': 'quick_check', 'result': 'ok', 'foreign_key_problems': 0, 'seconds': 0.01}
    """
    path = sqlite_path(engine)
    began = time.perf_counter()
    if path is None:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return {"kind": "connect", "result": "ok", "seconds": round(time.perf_counter() - began, 3)}
    kind = "integrity_check" if full else "quick_check"
    with connect(path, readonly=True) as conn:
        problems = [r[0] for r in conn.execute(f"PRAGMA {kind}({MAX_REPORTED})").fetchall()]
        fk = conn.execute("PRAGMA foreign_key_check").fetchall()
    figures: dict[str, Any] = {
        "kind": kind,
        "result": "ok" if problems == ["ok"] else problems,
        "foreign_key_problems": len(fk),
        "seconds": round(time.perf_counter() - began, 3),
    }
    if fk:
        figures["foreign_key_sample"] = [
            {"table": t, "rowid": rowid, "parent": parent} for t, rowid, parent, _ in fk[:MAX_REPORTED]]
    if problems != ["ok"] or fk:
        log.error("database check of %s failed: %s; %d foreign-key problems", path, problems[:3], len(fk))
        raise DutyFailed(f"{kind} of {path} found problems: {problems[:3]}; "
                         f"{len(fk)} foreign-key violations", figures)
    return figures
