"""``process_image``: claim a row, render its variants, record the outcome.

A plain function of a :class:`~jobs.context.JobContext` and an image id; the
huey task in ``jobs/tasks.py`` is a thin wrapper around it.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from db import images
from db.errors import DatabaseBusy, DatabaseUnreachable, describe_url
from jobs import imaging, lanes, media, originals, running
from jobs.backoff import Backoff
from jobs.context import JobContext
from jobs.errors import (
    MissingOriginal,
    PermanentError,
    RetryableError,
    StorageUnavailable,
    is_storage_trouble,
)
from jobs.imaging.recipes import UnknownRecipe
from jobs.outage import OUTAGES

log = logging.getLogger(__name__)

T = TypeVar("T")
_PERSIST_BACKOFF = Backoff(first_s=0.1, cap_s=2.0)  # a final write through a busy database, within grace_s


def process_image(ctx: JobContext, image_id: str) -> str:
    """Process one image; returns the outcome: completed, failed, retry or skipped."""
    t0 = time.perf_counter()
    owner = ctx.owner
    try:
        claimed = images.claim(ctx.engine, image_id, owner, ctx.lease_s)
    except (DatabaseBusy, DatabaseUnreachable) as exc:
        # The database is busy beyond its timeout, or down: the row is untouched
        # (no attempt counted); try again later rather than drop the message.
        if isinstance(exc, DatabaseUnreachable):  # an outage: one WARNING for all images, a growing wait
            delay = OUTAGES.down(exc.where, exc.reason)
            log.debug("image %s: could not claim (%s); retry in %.1fs", image_id, exc, delay)
        else:
            delay = ctx.retry_delay_s
            log.warning("image %s: could not claim (%s); retry in %.1fs", image_id,
                        exc, delay, extra={"image_id": image_id, "outcome": "retry"})
        if ctx.schedule is not None:
            ctx.schedule(image_id, delay)
        return "retry"
    OUTAGES.up(_db_where(ctx))
    if claimed is None:
        log.info("image %s: nothing to claim (done, failed or leased elsewhere)", image_id,
                 extra={"image_id": image_id, "outcome": "skipped"})
        return "skipped"
    if claimed.attempts > ctx.max_attempts:
        # Released by a shutdown or a dead worker after its last attempt.
        error = images.gave_up(ctx.max_attempts, claimed.error or "interrupted while processing")
        images.fail(ctx.engine, image_id, error, owner)
        _log_done(image_id, "failed", t0, {}, error, logging.WARNING)
        return "failed"
    attempt = Attempt(ctx.media_dir)
    try:
        with LeaseKeeper(ctx, image_id, owner), _lane_slot(ctx, claimed) as admitted:
            if not admitted:
                return _defer_large(ctx, image_id, owner)
            facts, rows, timings = _render_and_store(ctx, claimed, attempt)
        t = time.perf_counter()
        facts["timings"] = json.dumps({**timings, "db": 0.0})
        # The files move into place inside the completing transaction, once the
        # compare-and-set has matched: a worker that lost its lease (frozen,
        # partitioned) renames nothing and removes its temporary files.
        if not persist(ctx, "completion", lambda: images.complete(ctx.engine, image_id, owner, facts, rows,
                                                                  before_commit=attempt.move_into_place)):
            attempt.discard()
            log.warning("image %s: lease lost before completion; result discarded", image_id)
            return "skipped"
        timings["db"] = time.perf_counter() - t
        OUTAGES.up(_storage_where(ctx))
        remove_stale_variants(media.variant_dir(ctx.media_dir, image_id), {Path(r.path).name for r in rows})
        _log_done(image_id, "completed", t0, timings)
        return "completed"
    except StorageUnavailable as exc:
        attempt.discard()
        return _wait_for_storage(ctx, claimed, owner, exc)
    except PermanentError as exc:
        attempt.discard()
        reason = str(exc)  # bound here: `exc` is unset once the except block ends
        persist(ctx, "failure", lambda: images.fail(ctx.engine, image_id, reason, owner))
        _log_done(image_id, "failed", t0, {}, reason, logging.WARNING)
        return "failed"
    except RetryableError as exc:  # DatabaseBusy / DatabaseUnreachable among them
        attempt.discard()
        return _retry_or_give_up(ctx, claimed, owner, exc, t0)
    except Exception as exc:  # a bug or an unexpected library error: fail loudly, keep going
        attempt.discard()
        log.exception("image %s: unexpected error", image_id)
        images.fail(ctx.engine, image_id, f"internal error: {type(exc).__name__}: {exc}", owner)
        _log_done(image_id, "failed", t0, {}, str(exc), logging.ERROR)
        return "failed"
    except BaseException:
        # Interrupted by shutdown (KeyboardInterrupt after the grace period):
        # give the image back now rather than leave it to the lease expiry.
        attempt.discard()
        images.release(ctx.engine, image_id, owner)
        log.warning("image %s: interrupted; released back to pending", image_id)
        raise


@contextmanager
def _lane_slot(ctx: JobContext, claimed: images.Claimed) -> Iterator[bool]:
    """Large images hold one of the few large-lane slots while they render (see jobs/lanes.py)."""
    lane = claimed.lane
    if lane is None and ctx.lanes_dir is not None:  # a row another program inserted: read the header
        source = media.resolve_original(ctx.media_dir, claimed.original_path)
        lane = lanes.lane_of(source, ctx.limits, ctx.large_pixels) if source.is_file() else lanes.DEFAULT
    if lane != lanes.LARGE or ctx.lanes_dir is None:
        yield True
        return
    with lanes.large_slot(ctx.lanes_dir, ctx.large_slots) as held:
        yield held


def _defer_large(ctx: JobContext, image_id: str, owner: str) -> str:
    images.release(ctx.engine, image_id, owner, retry_at=time.time() + lanes.BUSY_RETRY_S, refund_attempt=True)
    if ctx.schedule is not None:
        ctx.schedule(image_id, lanes.BUSY_RETRY_S, lane=lanes.LARGE)
    log.info("image %s: large lane busy; retry in %.0fs", image_id, lanes.BUSY_RETRY_S,
             extra={"image_id": image_id, "outcome": "deferred"})
    return "deferred"


def _render_and_store(ctx: JobContext, claimed: images.Claimed,
                      attempt: Attempt) -> tuple[dict, list[images.VariantRow], dict[str, float]]:
    if OUTAGES.is_down(_storage_where(ctx)):  # known trouble: a cheap probe before any decoding
        problem = media.probe_writable(ctx.media_dir)
        if problem is not None:
            raise StorageUnavailable(f"media storage not writable: {_os_reason(problem)}") from problem
    try:
        recipe = ctx.recipe_named(claimed.recipe)
    except UnknownRecipe as exc:  # a row another program inserted, or a recipe removed from the config
        raise PermanentError(str(exc)) from exc
    claimed = originals.ensure_original(ctx, claimed)  # URL rows: fetch the original first
    source = media.resolve_original(ctx.media_dir, claimed.original_path)
    if not source.is_file():
        _check_media_mounted(ctx, claimed.original_path)
        raise MissingOriginal(f"original file not found: {claimed.original_path}")
    _check_readable(source, claimed.original_path)
    vdir = media.variant_dir(ctx.media_dir, claimed.id)
    if claimed.attempts > 1:
        remove_temp_files(vdir)  # left by an attempt that was killed while writing
    inline = _embeds_inline(ctx)
    try:
        with running.job(ctx.lanes_dir):
            rendered = imaging.render(source, recipe, ctx.limits,
                                      lambda: running.encode_threads(ctx.lanes_dir, ctx.encode_threads),
                                      embed_copy=inline)
    except imaging.ImageRejected as exc:
        raise PermanentError(str(exc)) from exc
    except MemoryError as exc:
        raise PermanentError("image too large to decode in memory") from exc
    t = time.perf_counter()
    rows: list[images.VariantRow] = []
    for v in rendered.variants:
        rel = media.variant_relpath(claimed.id, v.width, v.format)
        attempt.write(ctx.media_dir / rel, v.data)
        rows.append(images.VariantRow(width=v.width, height=v.height, format=v.format,
                                      path=rel, size=len(v.data)))
    timings = dict(rendered.timings)
    timings["write"] = time.perf_counter() - t
    src = rendered.source
    facts = {
        "width": src.width, "height": src.height, "mime_type": src.mime_type,
        "hash": media.sha256_file(source), "recipe_fingerprint": recipe.fingerprint(),
        "orientation": rendered.orientation, "taken_at": rendered.taken_at,
        "gps": json.dumps(rendered.gps) if rendered.gps else None,
        "placeholder": rendered.placeholder, "dominant_color": rendered.dominant_color,
    }
    if inline:  # the local embedder on the pixels decoded above; the embedding step only writes it
        from jobs.embeddings import inline as inline_embedding

        t = time.perf_counter()
        copy = rendered.embed_copy
        facts.update(inline_embedding.vector_facts(inline_embedding.describe(copy) if copy is not None else None))
        timings["embed"] = time.perf_counter() - t + timings.pop("embed_copy", 0.0)
    else:  # no stale vector of an earlier render stays on the row
        facts.update(pending_vector=None, pending_vector_model=None)
    return facts, rows, timings


def _embeds_inline(ctx: JobContext) -> bool:
    """True when the configured embedder is ``local``: the job computes the vector itself."""
    from jobs.embeddings.task import settings_of

    cfg = settings_of(ctx)
    return cfg is not None and cfg.embedder == "local"


def _check_readable(source: Path, original_path: str) -> None:
    """A file we cannot read right now (permissions, I/O error, a flaky mount) is retried."""
    try:
        with open(source, "rb") as fh:
            fh.read(1)
    except FileNotFoundError as exc:
        raise MissingOriginal(f"original file not found: {original_path}") from exc
    except OSError as exc:
        if is_storage_trouble(exc):
            raise StorageUnavailable(f"cannot read original {original_path}: {_os_reason(exc)}") from exc
        raise RetryableError(f"cannot read original {original_path}: {exc}") from exc


def _check_media_mounted(ctx: JobContext, original_path: str) -> None:
    """A missing original under a media dir whose ``originals/`` is gone is a vanished mount."""
    if Path(original_path).is_absolute():
        return
    if not (ctx.media_dir / "originals").is_dir():
        raise StorageUnavailable(f"media storage unavailable: {ctx.media_dir / 'originals'} is missing "
                                 "(a mount gone?)")


class Attempt:
    """The files one attempt writes: under ``.tmp-<token>-`` names until the lease holder moves them.

    >>> attempt = Attempt(media_dir)                       # doctest: +SKIP
    >>> attempt.write(media_dir / rel, data)               # .tmp-<token>-320.webp  # doctest: +SKIP
    >>> attempt.move_into_place()                          # inside images.complete  # doctest: +SKIP
    """

    def __init__(self, media_dir: Path) -> None:
        self.media_dir = media_dir
        self.token = f"{os.getpid():x}{secrets.token_hex(3)}"
        self.files: list[tuple[Path, Path]] = []  # (temporary, final)

    def write(self, final: Path, data: bytes) -> None:
        try:
            self.files.append((media.write_temp(final, data, self.token), final))
        except OSError as exc:  # disk full, read-only, I/O error, a mount gone: the storage, not the image
            if is_storage_trouble(exc):
                raise StorageUnavailable(f"cannot write variant {final.relative_to(self.media_dir)}: "
                                         f"{_os_reason(exc)}") from exc
            raise RetryableError(f"cannot write variant {final.name}: {exc}") from exc

    def move_into_place(self) -> None:
        try:
            for tmp, final in self.files:
                os.replace(tmp, final)
        except OSError as exc:
            raise StorageUnavailable(f"cannot move variants into place: {_os_reason(exc)}") from exc
        self.files = []

    def discard(self) -> None:
        """Remove this attempt's temporary files (a failed, lost or stale attempt leaves nothing)."""
        for tmp, _final in self.files:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:  # the storage is gone; the orphan sweep removes it later
                log.debug("could not remove %s", tmp)
        self.files = []


