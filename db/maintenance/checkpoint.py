"""WAL checkpoints: keep the write-ahead logs of the shared and queue databases small.

SQLite's automatic checkpoint (every 1,000 pages) copies frames back into the
database but never shrinks the ``-wal`` file, and it cannot finish while a
reader still uses old frames: one long reader and the log grows for as long
as it reads. This duty looks at the file size:

* below ``threshold_bytes``: nothing to do;
* above it: ``wal_checkpoint(PASSIVE)`` (never waits, never blocks anyone);
* above ``threshold_bytes * truncate_factor``: ``wal_checkpoint(TRUNCATE)``,
  which waits up to ``busy_ms`` for readers and writers and then cuts the
  file to zero bytes.

Those thresholds belong to the schedule. Run by hand (``force="NOW"``, what
``darkroom maintenance checkpoint`` asks for) it checkpoints whatever the
size: PASSIVE first, then TRUNCATE when no reader holds old frames.

When readers keep a checkpoint from completing, it logs a warning with the
size, and the run is recorded with outcome ``warning``.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from db.maintenance.errors import TargetError
from db.maintenance.files import connect, sqlite_path, wal_bytes

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD_BYTES = 32 * 1024 * 1024
DEFAULT_TRUNCATE_FACTOR = 4.0
DEFAULT_CHECKPOINT_BUSY_MS = 2_000  # TRUNCATE holds writers back at most this long


@dataclass(frozen=True)
class CheckpointResult:
    path: str
    mode: str  # none | PASSIVE | TRUNCATE
    wal_bytes_before: int
    wal_bytes_after: int
    log_frames: int = 0
    checkpointed_frames: int = 0
    blocked: bool = False  # readers or a writer kept the checkpoint from completing

    def figures(self) -> dict[str, Any]:
        return asdict(self)


def checkpoint_file(path: Path, *, threshold_bytes: int = DEFAULT_THRESHOLD_BYTES,
                    truncate_factor: float = DEFAULT_TRUNCATE_FACTOR, force: str | None = None,
                    busy_ms: int = DEFAULT_CHECKPOINT_BUSY_MS, what: str = "database") -> CheckpointResult:
    """Checkpoint the WAL of the SQLite file at ``path`` if it is over the threshold.

    ``force`` ("PASSIVE" or "TRUNCATE") checkpoints whatever the size in that
    mode; "NOW" (a person asked) runs PASSIVE, then TRUNCATE if PASSIVE copied
    every frame (so only a reader still in the log can keep the file long).

    >>> checkpoint_file(Path("data/app.db"), threshold_bytes=1 << 20).mode  # doctest: +SKIP
    'TRUNCATE'
    """
    before = wal_bytes(path)
    mode = force or ("TRUNCATE" if before > threshold_bytes * truncate_factor
                     else "PASSIVE" if before > threshold_bytes else "none")
    if mode not in ("none", "PASSIVE", "TRUNCATE", "NOW"):
        raise ValueError(f"checkpoint mode {mode!r}: expected PASSIVE, TRUNCATE or NOW")
    with connect(path, what=what, busy_ms=busy_ms) as conn:
        journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
        if mode == "none" or journal != "wal":
            return CheckpointResult(str(path), "none", before, wal_bytes(path))
        try:
            if mode == "NOW":
                busy, frames, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                mode = "PASSIVE"
                if not busy and done >= frames:
                    busy, t_frames, t_done = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                    if not busy:  # a reader that came in between only keeps the file long: PASSIVE stands
                        mode, frames, done = "TRUNCATE", max(frames, t_frames), max(done, t_done)
                    busy = 0
            else:
                busy, frames, done = conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        except sqlite3.OperationalError as exc:
            raise TargetError(f"{what} could not be checkpointed: {path} ({exc})") from exc
    after = wal_bytes(path)
    # busy=1: TRUNCATE gave up waiting; frames > done: a reader still needs old frames.
    blocked = bool(busy) or (frames >= 0 and done < frames)
    result = CheckpointResult(str(path), mode, before, after, frames, done, blocked)
    if blocked:
        log.warning("WAL checkpoint (%s) of %s could not complete: %d of %d frames copied, "
                    "WAL is %.1f MiB; a long reader or writer holds it", mode, path, done, frames,
                    after / 2**20)
    else:
        log.info("WAL checkpoint (%s) of %s: %.1f -> %.1f MiB", mode, path, before / 2**20, after / 2**20)
    return result


def checkpoint(engine: Engine, queue_db: Path | None = None, *,
               threshold_bytes: int = DEFAULT_THRESHOLD_BYTES,
               truncate_factor: float = DEFAULT_TRUNCATE_FACTOR, force: str | None = None,
               busy_ms: int = DEFAULT_CHECKPOINT_BUSY_MS) -> dict[str, Any]:
    """The checkpoint duty: the shared database, then the queue's SQLite file.

    A missing shared database is an error (``TargetError``); a missing queue
    file is reported and skipped (a Redis queue, or no worker has run yet).

    >>> checkpoint(engine, Path("data/queue.db"))["database"]["mode"]  # doctest: +SKIP
    'none'
    """
    path = sqlite_path(engine)
    figures: dict[str, Any] = {}
    warnings: list[str] = []
    if path is None:
        figures["database"] = {"mode": "none", "note": f"{engine.dialect.name} has no WAL file to watch"}
    else:
        result = checkpoint_file(path, threshold_bytes=threshold_bytes, truncate_factor=truncate_factor,
                                 force=force, busy_ms=busy_ms)
        figures["database"] = result.figures()
        if result.blocked:
            warnings.append(f"database WAL checkpoint blocked at {result.wal_bytes_after} bytes")
    if queue_db is not None:
        if not queue_db.exists():
            figures["queue"] = {"mode": "none", "note": f"queue database not found: {queue_db}"}
        else:
            result = checkpoint_file(queue_db, threshold_bytes=threshold_bytes,
                                     truncate_factor=truncate_factor, force=force, busy_ms=busy_ms,
                                     what="queue database")
            figures["queue"] = result.figures()
            if result.blocked:
                warnings.append(f"queue WAL checkpoint blocked at {result.wal_bytes_after} bytes")
    if warnings:
        figures["warnings"] = warnings
    return figures


def checkpoint_on_shutdown(engine: Engine, queue_db_path: Path | None = None) -> dict[str, Any]:
    """Graceful shutdown: TRUNCATE both WALs so the next start reads no log.

    Never raises: a shutdown must finish. Call it after the consumer has
    stopped its workers and before ``engine.dispose()``.

    >>> checkpoint_on_shutdown(engine, Path("data/queue.db"))  # doctest: +SKIP
    """
    try:
        return checkpoint(engine, queue_db_path, force="TRUNCATE", busy_ms=1_000)
    except Exception as exc:
        log.warning("checkpoint at shutdown failed: %s", exc)
        return {"error": str(exc)}
