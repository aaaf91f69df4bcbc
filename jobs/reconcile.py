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

from sqlalchemy import ColumnElement, Engine, and_, func, or_, select, update

from db.engine import read_sessions, write_session
from db.images import gave_up
from db.models import Image, Status

log = logging.getLogger(__name__)

# A row enqueued this recently may have its message in flight between the
# queue and a worker's claim; leave it alone even when the queue looks empty.
ENQUEUE_SETTLE_S = 2.0


@dataclass(frozen=True)
class ReconcileResult:
    requeued_pending: int = 0
    requeued_expired: int = 0
    given_up: int = 0


def reconcile(engine: Engine, enqueue: Callable[[list[str]], None], *, requeue_after_s: float,
              max_attempts: int, batch: int = 1000, now: float | None = None,
              queue_depth: Callable[[], int] | None = None) -> ReconcileResult:
    """Re-enqueue forgotten pending rows and expired leases; give up on spent ones.

    Which ``pending`` rows count as forgotten depends on the queue (when
    ``queue_depth`` is given), so a long backlog is not flooded with
    duplicate messages:

    - never enqueued (``enqueued_at`` is NULL, e.g. inserted by another program): always;
    - the queue is empty: every row enqueued more than ``ENQUEUE_SETTLE_S``
      (or ``requeue_after_s`` if shorter) ago: its message is gone (a worker
      was killed between dequeue and claim, a producer died before sending);
    - the queue holds fewer messages than there are enqueued pending rows:
      rows enqueued more than ``requeue_after_s`` ago;
    - otherwise: none (a message per row may still be waiting).

    >>> reconcile(engine, tasks.enqueue_images, requeue_after_s=60, max_attempts=5)  # doctest: +SKIP
    ReconcileResult(requeued_pending=1, requeued_expired=0, given_up=0)
    """
    now = now or time.time()
    is_pending = or_(Image.status == Status.PENDING.value, Image.status.is_(None))
    with read_sessions(engine)() as s:
        if queue_depth is None:
            cutoff: float | None = now - requeue_after_s
        else:
            waiting = s.scalar(select(func.count()).select_from(Image).where(
                is_pending, Image.enqueued_at.is_not(None), Image.enqueued_at <= now)) or 0
            depth = queue_depth()
            cutoff = (now - min(ENQUEUE_SETTLE_S, requeue_after_s) if depth == 0
                      else now - requeue_after_s if depth < waiting else None)
        forgotten: ColumnElement[bool] = Image.enqueued_at.is_(None)
        if cutoff is not None:
            forgotten = or_(forgotten, Image.enqueued_at < cutoff)
        pending = list(s.scalars(
            select(Image.id).where(is_pending, forgotten).order_by(Image.id).limit(batch)))
        expired = s.execute(
            select(Image.id, Image.attempts, Image.error).where(
                Image.status == Status.PROCESSING.value,
                or_(Image.lease_expires_at.is_(None), Image.lease_expires_at < now))
            .limit(batch)).all()
    spent = [(i, a, e) for i, a, e in expired if a >= max_attempts]
    retry = [i for i, a, _ in expired if a < max_attempts]
    for image_id, attempts, error in spent:
        reason = gave_up(attempts, error or "the worker stopped while processing it (lease expired)")
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