def _os_reason(exc: OSError) -> str:
    return f"[Errno {exc.errno}] {exc.strerror}" if exc.strerror else str(exc)


def _db_url(ctx: JobContext) -> str:
    return ctx.engine.url.render_as_string(hide_password=True)


def _db_where(ctx: JobContext) -> str:
    backend, address = describe_url(_db_url(ctx))
    return f"{backend} at {address}"


def _storage_where(ctx: JobContext) -> str:
    return f"media storage at {ctx.media_dir}"


def _wait_for_storage(ctx: JobContext, claimed: images.Claimed, owner: str, exc: StorageUnavailable) -> str:
    """Storage trouble is an outage: the image goes back without spending its attempt."""
    delay = OUTAGES.down(_storage_where(ctx), str(exc))
    persist(ctx, "release", lambda: images.release(ctx.engine, claimed.id, owner, error=f"waiting: {exc}",
                                                    retry_at=time.time() + delay, refund_attempt=True))
    if ctx.schedule is not None:
        ctx.schedule(claimed.id, delay)
    log.debug("image %s: %s; waiting %.1fs (no attempt spent)", claimed.id, exc, delay,
              extra={"image_id": claimed.id, "outcome": "waiting"})
    return "waiting"


def persist(ctx: JobContext, what: str, write: Callable[[], T]) -> T:
    """Run a final write (completion, release, failure), retrying a busy or briefly
    unreachable database with backoff for up to ``jobs.grace_s``.

    A PostgreSQL restart during the last step then costs seconds, not a
    re-encode once the lease expires.
    """
    deadline = time.monotonic() + ctx.grace_s
    failures = 0
    while True:
        try:
            result = write()
        except (DatabaseBusy, DatabaseUnreachable) as exc:
            failures += 1
            left = deadline - time.monotonic()
            if left <= 0:
                raise
            if isinstance(exc, DatabaseUnreachable):
                wait = OUTAGES.down(exc.where, exc.reason)
            else:
                wait = _PERSIST_BACKOFF.delay(failures)
            log.debug("%s write failed (%s); retrying in %.1fs", what, exc, wait)
            time.sleep(min(wait, left))
            continue
        if failures:
            OUTAGES.up(_db_where(ctx))
        return result


