"""Keep the query planner informed and give free pages back.

SQLite:

* ``PRAGMA optimize`` on every run: cheap, it re-analyzes only the tables
  whose statistics look stale;
* ``ANALYZE`` when ``analyze=True`` (the scheduler asks for it less often);
* ``PRAGMA incremental_vacuum(chunk)`` while the freelist holds more than
  ``free_pages_threshold`` pages and ``auto_vacuum`` is ``INCREMENTAL``
  (migration 0002 turns it on for existing files). Each chunk is its own short
  write transaction, so writers wait for one chunk, never for the whole file.

PostgreSQL: ``ANALYZE`` on every run and ``VACUUM (ANALYZE)`` when
``analyze=True`` (``VACUUM`` needs autocommit; autovacuum does the rest).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import Engine, text

from db.maintenance.files import connect, sqlite_path

log = logging.getLogger(__name__)

DEFAULT_FREE_PAGES_THRESHOLD = 1_000
DEFAULT_VACUUM_CHUNK_PAGES = 256
AUTO_VACUUM = {0: "NONE", 1: "FULL", 2: "INCREMENTAL"}


def optimize(engine: Engine, *, analyze: bool = False,
             free_pages_threshold: int = DEFAULT_FREE_PAGES_THRESHOLD,
             chunk_pages: int = DEFAULT_VACUUM_CHUNK_PAGES) -> dict[str, Any]:
    """The optimize duty; figures say what ran and how many pages came back.

    >>> optimize(engine, analyze=True)["freed_pages"]  # doctest: +SKIP
    0
    """
    path = sqlite_path(engine)
    if path is None:
        return _optimize_postgres(engine, analyze=analyze)
    began = time.perf_counter()
    figures: dict[str, Any] = {"analyze": analyze}
    with connect(path) as conn:
        conn.execute("PRAGMA optimize")
        if analyze:
            conn.execute("ANALYZE")
        mode = conn.execute("PRAGMA auto_vacuum").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        page = conn.execute("PRAGMA page_size").fetchone()[0]
        figures.update(auto_vacuum=AUTO_VACUUM.get(mode, str(mode)), free_pages_before=free)
        freed = 0
        if free > free_pages_threshold and mode == 2:
            while free > 0:
                # executescript steps the pragma to completion; execute() would
                # free one page per call.
                conn.executescript(f"PRAGMA incremental_vacuum({int(chunk_pages)});")
                now_free = conn.execute("PRAGMA freelist_count").fetchone()[0]
                if now_free >= free:  # nothing more to give back
                    break
                freed += free - now_free
                free = now_free
        elif free > free_pages_threshold:
            figures["warnings"] = [(f"{free} free pages but auto_vacuum is {AUTO_VACUUM.get(mode, mode)}: "
                                   "run `darkroom migrate` (revision 0002) to enable incremental vacuum")]
        figures.update(freed_pages=freed, freed_bytes=freed * page, free_pages_after=free,
                       seconds=round(time.perf_counter() - began, 3))
    log.info("optimize of %s: analyze=%s, freed %d pages", path, analyze, freed)
    return figures


def _optimize_postgres(engine: Engine, *, analyze: bool) -> dict[str, Any]:
    began = time.perf_counter()
    statement = "VACUUM (ANALYZE)" if analyze else "ANALYZE"
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(statement))
    return {"statement": statement, "seconds": round(time.perf_counter() - began, 3)}
