"""Bulk import: many files into Darkroom, each distinct content once.

A file whose SHA-256 matches an image already in the database (``images.hash``)
or one earlier in the same run is skipped and reported as a duplicate. Because
the check is against the database, an interrupted import can simply be run
again: what was recorded is skipped, the rest is imported, nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from db.engine import read_sessions
from db.images import of_recipe
from db.models import Image
from jobs import media
from jobs.imaging import Limits
from jobs.intake import submit_file
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
    seen: dict[str, str] = {}
    for path in files:
        try:
            digest = media.sha256_file(path)
            existing = seen.get(digest) or image_with_hash(engine, digest, recipe)
            if existing is not None:
                report.duplicates.append(Duplicate(path, existing))
                log.info("skipped %s: same content as image %s", path, existing)
            else:
                submitted = submit_file(engine, tasks, media_dir, path, metadata, lane_by=lane_by, recipe=recipe)
                seen[digest] = submitted.image_id
                report.created.append((path, submitted.image_id))
                if not submitted.queued:
                    report.unqueued.append(submitted.image_id)
        except OSError as exc:
            report.failed.append((path, f"{type(exc).__name__}: {exc.strerror or exc}"))
            log.warning("could not import %s: %s", path, exc)
        if on_file is not None:
            on_file(path)
    return report
