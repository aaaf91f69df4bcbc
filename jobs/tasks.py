"""Every huey task, registered on a given huey instance.

Tasks are thin: they fetch the per-process :class:`JobContext` and call a
plain function. Arguments are ids, never ORM objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from huey import Huey

from jobs import context, process

PRIORITY_DEFAULT = 10
PRIORITY_LARGE = 0  # big images wait behind small ones


@dataclass
class TaskSet:
    huey: Huey
    process_image: Any

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


def register(huey: Huey) -> TaskSet:
    @huey.task(name="process_image", priority=PRIORITY_DEFAULT)
    def process_image_task(image_id: str) -> None:
        process.process_image(context.current(), image_id)

    return TaskSet(huey=huey, process_image=process_image_task)
