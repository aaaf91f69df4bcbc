"""The reconciler on a real SQLite database: which rows it re-enqueues, and when it gives up."""

from __future__ import annotations

import time

from sqlalchemy import update

from db import images
from db.engine import write_session
from db.models import Image
from jobs.reconcile import reconcile
from worker.app import App


def _row(app: App, name: str, enqueued_ago: float | None) -> str:
    image_id = images.insert_image(app.engine, filename=name, original_path=f"/nowhere/{name}",
                                   mime_type="image/jpeg", size=1)
    if enqueued_ago is not None:
        with write_session(app.engine) as s:
            s.execute(update(Image).where(Image.id == image_id)
                      .values(enqueued_at=time.time() - enqueued_ago))
    return image_id


def _run(app: App, depth: int | None) -> list[str]:
    sent: list[str] = []
    reconcile(app.engine, sent.extend, requeue_after_s=60, max_attempts=3,
              queue_depth=None if depth is None else (lambda: depth))
    return sorted(sent)


def test_pending_rows_are_requeued_according_to_the_queue(app: App) -> None:
    never = _row(app, "never.jpg", None)
    recent = _row(app, "recent.jpg", 10)
    old = _row(app, "old.jpg", 100)
    # Two rows wait for a message and the queue holds two: only the never-enqueued one.
    assert _run(app, depth=2) == [never]
    # `never` is now enqueued too: three rows wait, the queue holds fewer
    # messages, so the one enqueued longer than requeue_after_s ago goes again.
    assert _run(app, depth=1) == [old]
    # An empty queue: every pending row lost its message, recent or not.
    with write_session(app.engine) as s:
        s.execute(update(Image).where(Image.id.in_([never, recent, old]))
                  .values(enqueued_at=time.time() - 10))
    assert _run(app, depth=0) == sorted([never, recent, old])
    # A row enqueued a moment ago may be between dequeue and claim: left alone.
    with write_session(app.engine) as s:
        s.execute(update(Image).values(enqueued_at=time.time()))
    assert _run(app, depth=0) == []


def test_expired_leases_are_requeued_or_given_up_after_the_attempts(app: App) -> None:
    retry, spent = _row(app, "a.jpg", 5), _row(app, "b.jpg", 5)
    for image_id, attempts in ((retry, 1), (spent, 3)):
        with write_session(app.engine) as s:
            s.execute(update(Image).where(Image.id == image_id).values(
                status="processing", attempts=attempts, lease_owner="gone/1",
                lease_expires_at=time.time() - 1, error="cannot write variant x: disk full"))
    assert _run(app, depth=5) == [retry]
    row = images.get(app.engine, spent)
    assert row is not None and row.status == "failed"
    assert row.error == "gave up after 3 attempts; last error: cannot write variant x: disk full"
