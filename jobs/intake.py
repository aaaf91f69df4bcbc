"""Intake: put an original in the media store, insert its row, enqueue it.

The row is written before the message: a crash between the two leaves a
``pending`` row that the reconciler enqueues, so nothing is lost.
"""

from __future__ import annotations

import hashlib
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


def store_original(media_dir: Path, image_id: str, src: Path) -> tuple[str, str, int]:
    """Copy ``src`` into the media store; returns (relative path, sha256, size)."""
    rel = media.original_relpath(image_id, src.suffix)
    dest = media_dir / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    size = 0
    tmp = dest.with_name(media.TMP_PREFIX + dest.name)
    try:
        with open(src, "rb") as inp, open(tmp, "wb") as out:
            for chunk in iter(lambda: inp.read(1024 * 1024), b""):
                h.update(chunk)
                size += len(chunk)
                out.write(chunk)
        os.replace(tmp, dest)
    except BaseException:  # a full disk, a read error: leave no partial original behind
        tmp.unlink(missing_ok=True)
        raise
    return rel, h.hexdigest(), size


def submit_file(engine: Engine, tasks: TaskSet, media_dir: Path, src: Path,
                metadata: dict[str, Any] | None = None, image_id: str | None = None,
                lane_by: tuple[Limits, int] | None = None, recipe: str | None = None) -> Submitted:
    """Store, record and enqueue one file; returns the new image's id.

    ``recipe``: the recipe's name (None or ``default``: stored as NULL); the caller checks it exists.

    ``lane_by=(limits, large_pixels)`` reads the header to put big images in the large lane.
    """
    image_id = image_id or uuid7()
    rel, digest, size = store_original(media_dir, image_id, src)
    mime = mimetypes.guess_type(src.name)[0] or "application/octet-stream"
    lane = lanes.lane_of(media_dir / rel, *lane_by) if lane_by else None
    images.insert_image(engine, image_id=image_id, filename=src.name, original_path=rel,
                        mime_type=mime, size=size, hash=digest, metadata=metadata,
                        owns_original=True, lane=lane, recipe=stored_name(recipe))
    try:
        tasks.enqueue_images([image_id], lane=lane)
    except queue_errors():  # the row is the truth: the reconciler enqueues it when the queue is back
        return Submitted(image_id, src.name, digest, size, queued=False)
    images.mark_enqueued(engine, [image_id])
    return Submitted(image_id, src.name, digest, size)
