"""Intake: put an original in the media store, insert its row, enqueue it.

The row is written before the message: a crash between the two leaves a
``pending`` row that the reconciler enqueues, so nothing is lost.
"""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from db import images
from db.ids import uuid7
from jobs import lanes, media
from jobs.imaging import Limits
from jobs.imaging.recipes import stored_name
from jobs.queue import queue_errors
from jobs.tasks import TaskSet

IMAGE_SUFFIXES = frozenset({
    ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".gif", ".tif", ".tiff", ".bmp",
    ".avif", ".heic", ".heif",
})


@dataclass(frozen=True)
class Submitted:
    image_id: str
    filename: str
    sha256: str
    size: int
    queued: bool = True  # False: recorded, waiting for the queue (the reconciler enqueues it)


def iter_image_files(root: Path) -> Iterator[Path]:
    """Image files under ``root`` by suffix, in a stable order, skipping hidden entries."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES:
                yield Path(dirpath) / name


def submit_file(engine: Engine, tasks: TaskSet, media_dir: Path, src: Path,
                metadata: dict[str, Any] | None = None, image_id: str | None = None,
                lane_by: tuple[Limits, int] | None = None, recipe: str | None = None) -> Submitted:
    """Store, record and enqueue one file; returns the new image's id.

    ``recipe``: the recipe's name (None or ``default``: stored as NULL); the caller checks it exists.

    ``lane_by=(limits, large_pixels)`` reads the header to put big images in the large lane.
    """
    image_id = image_id or uuid7()
    mime = mimetypes.guess_type(src.name)[0] or "application/octet-stream"
    with media.new_original(media_dir, image_id, src.suffix) as original:
        original.copy_from(src)
        original.close()
        lane = lanes.lane_of(original.tmp, *lane_by) if lane_by else None
        images.insert_image(engine, image_id=image_id, filename=src.name, original_path=original.rel,
                            mime_type=mime, size=original.size, hash=original.digest, metadata=metadata,
                            owns_original=True, lane=lane, recipe=stored_name(recipe), enqueued=True)
    digest, size = original.digest, original.size
    try:
        tasks.enqueue_images([image_id], lane=lane)
    except queue_errors():  # the row is the truth: the reconciler enqueues it when the queue is back
        return Submitted(image_id, src.name, digest, size, queued=False)
    images.mark_enqueued(engine, [image_id])
    return Submitted(image_id, src.name, digest, size)
