"""The Python API: submit images to Darkroom from another Python program.

>>> from worker.api import Darkroom
>>> with Darkroom.from_config("config.toml") as dr:          # doctest: +SKIP
...     image_id = dr.submit("uploads/cat.jpg", metadata={"user": 42})
...     dr.wait(image_id, timeout=60).status
'completed'

``submit`` takes a file path, the bytes of an image, or an http(s) URL (the
worker fetches it under ``[fetch]`` limits). It writes the row first and sends
the queue message second: if the program dies in between, the row is
``pending`` and the reconciler enqueues it, so nothing is lost. A busy
database is retried with backoff. See docs/api.md.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from db import images
from db.errors import DatabaseBusy, PermanentError
from db.ids import uuid7
from db.images import ImageExists
from db.models import Status
from jobs import media, originals
from jobs.backoff import Backoff
from jobs.fetch import extension_for, sniff
from jobs.imaging.recipes import UnknownRecipe as UnknownRecipe  # re-exported: submit raises it
from jobs.imaging.recipes import pick, stored_name
from jobs.imaging.types import Recipe
from worker import markup
from worker.app import App, build, recipes_from
from worker.markup import ImageNotReady as ImageNotReady  # re-exported: picture/srcset raise it
from worker.settings import load

log = logging.getLogger(__name__)
T = TypeVar("T")

TERMINAL = frozenset({Status.COMPLETED.value, Status.FAILED.value})
BUSY_ATTEMPTS = 6  # ~0.1 + 0.2 + ... + 3.2 s of waiting on top of the busy timeout


class ImageNotFound(PermanentError, LookupError):
    """No image has this id."""


@dataclass(frozen=True)
class ImageStatus:
    id: str
    status: str  # pending | processing | completed | failed
    error: str | None
    attempts: int
    filename: str
    mime_type: str
    width: int | None
    height: int | None
    source_url: str | None

    @property
    def done(self) -> bool:
        return self.status in TERMINAL


@dataclass(frozen=True)
class Variant:
    width: int
    height: int | None
    format: str
    size: int
    path: Path  # absolute
    url: str = ""  # paths.media_url + the path under the media dir


class Darkroom:
    """A handle on one Darkroom installation (its database, queue and media store)."""

    def __init__(self, app: App) -> None:
        self.app = app
        self._migrated = False
        self._book: dict[str, Recipe] | None = None

    @classmethod
    def from_config(cls, path: str | os.PathLike[str] | None = None, **overrides: Any) -> Darkroom:
        """Open the installation described by ``config.toml`` (``overrides``: dotted keys).

        >>> dr = Darkroom.from_config("/srv/darkroom/config.toml")   # doctest: +SKIP
        """
        return cls(build(load(path, overrides=overrides or None)))

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.app.close()

    # --- submitting ---------------------------------------------------------

    def submit(self, source: str | os.PathLike[str] | bytes, metadata: dict[str, Any] | None = None,
               id: str | None = None, filename: str | None = None, recipe: str | None = None) -> str:
        """Submit an image and return its id.

        ``source``: a path, the image's bytes, or an ``http://``/``https://``
        URL. ``id``: your own id (text, usable as a file name); one that exists
        raises :class:`ImageExists`. ``metadata`` is stored as JSON.
        ``recipe``: the name of a ``[recipes.NAME]`` table (None: ``default``);
        an unknown one raises :class:`UnknownRecipe` naming the known recipes.

        >>> dr.submit(b"\\xff\\xd8...", metadata={"album": "summer"}, id="upload-123")  # doctest: +SKIP
        'upload-123'
        >>> dr.submit("uploads/me.jpg", recipe="avatar")  # doctest: +SKIP
        """
        self.recipe(recipe)  # refused before anything is written
        stored = stored_name(recipe)
        self._ensure_schema()
        image_id = id if id is not None else uuid7()
        try:
            media.original_relpath(image_id, ".jpg")
        except ValueError:
            raise ValueError(f"id {image_id!r} is not usable: use 1-128 letters, digits, '-', '_' or '.'") from None
        if id is not None and images.get(self.app.engine, image_id) is not None:
            raise ImageExists(f"an image with id {image_id!r} already exists")
        if isinstance(source, str) and source.lower().startswith(("http://", "https://")):
            self._insert(image_id, {"filename": filename or originals.filename_from_url(source),
                                        "original_path": originals.NOT_FETCHED, "mime_type": "application/octet-stream",
                                        "size": 0, "source_url": source, "metadata": metadata, "recipe": stored})
        elif isinstance(source, (bytes, bytearray, memoryview)):
            data = bytes(source)
            ext = extension_for(sniff(data[:64]) or "")
            self._store_and_insert(image_id, filename or f"{image_id}{ext}", ext, metadata,
                                   lambda out: out.write(data), stored)
        else:
            path = Path(source)
            if not path.is_file():
                raise FileNotFoundError(f"no such file: {path}")

            self._store_and_insert(image_id, filename or path.name, path.suffix, metadata,
                                   lambda out: out.copy_from(path), stored)
        self._enqueue(image_id)
        return image_id

    def _store_and_insert(self, image_id: str, filename: str, ext: str, metadata: dict[str, Any] | None,
                          write: Callable[[media.NewOriginal], Any], recipe: str | None = None) -> None:
        """Write the original under a temporary name, insert the row, then rename it into place.

        The row goes in with ``enqueued_at`` set, so the reconciler leaves it
        alone for ``jobs.requeue_after_s`` while the rename and the enqueue
        happen; the temporary name means an id that turns out to be taken
        never overwrites that image's original.
        """
        with media.new_original(self.app.settings.paths.media_dir, image_id, ext) as original:
            write(original)
            original.close()
            mime = sniff(_head(original.tmp)) or "application/octet-stream"
            self._insert(image_id, {"filename": filename, "original_path": original.rel, "mime_type": mime,
                                    "size": original.size, "hash": original.digest, "metadata": metadata,
                                    "recipe": recipe})

    def _insert(self, image_id: str, row: dict[str, Any]) -> None:
        retry_busy(lambda: images.insert_image(self.app.engine, image_id=image_id, owns_original=True,
                                               enqueued=True, **row))

    def recipe(self, name: str | None = None) -> Recipe:
        """The recipe called ``name`` (None: ``default``); raises :class:`UnknownRecipe` naming the known ones.

        >>> dr.recipe("avatar").widths  # doctest: +SKIP
        (64, 128, 256)
        """
        return pick(self._recipes(), name)

    def _recipes(self) -> dict[str, Recipe]:
        if self._book is None:
            self._book = recipes_from(self.app.settings)
        return self._book

    def _enqueue(self, image_id: str) -> None:
        try:
            self.app.tasks.enqueue_images([image_id])
        except Exception:  # the row is the truth: the reconciler will enqueue it
            log.warning("image %s: recorded but not enqueued; the reconciler will pick it up",
                        image_id, exc_info=True)

    def _ensure_schema(self) -> None:
        if not self._migrated:
            retry_busy(self.app.migrate)
            self._migrated = True

    # --- reading ------------------------------------------------------------

    def status(self, id: str) -> ImageStatus:
        """The image's current status; raises :class:`ImageNotFound`.

        >>> dr.status(image_id).status   # doctest: +SKIP
        'processing'
        """
        row = retry_busy(lambda: images.get(self.app.engine, id))
        if row is None:
            raise ImageNotFound(f"no image with id {id!r}")
        return ImageStatus(id=row.id, status=row.status or Status.PENDING.value, error=row.error,
                           attempts=row.attempts or 0, filename=row.filename, mime_type=row.mime_type,
                           width=row.width, height=row.height, source_url=row.source_url)

    def variants(self, id: str) -> list[Variant]:
        """The image's variants (empty until it is completed), by format then width; raises :class:`ImageNotFound`."""
        paths = self.app.settings.paths
        rows = retry_busy(lambda: images.variants_of(self.app.engine, id))
        if not rows and retry_busy(lambda: images.get(self.app.engine, id)) is None:
            raise ImageNotFound(f"no image with id {id!r}")
        return [Variant(width=v.width, height=v.height, format=v.format, size=v.size,
                        path=media.resolve_original(paths.media_dir, v.path),
                        url=markup.variant_url(paths.media_url, v.path)) for v in rows]

    def picture(self, id: str, sizes: str = markup.DEFAULT_SIZES) -> str:
        """A ready ``<picture>`` element for the image (AVIF and WebP sources, a lazy ``<img>``).

        URLs start with ``paths.media_url``. Raises :class:`ImageNotFound`, or
        :class:`ImageNotReady` (naming the status) until the image is completed.

        >>> print(dr.picture(image_id, sizes="(min-width: 800px) 50vw, 100vw"))  # doctest: +SKIP
        <picture>
          <source type="image/avif" srcset="/media/variants/.../320.avif 320w, ..." sizes="...">
          ...
        """
        image, rows = self._completed(id)
        return markup.picture(image, rows, self.app.settings.paths.media_url, sizes=sizes)

    def srcset(self, id: str, format: str = "webp") -> str:
        """``URL 320w, URL 640w, ...`` of the image's variants in ``format`` (webp | avif).

        Raises :class:`ImageNotFound`, :class:`ImageNotReady`, or ``ValueError``
        when the image has no variant in that format.

        >>> dr.srcset(image_id, "avif")  # doctest: +SKIP
        '/media/variants/12/0190...12/320.avif 320w, /media/variants/12/0190...12/640.avif 640w'
        """
        _, rows = self._completed(id)
        if not markup.by_format(rows, format):
            have = ", ".join(sorted({v.format for v in rows}))
            raise ValueError(f"image {id!r} has no {format!r} variants (it has: {have})")
        return markup.srcset(rows, format, self.app.settings.paths.media_url)

    def _completed(self, id: str) -> tuple[Any, list[Any]]:
        """The row and its variant rows; raises ImageNotFound / ImageNotReady."""
        image = retry_busy(lambda: images.get(self.app.engine, id))
        if image is None:
            raise ImageNotFound(f"no image with id {id!r}")
        rows = retry_busy(lambda: images.variants_of(self.app.engine, id))
        markup.ready(image, rows)
        return image, rows

    def search(self, query: str, limit: int = 10, mode: str = "auto", **filters: Any) -> list[Any]:
        """Images matching ``query``, best first, as ``(id, score, filename, metadata)`` hits.

        ``mode``: auto | text | vector | hybrid; ``filters``: ``recipe``,
        ``status``, ``since`` (date, datetime, ISO string or Unix seconds) and
        ``where`` (metadata equality, ``{"user": 42}``). Raises
        ``jobs.embeddings.search.SearchError`` (a ``ValueError``) for an empty
        query or a mode the embedder cannot serve; see docs/search.md.

        >>> [(h.filename, round(h.score, 2)) for h in dr.search("kites", limit=3, since="2026-01-01")]  # doctest: +SKIP
        [('red_kite.jpg', 1.28)]
        """
        from jobs.embeddings.search import filters_from
        from jobs.embeddings.search import search as run

        app = self.app
        return run(app.engine, app.vector_store, app.embedder, app.settings.search, query, limit, mode,
                   filters_from(**filters)).hits

    def wait(self, id: str, timeout: float = 60.0, poll_s: float = 0.2) -> ImageStatus:
        """Wait until the image is completed or failed; raises ``TimeoutError`` after ``timeout`` s.

        >>> dr.wait(image_id, timeout=30).status   # doctest: +SKIP
        'completed'
        """
        deadline = time.monotonic() + timeout
        while True:
            st = self.status(id)
            if st.done:
                return st
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"image {id!r} is still {st.status} after {timeout} s")
            time.sleep(min(poll_s, left))


def retry_busy(call: Callable[[], T], attempts: int = BUSY_ATTEMPTS, base_s: float = 0.1,
               sleep: Callable[[float], None] = time.sleep) -> T:
    """Run ``call``, retrying a busy database (:class:`~db.errors.DatabaseBusy`) with backoff and jitter.

    An unreachable database raises :class:`~db.errors.DatabaseUnreachable` at once; a database still
    busy after ``attempts`` raises :class:`~db.errors.DatabaseBusy`.
    """
    policy = Backoff(base_s, cap_s=base_s * 2 ** attempts, jitter=0.25)
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except DatabaseBusy as exc:  # the engine names it (db/engine.py); an outage raises at once
            if attempt == attempts:
                raise
            delay = policy.delay(attempt)
            log.info("database busy (%s); retry %d/%d in %.2fs", exc.reason, attempt, attempts - 1, delay)
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def _head(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(64)