def remove_temp_files(vdir: Path) -> int:
    """Delete ``.tmp-*`` files in an image's variant directory; returns how many."""
    removed = 0
    if vdir.is_dir():
        for p in vdir.glob(media.TMP_PREFIX + "*"):
            p.unlink(missing_ok=True)
            removed += 1
    return removed


def remove_stale_variants(vdir: Path, keep: set[str]) -> None:
    """Delete variant files of widths/formats the current recipe no longer makes."""
    if vdir.is_dir():
        for p in vdir.iterdir():
            if p.is_file() and p.name not in keep:
                p.unlink(missing_ok=True)


def _retry_or_give_up(ctx: JobContext, claimed: images.Claimed, owner: str, exc: Exception,
                      t0: float) -> str:
    message = str(exc)
    if claimed.attempts >= ctx.max_attempts:
        error = images.gave_up(claimed.attempts, message)
        persist(ctx, "failure", lambda: images.fail(ctx.engine, claimed.id, error, owner))
        _log_done(claimed.id, "failed", t0, {}, error, logging.WARNING)
        return "failed"
    # The server's Retry-After (a fetched URL, an embedder) is honoured up to jobs.max_retry_delay_s.
    delay = ctx.retry_policy.delay(claimed.attempts, getattr(exc, "retry_after_s", None))
    persist(ctx, "release", lambda: images.release(ctx.engine, claimed.id, owner, error=message,
                                                    retry_at=time.time() + delay))
    if ctx.schedule is not None:
        ctx.schedule(claimed.id, delay)
    _log_done(claimed.id, "retry", t0, {}, f"{message}; retry in {delay:.1f}s", logging.WARNING)
    return "retry"


