"""Every huey task, registered on a given huey instance.

Tasks are thin: they fetch the per-process :class:`JobContext` and call a
plain function. Arguments are ids, never ORM objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from db.leases import run_once_per_period
from jobs import context
from jobs.embeddings import task as embedding_task
from jobs.huey_import import Huey, crontab
from jobs.outage import OUTAGES, quiet_when_database_down
from jobs.queue import queue_errors, unreachable_queue

PRIORITY_DEFAULT = 10
PRIORITY_LARGE = 0  # big images wait behind small ones


@dataclass
class TaskSet:
    huey: Huey
    process_image: Any
    embed_images: Any = None

    def enqueue_images(self, ids: list[str], delay: float = 0.0, priority: int = PRIORITY_DEFAULT,
                       lane: str | None = None) -> None:
        if lane == "large":
            priority = PRIORITY_LARGE
        for image_id in ids:
            if delay > 0:
                self.process_image.schedule(args=(image_id,), delay=delay, priority=priority)
            else:
                task = self.process_image.s(image_id)
                task.priority = priority
                self.huey.enqueue(task)


def register(huey: Huey, queue_url: str = "") -> TaskSet:
    """The tasks on ``huey``; ``queue_url`` names the queue in outage lines."""
    @huey.task(name="embed_images", priority=PRIORITY_DEFAULT + 1)
    @quiet_when_database_down(lambda: context.current().engine)
    def embed_images_task() -> None:
        result = embedding_task.run(context.current())
        if result.outcome == "skipped":
            # Another process holds the step, and its run may have read the rows before
            # this trigger's image completed: look again in a second, not at the next
            # periodic run a minute away.
            embed_images_task.schedule(delay=1.0)

    @huey.periodic_task(crontab(minute="*"), name="embed_images_periodic")
    @quiet_when_database_down(lambda: context.current().engine)
    def embed_images_periodic() -> None:
        # Safety net for images completed by other programs or while no trigger ran.
        # Every consumer enqueues it: the period lease lets one run per minute.
        ctx = context.current()

        def step() -> None:
            embedding_task.run(ctx)

        if embedding_task.settings_of(ctx) is not None:
            run_once_per_period(ctx.engine, "embed_images_periodic", 60.0, step,
                                owner=ctx.owner, record=False)

    def embed_after(delay: float) -> None:
        if delay > 0:
            embed_images_task.schedule(delay=delay)
        else:  # now: straight onto the queue, not via the scheduler's once-a-second tick
            embed_images_task()

    @huey.task(name="process_image", priority=PRIORITY_DEFAULT)
    def process_image_task(image_id: str) -> None:
        from jobs import (
            image_job,  # Pillow and the imaging modules: the worker preloads them, producers never need them
        )

        ctx = context.current()
        if image_job.process_image(ctx, image_id) != "completed":
            return
        try:
            embedding_task.trigger_after_complete(ctx, embed_after, queue_idle=lambda: huey.pending_count() == 0)
        except queue_errors() as exc:
            # The image is done and recorded; its vector waits for the periodic run
            # (embed_images_periodic), so a queue outage here is an outage line, not
            # a traceback for a task that succeeded.
            down = unreachable_queue(exc, queue_url)
            if down is None:
                raise
            OUTAGES.down(down.where, down.reason)

    return TaskSet(huey=huey, process_image=process_image_task, embed_images=embed_images_task)
