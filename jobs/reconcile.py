"""The reconciler: the images table is the truth, queue messages are hints.

It re-enqueues rows that are ``pending`` but were not enqueued recently
(another program only inserted a row, or a message was lost), and rows whose
``processing`` lease expired (the worker died). A row whose attempts are spent
is ``failed`` with a message naming the attempts instead of being retried.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, and_, or_, select, update

from db.engine import read_sessions, write_session
from db.models import Image, Status

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReconcileResult:
    requeued_pending: int = 0
    requeued_expired: int = 0
    given_up: int = 0


def reconcile(engine: Engine, enqueue: Callable[[list[str]], None], *, requeue_after_s: float,
              max_attempts: int, batch: int = 1000, now: float | None = None) -> ReconcileResult:
    """Re-enqueue forgotten pending rows and expired leases; give up on spent ones."""
    now = now or time.time()
    with read_sessions(engine)() as s:
        pending = list(s.scalars(
            select(Image.id).where(
                or_(Image.status == Status.PENDING.value, Image.status.is_(None)),
                or_(Image.enqueued_at.is_(None), Image.enqueued_at < now - requeue_after_s))
            .order_by(Image.id).limit(batch)))
        expired = s.execute(
            select(Image.id, Image.attempts, Image.error).where(
                Image.status == Status.PROCESSING.value,
                or_(Image.lease_expires_at.is_(None), Image.lease_expires_at < now))
            .limit(batch)).all()
    spent = [(i, a, e) for i, a, e in expired if a >= max_attempts]
    retry = [i for i, a, _ in expired if a < max_attempts]
    for image_id, attempts, error in spent:
        reason = f"gave up after {attempts} attempts; last error: " + (
            error or "the worker stopped while processing it (lease expired)")
        with write_session(engine) as ws:
            ws.execute(update(Image).where(
                and_(Image.id == image_id, Image.status == Status.PROCESSING.value,
                     or_(Image.lease_expires_at.is_(None), Image.lease_expires_at < now)))
                .values(status=Status.FAILED.value, error=reason, lease_owner=None,
                        lease_expires_at=None, updated_at=time.time()))
    todo = pending + retry
    if todo:
        with write_session(engine) as ws:
            ws.execute(update(Image).where(Image.id.in_(todo)).values(enqueued_at=time.time()))
        enqueue(todo)
    result = ReconcileResult(len(pending), len(retry), len(spent))
    if todo or spent:
        log.info("reconcile: re-enqueued %d pending, %d expired leases; gave up on %d",
                 *(result.requeued_pending, result.requeued_expired, result.given_up))
    return result
