"""``process_image``: claim a row, render its variants, record the outcome.

A plain function of a :class:`~jobs.context.JobContext` and an image id; the
huey task in ``jobs/tasks.py`` is a thin wrapper around it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.exc import OperationalError

from db import images
from jobs import imaging, lanes, media, originals
from jobs.context import JobContext
from jobs.errors import DarkroomError, MissingOriginal, PermanentError, RetryableError

log = logging.getLogger(__name__)


def process_image(ctx: JobContext, image_id: str) -> str:
    """Process one image; returns the outcome: completed, failed, retry or skipped."""
    t0 = time.perf_counter()
    owner = ctx.owner
    try:
        claimed = images.claim(ctx.engine, image_id, owner, ctx.lease_s)
    except OperationalError as exc:
        # The database is busy beyond its timeout: the row is untouched (no
        # attempt counted); try again later rather than drop the message.
        if ctx.schedule is not None:
            ctx.schedule(image_id, ctx.retry_delay_s)
        log.warning("image %s: could not claim (%s); retry in %.1fs", image_id,
                    exc.__class__.__name__, ctx.retry_delay_s, extra={"image_id": image_id, "outcome": "retry"})
        return "retry"
    if claimed is None:
        log.info("image %s: nothing to claim (done, failed or leased elsewhere)", image_id,
                 extra={"image_id": image_id, "outcome": "skipped"})
        return "skipped"
    if claimed.attempts > ctx.max_attempts:
        # Released by a shutdown or a dead worker after its last attempt.
        error = (f"gave up after {ctx.max_attempts} attempts; last error: "
                 f"{claimed.error or 'interrupted while processing'}")
        images.fail(ctx.engine, image_id, error, owner)
        _log_done(image_id, "failed", t0, {}, error, logging.WARNING)
        return "failed"
    try:
        with LeaseKeeper(ctx, image_id, owner), _lane_slot(ctx, claimed) as admitted:
            if not admitted:
                return _defer_large(ctx, image_id, owner)
            facts, rows, timings = _render_and_store(ctx, claimed)
        t = time.perf_counter()
        facts["timings"] = json.dumps({**timings, "db": 0.0})
        if not images.complete(ctx.engine, image_id, owner, facts, rows):
            log.warning("image %s: lease lost before completion; result discarded", image_id)
            return "skipped"
        timings["db"] = time.perf_counter() - t
        remove_stale_variants(media.variant_dir(ctx.media_dir, image_id), {Path(r.path).name for r in rows})
        _log_done(image_id, "completed", t0, timings)
        return "completed"
    except PermanentError as exc:
        images.fail(ctx.engine, image_id, str(exc), owner)
        _log_done(image_id, "failed", t0, {}, str(exc), logging.WARNING)
        return "failed"
    except (RetryableError, OperationalError) as exc:
        return _retry_or_give_up(ctx, claimed, owner, exc, t0)
    except Exception as exc:  # a bug or an unexpected library error: fail loudly, keep going
        log.exception("image %s: unexpected error", image_id)
        images.fail(ctx.engine, image_id, f"internal error: {type(exc).__name__}: {exc}", owner)
        _log_done(image_id, "failed", t0, {}, str(exc), logging.ERROR)
        return "failed"
    except BaseException:
        # Interrupted by shutdown (KeyboardInterrupt after the grace period):
        # give the image back now rather than leave it to the lease expiry.
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


def _render_and_store(ctx: JobContext, claimed: images.Claimed) -> tuple[dict, list[images.VariantRow], dict[str, float]]:
    claimed = originals.ensure_original(ctx, claimed)  # URL rows: fetch the original first
    source = media.resolve_original(ctx.media_dir, claimed.original_path)
    if not source.is_file():
        raise MissingOriginal(f"original file not found: {claimed.original_path}")
    _check_readable(source, claimed.original_path)
    vdir = media.variant_dir(ctx.media_dir, claimed.id)
    if claimed.attempts > 1:
        remove_temp_files(vdir)  # left by an attempt that was killed while writing
    try:
        rendered = imaging.render(source, ctx.recipe, ctx.limits)
    except imaging.ImageRejected as exc:
        raise PermanentError(str(exc)) from exc
    except MemoryError as exc:
        raise PermanentError("image too large to decode in memory") from exc
    t = time.perf_counter()
    rows: list[images.VariantRow] = []
    for v in rendered.variants:
        rel = media.variant_relpath(claimed.id, v.width, v.format)
        try:
            media.atomic_write(ctx.media_dir / rel, v.data)
        except OSError as exc:  # disk full, I/O error, a mount gone: the storage, not the image
            raise RetryableError(f"cannot write variant {rel}: {exc}") from exc
        rows.append(images.VariantRow(width=v.width, height=v.height, format=v.format,
                                      path=rel, size=len(v.data)))
    timings = dict(rendered.timings)
    timings["write"] = time.perf_counter() - t
    src = rendered.source
    facts = {
        "width": src.width, "height": src.height, "mime_type": src.mime_type,
        "hash": sha256_file(source), "recipe_fingerprint": ctx.recipe.fingerprint(),
        "orientation": rendered.orientation, "taken_at": rendered.taken_at,
        "gps": json.dumps(rendered.gps) if rendered.gps else None,
        "placeholder": rendered.placeholder, "dominant_color": rendered.dominant_color,
    }
    return facts, rows, timings


def _check_readable(source: Path, original_path: str) -> None:
    """A file we cannot read right now (permissions, I/O error, a flaky mount) is retried."""
    try:
        with open(source, "rb") as fh:
            fh.read(1)
    except FileNotFoundError as exc:
        raise MissingOriginal(f"original file not found: {original_path}") from exc
    except OSError as exc:
        raise RetryableError(f"cannot read original {original_path}: {exc}") from exc


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
    message = str(exc) if isinstance(exc, DarkroomError) else f"database busy: {exc.__class__.__name__}"
    if claimed.attempts >= ctx.max_attempts:
        error = f"gave up after {claimed.attempts} attempts; last error: {message}"
        images.fail(ctx.engine, claimed.id, error, owner)
        _log_done(claimed.id, "failed", t0, {}, error, logging.WARNING)
        return "failed"
    delay = getattr(exc, "retry_after_s", None) or ctx.retry_delay_s * 2 ** (claimed.attempts - 1)
    images.release(ctx.engine, claimed.id, owner, error=message, retry_at=time.time() + delay)
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


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1024 * 1024), b""):
            h.update(chunk)
    return h.hexdigest()


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
        while not self._stop.wait(interval):
            try:
                if not images.renew(self.ctx.engine, self.image_id, self.owner, self.ctx.lease_s):
                    log.warning("image %s: lease lost while processing", self.image_id)
                    return
            except OperationalError:
                log.warning("image %s: lease renewal hit a busy database; will retry", self.image_id)
