"""Figures read from the shared database and the files beside it.

Plain functions of an Engine (or settings) that ``darkroom status``, the
metrics endpoint, ``darkroom health`` and the status page share, so the
four always agree on what a number means.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, case, func, or_, select, text

from db.engine import read_sessions, sqlite_file
from db.maintenance.runs import latest_run_ids
from db.models import Image, ImageVariant, MaintenanceRun, Status

if TYPE_CHECKING:
    from jobs.embeddings.store import VectorStore

log = logging.getLogger(__name__)

THROUGHPUT_WINDOWS_S = (60, 300, 900)
FAILED_OUTCOMES = frozenset({"failed", "error"})


@dataclass(frozen=True)
class DutyRun:
    """The last run of one maintenance duty (or the reconciler)."""

    name: str
    started_at: float
    finished_at: float | None
    outcome: str
    figures: dict[str, Any] | None
    error: str | None
    host: str | None

    @property
    def duration_s(self) -> float | None:
        return None if self.finished_at is None else self.finished_at - self.started_at

    @property
    def ok(self) -> bool:
        return self.finished_at is not None and self.error is None and self.outcome not in FAILED_OUTCOMES


def oldest_pending_age_s(engine: Engine, now: float | None = None) -> float | None:
    """Seconds since the oldest ``pending`` row was created; None when nothing is pending."""
    with read_sessions(engine)() as s:
        oldest = s.scalar(select(func.min(Image.created_at)).where(
            or_(Image.status == Status.PENDING.value, Image.status.is_(None))))
    return None if oldest is None else max(0.0, (now or time.time()) - oldest)


def recipe_counts(engine: Engine) -> dict[str, dict[str, int]]:
    """Rows per recipe and status: ``{"default": {"pending": 0, ...}, "avatar": {...}}``.

    A NULL recipe is ``default`` (contract version 2), a NULL status counts
    as pending, as in ``db.images.counts``; ``default`` is always present, other
    recipes only when they have rows. One scan of the (recipe, status) index.
    """
    empty = {s.value: 0 for s in Status}
    out: dict[str, dict[str, int]] = {"default": dict(empty)}
    with read_sessions(engine)() as s:
        for recipe, status, n in s.execute(
                select(Image.recipe, Image.status, func.count()).group_by(Image.recipe, Image.status)):
            counts = out.setdefault(recipe or "default", dict(empty))
            counts[status if status in empty else Status.PENDING.value] += n
    return dict(sorted(out.items(), key=lambda kv: (kv[0] != "default", kv[0])))


def throughput(engine: Engine, now: float | None = None,
               windows_s: tuple[int, ...] = THROUGHPUT_WINDOWS_S) -> list[dict[str, Any]]:
    """Images completed in each recent window (from ``completed_at``), and per minute."""
    now = now or time.time()
    # One range scan of the completed_at index for all windows.
    sums = [func.coalesce(func.sum(case((Image.completed_at >= now - w, 1), else_=0)), 0) for w in windows_s]
    with read_sessions(engine)() as s:
        row = s.execute(select(*sums).where(Image.completed_at >= now - max(windows_s),
                                            _completed_by_time())).one()
    return [{"window_s": w, "completed": int(n), "per_minute": round(int(n) * 60 / w, 2)}
            for w, n in zip(windows_s, row)]


def _completed_by_time() -> Any:
    """``status = 'completed'`` written so SQLite cannot use the status index for it.

    With the plain comparison SQLite picks the (status, lease) index, reads
    every completed row and sorts them; through coalesce() it walks the
    completed_at index instead and stops after the few rows it needs.
    """
    return func.coalesce(Image.status, "") == Status.COMPLETED.value


def failure_groups(engine: Engine, groups: int = 10, examples: int = 3) -> list[dict[str, Any]]:
    """Failed images grouped by error, largest group first, with the newest example ids."""
    with read_sessions(engine)() as s:
        rows = s.execute(
            select(Image.error, func.count(), func.max(Image.updated_at))
            .where(Image.status == Status.FAILED.value)
            .group_by(Image.error).order_by(func.count().desc(), func.max(Image.updated_at).desc())
            .limit(groups)).all()
        out = []
        for error, n, last in rows:
            cond = Image.error.is_(None) if error is None else Image.error == error
            ids = list(s.scalars(select(Image.id).where(Image.status == Status.FAILED.value, cond)
                                 .order_by(Image.updated_at.desc(), Image.id.desc()).limit(examples)))
            out.append({"error": error, "count": n, "last_at": last, "example_ids": ids})
    return out


def recent_failures(engine: Engine, limit: int = 20) -> list[dict[str, Any]]:
    with read_sessions(engine)() as s:
        rows = s.execute(select(Image.id, Image.filename, Image.error, Image.updated_at, Image.attempts)
                         .where(Image.status == Status.FAILED.value)
                         .order_by(Image.updated_at.desc(), Image.id.desc()).limit(limit)).all()
    return [{"id": i, "filename": f, "error": e, "failed_at": t, "attempts": a} for i, f, e, t, a in rows]


def recent_completed(engine: Engine, limit: int = 12) -> list[dict[str, Any]]:
    """Recently completed images, each with one variant to show (the smallest, WebP first)."""
    with read_sessions(engine)() as s:
        rows = s.execute(select(Image.id, Image.filename, Image.width, Image.height, Image.completed_at)
                         .where(_completed_by_time(), Image.completed_at.is_not(None))
                         .order_by(Image.completed_at.desc()).limit(limit)).all()
        out = []
        for image_id, filename, w, h, done in rows:
            variant = s.execute(select(ImageVariant.id, ImageVariant.width, ImageVariant.format)
                                .where(ImageVariant.image_id == image_id)
                                .order_by((ImageVariant.format != "webp"), ImageVariant.width)
                                .limit(1)).first()
            out.append({"id": image_id, "filename": filename, "width": w, "height": h,
                        "completed_at": done,
                        "variant": None if variant is None else
                        {"id": variant[0], "width": variant[1], "format": variant[2]}})
    return out


def last_duty_runs(engine: Engine) -> list[DutyRun]:
    """The latest run of each duty recorded in ``maintenance_runs`` (see ``latest_run_ids``), by name."""
    with read_sessions(engine)() as s:
        rows = s.scalars(select(MaintenanceRun).where(MaintenanceRun.id.in_(latest_run_ids()))
                         .order_by(MaintenanceRun.name)).all()
    return [DutyRun(r.name, r.started_at, r.finished_at, r.outcome, _json_or_none(r.figures), r.error, r.host)
            for r in rows]


def last_ok_run_at(engine: Engine) -> dict[str, float]:
    """Start time of the latest successful run of each duty."""
    with read_sessions(engine)() as s:
        rows = s.execute(select(MaintenanceRun.name, func.max(MaintenanceRun.started_at))
                         .where(MaintenanceRun.finished_at.is_not(None), MaintenanceRun.error.is_(None),
                                MaintenanceRun.outcome.not_in(FAILED_OUTCOMES))
                         .group_by(MaintenanceRun.name)).all()
    return dict(rows)


def duty_totals(engine: Engine) -> list[tuple[str, str, int, float]]:
    """(duty, outcome, runs, summed duration of finished runs) for the metrics."""
    with read_sessions(engine)() as s:
        rows = s.execute(select(
            MaintenanceRun.name, MaintenanceRun.outcome, func.count(),
            func.coalesce(func.sum(MaintenanceRun.finished_at - MaintenanceRun.started_at), 0.0))
            .group_by(MaintenanceRun.name, MaintenanceRun.outcome)).all()
    return [(n, o, c, float(d or 0.0)) for n, o, c, d in rows]


def _json_or_none(raw: str | None) -> dict[str, Any] | None:
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return {"raw": raw}
    return value if isinstance(value, dict) else {"value": value}


# --- storage ------------------------------------------------------------------


def file_sizes(path: Path) -> dict[str, Any]:
    def size(p: Path) -> int:
        try:
            return p.stat().st_size
        except FileNotFoundError:
            return 0

    return {"backend": "sqlite", "path": str(path), "db_bytes": size(path),
            "wal_bytes": size(path.with_name(path.name + "-wal"))}


def database_storage(engine: Engine) -> dict[str, Any]:
    """Database and WAL file sizes (SQLite), or the database size (PostgreSQL)."""
    path = sqlite_file(str(engine.url))
    if path is not None:
        return file_sizes(path)
    out: dict[str, Any] = {"backend": engine.dialect.name, "db_bytes": None, "wal_bytes": None}
    if engine.dialect.name == "postgresql":
        with read_sessions(engine)() as s:
            out["db_bytes"] = s.scalar(text("SELECT pg_database_size(current_database())"))
    return out


def queue_storage(queue_url: str) -> dict[str, Any]:
    path = sqlite_file(queue_url)
    if path is not None:
        return file_sizes(path)
    return {"backend": queue_url.split(":", 1)[0], "db_bytes": None, "wal_bytes": None}


def vector_rows(directory: Path, open_store: Callable[[], VectorStore]) -> dict[str, Any] | None:
    """Rows per embedding model in the LanceDB store at ``directory``, when there is one.

    LanceDB is optional here: without it (or without a store on disk) the
    answer is None rather than an error. ``open_store`` opens the configured
    store (the composition root builds it).
    """
    if not directory.is_dir():
        return None
    try:
        store = open_store()
    except ImportError:
        return None
    try:
        models = {m: store.count(m) for m in store.models()}
    except Exception as exc:  # a broken store is a figure too, not a crash of status
        log.warning("could not read the vector store at %s: %s", directory, exc)
        return {"path": str(directory), "error": str(exc), "rows": None, "models": {}}
    return {"path": str(directory), "rows": sum(models.values()), "models": models}
