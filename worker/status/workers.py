"""Who is working: live daemons (fresh heartbeat) and the images each holds.

Read side of ``workers``; the daemon's own heartbeat writer is :mod:`worker.heartbeat`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import Engine, select

from db.engine import read_sessions
from db.models import Image, Status, Worker


@dataclass(frozen=True)
class LiveWorker:
    """A live worker and the images it holds right now."""

    id: str
    host: str
    pid: int
    version: str
    concurrency: int
    started_at: float
    heartbeat_at: float
    processing: tuple[tuple[str, str, float | None], ...]  # (image id, filename, started_at)


def live_workers(engine: Engine, timeout_s: float, now: float | None = None,
                 host: str | None = None) -> list[LiveWorker]:
    """Workers with a fresh heartbeat, each with the images it is processing now."""
    now = now or time.time()
    with read_sessions(engine)() as s:
        q = select(Worker).where(Worker.stopped_at.is_(None), Worker.heartbeat_at >= now - timeout_s)
        if host is not None:
            q = q.where(Worker.host == host)
        rows = list(s.scalars(q.order_by(Worker.started_at)))
        out = []
        for w in rows:
            # Leases are "<worker id>/<pid>": the prefix finds this daemon's children.
            held = s.execute(select(Image.id, Image.filename, Image.started_at).where(
                Image.status == Status.PROCESSING.value,
                Image.lease_owner.startswith(w.id + "/", autoescape=True))
                .order_by(Image.started_at)).all()
            out.append(LiveWorker(id=w.id, host=w.host, pid=w.pid, version=w.version,
                                  concurrency=w.concurrency, started_at=w.started_at,
                                  heartbeat_at=w.heartbeat_at,
                                  processing=tuple((i, f, t) for i, f, t in held)))
    return out


def stale_count(engine: Engine, timeout_s: float, now: float | None = None) -> int:
    """Rows of workers that stopped heartbeating without a clean stop (not yet reaped)."""
    now = now or time.time()
    with read_sessions(engine)() as s:
        return len(list(s.scalars(select(Worker.id).where(
            Worker.stopped_at.is_(None), Worker.heartbeat_at < now - timeout_s))))
