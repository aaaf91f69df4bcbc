"""Bulk import: many files into Darkroom, each distinct content once.

A file whose SHA-256 matches an image already in the database (``images.hash``)
or one earlier in the same run is skipped and reported as a duplicate. Because
the check is against the database, an interrupted import can simply be run
again: what was recorded is skipped, the rest is imported, nothing twice.

Each file's bytes are gone over once: a file up to ``IN_MEMORY_MAX`` is read
into memory, hashed there, checked for a duplicate and, if new, written into
the media store from that buffer (a duplicate is never written); a larger one
is copied and hashed in the same pass, and removed again if it turns out to
be a duplicate. The lane comes from the same buffer's first bytes
(:func:`jobs.lanes.lane_from_head`). The rows of up to ``BATCH_FILES`` files
are recorded in ONE transaction, then their files are renamed into place and
their messages queued: a database error records none of the batch and leaves
no file behind; Ctrl-C records the files copied so far (a re-run skips them);
a queue outage leaves the rows recorded for the reconciler. A batch is
recorded early, before the next file is read, once its first file has waited
``BATCH_WAIT_S``, and the run's first file at once: the workers start on the
first images while the rest are still being copied.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
import time
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from db import images
from db.engine import read_sessions
from db.ids import uuid7
from db.images import of_recipe
from db.models import Image
from jobs import lanes, media
from jobs.imaging import Limits
from jobs.imaging.recipes import stored_name
from jobs.queue import queue_errors
from jobs.tasks import TaskSet

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Duplicate:
    path: Path
    duplicate_of: str  # the id of the image with the same content


@dataclass
class ImportReport:
    created: list[tuple[Path, str]] = field(default_factory=list)  # (file, new id)
    duplicates: list[Duplicate] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)  # (file, reason)
    unqueued: list[str] = field(default_factory=list)  # ids recorded while the queue was down


def image_with_hash(engine: Engine, digest: str, recipe: str | None = None) -> str | None:
    """The id of an image of ``recipe`` whose original has this SHA-256 (indexed lookup), if any.

    The same photo as an avatar and as a banner is two images: duplicates are by content and recipe.
    """
    with read_sessions(engine)() as s:
        return s.scalars(select(Image.id).where(Image.hash == digest, of_recipe(recipe))
                         .order_by(Image.id).limit(1)).first()


BATCH_FILES = 64  # rows recorded per transaction, at most
BATCH_WAIT_S = 0.1  # ... and a staged file waits at most about this long for its row (and its worker)
IN_MEMORY_MAX = 64 * 1024 * 1024  # files up to this size are read into memory once


class _Duplicate(Exception):
    """Raised into a staged file's block to remove it (its content is already in Darkroom)."""


@dataclass
class _Staged:
    path: Path
    image_id: str
    original: media.NewOriginal
    stack: ExitStack  # holds the new_original block: close() renames the file into place
    lane: str | None

    def abort(self, exc: BaseException) -> None:
        """Leave the block with ``exc``: the temporary file is removed."""
        self.stack.__exit__(type(exc), exc, exc.__traceback__)


def import_files(engine: Engine, tasks: TaskSet, media_dir: Path, files: Iterable[Path],
                 metadata: dict[str, Any] | None = None,
                 on_file: Callable[[Path], None] | None = None,
                 lane_by: tuple[Limits, int] | None = None, recipe: str | None = None) -> ImportReport:
    """Import ``files`` with ``recipe`` (None: ``default``; the caller checks it exists), skipping
    exact duplicates of that recipe; ``on_file`` is called after each one.

    >>> report = import_files(app.engine, app.tasks, media_dir, iter_image_files(Path("photos")))  # doctest: +SKIP
    >>> len(report.created), len(report.duplicates)  # doctest: +SKIP
    (1180, 20)
    """
    report = ImportReport()
    seen: dict[str, str] = {}  # digest -> id, for this run
    batch: list[_Staged] = []
    batch_since = 0.0  # when the batch's first file was staged
    first = True  # the run's first file is recorded at once: a worker can start on it
    try:
        for path in files:
            if batch and time.monotonic() - batch_since >= BATCH_WAIT_S:  # before reading the next file
                _record(engine, tasks, batch, metadata, recipe, report)
                batch = []
            try:
                staged = _stage(engine, media_dir, path, seen, recipe, lane_by, report)
            except OSError as exc:
                report.failed.append((path, f"{type(exc).__name__}: {exc.strerror or exc}"))
                log.warning("could not import %s: %s", path, exc)
            else:
                if staged is not None:
                    if not batch:
                        batch_since = time.monotonic()
                    batch.append(staged)
                    seen[staged.original.digest] = staged.image_id
            if batch and (first or len(batch) >= BATCH_FILES or time.monotonic() - batch_since >= BATCH_WAIT_S):
                _record(engine, tasks, batch, metadata, recipe, report)
                batch, first = [], False
            if on_file is not None:
                on_file(path)
        _record(engine, tasks, batch, metadata, recipe, report)
        batch = []
    except KeyboardInterrupt as exc:  # Ctrl-C: what was copied so far is recorded, as if file by file
        try:
            _record(engine, tasks, batch, metadata, recipe, report)
        except BaseException as again:
            for staged in batch:
                staged.abort(again)
            raise exc from again
        raise
    except BaseException as exc:  # the database refused the batch: no staged file is left behind
        for staged in batch:
            staged.abort(exc)
        raise
    return report


