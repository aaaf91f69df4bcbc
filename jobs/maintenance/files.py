"""The file and vector side of maintenance, and the periodic duties' plumbing.

``db.maintenance`` deletes rows; this module deletes what rows point at:

* :func:`image_file_remover` builds the TTL sweep's ``on_delete`` hook: it
  removes the variant files of deleted images, their original when Darkroom
  owns it (``images.owns_original``), and their embeddings through the
  vector store's callback;
* :func:`sweep_orphans` finds variant files no row mentions (deleted after a
  grace period, since a task writes its file before its row), rows whose file
  is gone (reported: ``darkroom reprocess --missing`` rebuilds them), and
  ``.tmp-*`` / ``*.tmp`` leftovers of interrupted atomic writes older than an
  hour.

Only paths inside the media directory are ever deleted, whatever a row says.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from db.engine import read_sessions
from db.maintenance.ttl import DeletedImages
from db.models import ImageVariant
from jobs.media import TMP_PREFIX, resolve_original

log = logging.getLogger(__name__)

ORPHAN_GRACE_S = 3_600.0
TMP_MAX_AGE_S = 3_600.0
MAX_REPORTED = 20

DeleteEmbeddings = Callable[[Sequence[str]], None]


def _inside(media_dir: Path, path: Path) -> bool:
    try:
        path.resolve().relative_to(media_dir.resolve())
    except ValueError:
        return False
    return True


def _remove(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def _prune_empty_dirs(start: Path, stop: Path) -> None:
    """Remove ``start`` and its parents up to (not including) ``stop`` while empty."""
    d = start
    while d != stop and _inside(stop, d):
        try:
            d.rmdir()
        except OSError:
            return
        d = d.parent


def remove_image_files(media_dir: Path, gone: DeletedImages,
                       delete_embeddings: DeleteEmbeddings | None = None) -> dict[str, int]:
    """Delete the files and embeddings of images whose rows were deleted.

    >>> gone = DeletedImages(("id1",), ("variants/d1/id1/320.webp",), ())
    >>> remove_image_files(Path("data/media"), gone)  # the file exists  # doctest: +SKIP
    {'variant_files': 1, 'originals': 0, 'refused': 0}
    """
    counts = {"variant_files": 0, "originals": 0, "refused": 0}
    for rel in gone.variant_paths:
        path = media_dir / rel
        if Path(rel).is_absolute() or not _inside(media_dir, path):
            log.warning("not deleting variant outside the media dir: %s", rel)
            counts["refused"] += 1
            continue
        counts["variant_files"] += _remove(path)
        _prune_empty_dirs(path.parent, media_dir / "variants")
    for original in gone.owned_originals:
        path = resolve_original(media_dir, original)
        if not _inside(media_dir, path):
            log.warning("not deleting original outside the media dir: %s", original)
            counts["refused"] += 1
            continue
        counts["originals"] += _remove(path)
        _prune_empty_dirs(path.parent, media_dir / "originals")
    if delete_embeddings is not None and gone.image_ids:
        delete_embeddings(list(gone.image_ids))
    return counts


def image_file_remover(media_dir: Path, delete_embeddings: DeleteEmbeddings | None = None
                       ) -> Callable[[DeletedImages], None]:
    """The ``on_delete`` hook for :func:`db.maintenance.ttl.sweep`.

    >>> sweep(engine, rules, on_delete=image_file_remover(media_dir, vectors.delete))  # doctest: +SKIP
    """
    def on_delete(gone: DeletedImages) -> None:
        counts = remove_image_files(media_dir, gone, delete_embeddings)
        log.info("removed files of %d deleted images: %s", len(gone.image_ids), counts)

    return on_delete


def is_temp_name(name: str) -> bool:
    return name.startswith((TMP_PREFIX, ".tmp")) or name.endswith(".tmp")


def sweep_orphans(engine: Engine, media_dir: Path, *, grace_s: float = ORPHAN_GRACE_S,
                  tmp_max_age_s: float = TMP_MAX_AGE_S, now: float | None = None,
                  dry_run: bool = False) -> dict[str, Any]:
    """Find (and unless ``dry_run`` delete) orphan variant files and old temp files.

    Rows whose variant file is missing are only reported.

    >>> sweep_orphans(engine, Path("data/media"))["orphan_files"]  # doctest: +SKIP
    0
    """
    now = time.time() if now is None else now
    if not media_dir.is_dir():
        return {"note": f"media directory not found: {media_dir}", "orphan_files": 0,
                "temp_files": 0, "missing_files": 0}
    # Read the rows first: a file written after this read is younger than the
    # grace period, so it is never mistaken for an orphan.
    with read_sessions(engine)() as s:
        rows = s.execute(select(ImageVariant.image_id, ImageVariant.path)).all()
    known = {path for _, path in rows}
    variants_root = media_dir / "variants"
    orphans: list[str] = []
    temps: list[str] = []
    for dirpath, _dirs, files in os.walk(media_dir):
        for name in files:
            path = Path(dirpath) / name
            try:
                age = now - path.stat().st_mtime
            except FileNotFoundError:
                continue  # renamed into place or removed meanwhile
            rel = path.relative_to(media_dir).as_posix()
            if is_temp_name(name):
                if age > tmp_max_age_s:
                    temps.append(rel)
            elif _inside(variants_root, path) and rel not in known and age > grace_s:
                orphans.append(rel)
    if not dry_run:
        for rel in orphans + temps:
            _remove(media_dir / rel)
            _prune_empty_dirs((media_dir / rel).parent, media_dir)
    missing = [(image_id, path) for image_id, path in rows if not (media_dir / path).exists()]
    missing_ids = sorted({image_id for image_id, _ in missing})
    figures: dict[str, Any] = {
        "orphan_files": len(orphans), "temp_files": len(temps), "missing_files": len(missing),
        "images_with_missing_files": len(missing_ids), "dry_run": dry_run,
    }
    if orphans:
        figures["orphan_sample"] = orphans[:MAX_REPORTED]
    if missing_ids:
        figures["missing_sample"] = missing_ids[:MAX_REPORTED]
        figures["warnings"] = [(f"{len(missing_ids)} images have missing variant files: "
                               "run `darkroom reprocess --missing`")]
        log.warning("%d images have missing variant files (e.g. %s)", len(missing_ids), missing_ids[:3])
    return figures