def _log_done(image_id: str, outcome: str, t0: float, timings: dict[str, float],
              error: str | None = None, level: int = logging.INFO) -> None:
    duration = time.perf_counter() - t0
    stages = " ".join(f"{k}={v * 1000:.0f}ms" for k, v in sorted(timings.items()))
    log.log(level, "image %s %s in %.3fs %s%s", image_id, outcome, duration, stages,
            f" error={error!r}" if error else "",
            extra={"image_id": image_id, "outcome": outcome, "duration_s": round(duration, 4),
                   "timings": timings, "error": error})



class LeaseKeeper:
    """Renews a claim's lease in the background while a long job runs."""

    def __init__(self, ctx: JobContext, image_id: str, owner: str) -> None:
        self.ctx, self.image_id, self.owner = ctx, image_id, owner
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"lease-{image_id}")

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        interval = max(self.ctx.lease_s / 3, 0.5)
        warned = False
        while not self._stop.wait(interval):
            try:
                if not images.renew(self.ctx.engine, self.image_id, self.owner, self.ctx.lease_s):
                    log.warning("image %s: lease lost while processing", self.image_id)
                    return
            except (DatabaseBusy, DatabaseUnreachable) as exc:
                if isinstance(exc, DatabaseUnreachable):
                    if not warned:  # once per job; the outage itself is logged once per process
                        log.warning("image %s: lease renewal failed: database unreachable (%s); will retry",
                                    self.image_id, exc.reason)
                        warned = True
                    OUTAGES.down(exc.where, exc.reason)
                else:
                    log.warning("image %s: lease renewal hit a busy database; will retry", self.image_id)