def _stage(engine: Engine, media_dir: Path, path: Path, seen: dict[str, str], recipe: str | None,
           lane_by: tuple[Limits, int] | None, report: ImportReport) -> _Staged | None:
    """Write ``path`` under a temporary name in the media store, hashed on the way; None for a duplicate."""
    data: bytes | None = None
    digest: Any = None
    if path.stat().st_size <= IN_MEMORY_MAX:
        data = path.read_bytes()
        digest = hashlib.sha256(data)
        if _is_duplicate(engine, path, digest.hexdigest(), seen, recipe, report):
            return None
    image_id = uuid7()
    stack = ExitStack()
    try:
        original = stack.enter_context(media.new_original(media_dir, image_id, path.suffix))
        if data is not None:
            original.write_hashed(data, digest)
            head = data[:media.CHUNK]
        else:
            head = original.copy_from(path)
        original.close()
    except BaseException as exc:
        stack.__exit__(type(exc), exc, exc.__traceback__)  # removes the temporary file
        raise
    staged = _Staged(path, image_id, original, stack, None)
    if data is None and _is_duplicate(engine, path, original.digest, seen, recipe, report):
        staged.abort(_Duplicate())
        return None
    if lane_by is not None:
        staged.lane = lanes.lane_from_head(head, original.size, *lane_by) or lanes.lane_of(original.tmp, *lane_by)
    return staged


def _is_duplicate(engine: Engine, path: Path, digest: str, seen: dict[str, str], recipe: str | None,
                  report: ImportReport) -> bool:
    existing = seen.get(digest) or image_with_hash(engine, digest, recipe)
    if existing is None:
        return False
    report.duplicates.append(Duplicate(path, existing))
    log.info("skipped %s: same content as image %s", path, existing)
    return True


def _record(engine: Engine, tasks: TaskSet, batch: list[_Staged], metadata: dict[str, Any] | None,
            recipe: str | None, report: ImportReport) -> None:
    """One transaction for the batch's rows, then the files into place, then the messages."""
    if not batch:
        return
    images.insert_images(engine, [{
        "image_id": s.image_id, "filename": s.path.name, "original_path": s.original.rel,
        "mime_type": mimetypes.guess_type(s.path.name)[0] or "application/octet-stream",
        "size": s.original.size, "hash": s.original.digest, "metadata": metadata, "owns_original": True,
        "lane": s.lane, "recipe": stored_name(recipe), "enqueued": True,  # the reconciler waits for the rename
    } for s in batch])
    staged = list(batch)
    batch.clear()  # from here on the rows exist: nothing of the batch is removed on an error
    for i, s in enumerate(staged):
        try:
            s.stack.close()  # renamed into place
        except BaseException as exc:  # the row stays (the worker fails it: no original); no temporary file stays
            for rest in staged[i + 1:]:
                rest.abort(exc)
            raise
        report.created.append((s.path, s.image_id))
    queued: list[str] = []
    try:
        for s in staged:
            tasks.enqueue_images([s.image_id], lane=s.lane)
            queued.append(s.image_id)
    except queue_errors():  # the rows are the truth: the reconciler enqueues them when the queue is back
        report.unqueued.extend(s.image_id for s in staged[len(queued):])
    images.mark_enqueued(engine, queued)
