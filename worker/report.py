"""What ``darkroom status`` reports, as one JSON-ready dict.

Stable keys (documented in docs/status.md): ``images`` (count per status),
``queue`` (queued, scheduled), ``oldest_pending_age_s``, ``failures``
(grouped by error with example ids).
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import func, or_, select

from db import images
from db.engine import read_sessions
from db.models import Image, Status
from jobs.queue import queue_depth
from worker.app import App


def gather(app: App, failure_groups: int = 10, examples: int = 3) -> dict[str, Any]:
    engine = app.engine
    out: dict[str, Any] = {"images": images.counts(engine)}
    try:
        out["queue"] = queue_depth(app.huey)
    except Exception as exc:  # the queue store being down is itself a status
        out["queue"] = {"error": str(exc)}
    with read_sessions(engine)() as s:
        oldest = s.scalar(select(func.min(Image.created_at)).where(
            or_(Image.status == Status.PENDING.value, Image.status.is_(None))))
        groups = s.execute(
            select(Image.error, func.count(), func.max(Image.updated_at))
            .where(Image.status == Status.FAILED.value)
            .group_by(Image.error).order_by(func.count().desc()).limit(failure_groups)).all()
        failures = []
        for error, n, _last in groups:
            ids = list(s.scalars(select(Image.id).where(
                Image.status == Status.FAILED.value, Image.error == error)
                .order_by(Image.updated_at.desc()).limit(examples)))
            failures.append({"error": error, "count": n, "example_ids": ids})
    out["oldest_pending_age_s"] = round(time.time() - oldest, 1) if oldest else None
    out["failures"] = failures
    if app.settings.embeddings.enabled:
        from jobs.embedding_rows import embedding_counts

        model = app.settings.embeddings.model_name()
        out["embeddings"] = {"model": model, **embedding_counts(engine, model)}
    return out


def render_text(report: dict[str, Any]) -> str:
    c = report["images"]
    lines = [
        "images: " + "  ".join(f"{k} {c[k]}" for k in ("pending", "processing", "completed", "failed")),
    ]
    q = report.get("queue", {})
    if "error" in q:
        lines.append(f"queue: unreachable ({q['error']})")
    else:
        lines.append(f"queue: {q.get('queued', 0)} queued, {q.get('scheduled', 0)} scheduled")
    if report.get("oldest_pending_age_s") is not None:
        lines.append(f"oldest pending: {report['oldest_pending_age_s']:.0f}s")
    if "embeddings" in report:
        e = report["embeddings"]
        lines.append(f"embeddings ({e['model']}): {e['embedded']} embedded, {e['waiting']} waiting, "
                     f"{e['refused']} refused, {e['duplicates']} near-duplicates")
    if report["failures"]:
        lines.append("failures:")
        for f in report["failures"]:
            lines.append(f"  {f['count']:>5} x {f['error']}")
            lines.append(f"        e.g. {', '.join(f['example_ids'])}")
    return "\n".join(lines)
