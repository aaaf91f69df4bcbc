"""The fetch step: a row with a ``source_url`` and no stored original gets it
downloaded by the worker, under the lease, before rendering.

It runs inside ``process_image`` (one call at the top of the render step), so
a URL submission gets the same retries, lease and failure handling as any
other image: ``FetchRefused`` -> ``PermanentError`` (the row ends ``failed``
with the reason), ``FetchFailed`` -> ``RetryableError`` carrying the server's
``Retry-After``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from typing import cast
from urllib.parse import unquote, urlsplit

from sqlalchemy import CursorResult, Engine, update

from db.engine import write_session
from db.images import Claimed
from db.models import Image, Status
from jobs import media
from jobs.context import JobContext
from jobs.errors import PermanentError, RetryableError

log = logging.getLogger(__name__)

#: ``original_path`` of a URL row whose original is not stored yet.
NOT_FETCHED = ""
INCOMING_DIR = "incoming"  # below the media dir; fetches land here, then move by id


def filename_from_url(url: str) -> str:
    """A display name for a URL submission: its last path segment, or ``download``.

    >>> filename_from_url("https://example.com/a/cat%20photo.jpg?x=1")
    'cat photo.jpg'
    """
    name = unquote(urlsplit(url).path.rsplit("/", 1)[-1]).strip()
    return name[:255] or "download"


def needs_fetch(ctx: JobContext, claimed: Claimed) -> bool:
    if not claimed.source_url:
        return False
    if claimed.original_path == NOT_FETCHED:
        return True
    return not media.resolve_original(ctx.media_dir, claimed.original_path).is_file()


def ensure_original(ctx: JobContext, claimed: Claimed) -> Claimed:
    """Fetch the original of a URL row if it is not stored yet; returns the updated claim."""
    if not needs_fetch(ctx, claimed):
        return claimed
    from jobs.fetch import FetchFailed, FetchRefused, extension_for, fetch  # httpx: only for URL rows

    url = claimed.source_url or ""
    t = time.perf_counter()
    try:
        got = fetch(url, ctx.media_dir / INCOMING_DIR, ctx.fetch_limits)
    except FetchRefused as exc:
        raise PermanentError(str(exc)) from exc
    except FetchFailed as exc:
        raise RetryableError(str(exc), retry_after_s=exc.retry_after) from exc
    rel = media.original_relpath(claimed.id, extension_for(got.mime_type))
    dest = ctx.media_dir / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(got.path, dest)
    if not record_original(ctx.engine, claimed.id, ctx.owner, rel, got.mime_type, got.size, got.sha256):
        # The lease was lost meanwhile; the holder fetches on its own. The file
        # is at the id's path either way, so nothing is left dangling.
        raise RetryableError("lease lost while fetching the original")
    log.info("image %s: fetched %s (%d bytes, %s) in %.2fs", claimed.id, got.final_url, got.size,
             got.mime_type, time.perf_counter() - t, extra={"image_id": claimed.id, "url": url})
    return dataclasses.replace(claimed, original_path=rel, mime_type=got.mime_type)


def record_original(engine: Engine, image_id: str, owner: str, original_path: str, mime_type: str,
                    size: int, sha256: str) -> bool:
    """Point the held row at its fetched original (compare-and-set on the lease)."""
    with write_session(engine) as s:
        result = s.execute(
            update(Image)
            .where(Image.id == image_id, Image.lease_owner == owner, Image.status == Status.PROCESSING.value)
            .values(original_path=original_path, mime_type=mime_type, size=size, hash=sha256,
                    owns_original=True, updated_at=time.time()))
        return cast(CursorResult, result).rowcount == 1
