"""Operations on ``images`` rows: the status machine as compare-and-set updates.

Every transition names the state it expects, so a duplicate or late queue
delivery, or a worker whose lease has expired, changes nothing::

    pending --claim--> processing --complete--> completed
                           |--release (retry)--> pending
                           \\--fail------------> failed
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, and_, delete, false, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from db.engine import read_sessions, rowcount, write_session
from db.errors import PermanentError, UnknownImages
from db.ids import uuid7
from db.models import Image, ImageVariant, Status

ERROR_MAX_CHARS = 2000


def gave_up(attempts: int, last_error: str) -> str:
    """The error of an image failed for good after its attempts (the one wording everywhere).

    >>> gave_up(5, "database busy")
    'gave up after 5 attempts; last error: database busy'
    """
    return f"gave up after {attempts} attempts; last error: {last_error}"[:ERROR_MAX_CHARS]


@dataclass(frozen=True)
class Claimed:
    """What a worker needs of a row it has claimed."""

    id: str
    filename: str
    original_path: str
    mime_type: str
    attempts: int
    source_url: str | None
    lane: str | None
    error: str | None  # the previous attempt's error, if any
    recipe: str | None = None  # the recipe's name, None = "default"


@dataclass(frozen=True)
class VariantRow:
    width: int
    height: int
    format: str
    path: str
    size: int


class ImageExists(PermanentError, ValueError):
    """A caller-chosen id is already taken by another image."""


def insert_image(engine: Engine, *, filename: str, original_path: str, mime_type: str, size: int,
                 image_id: str | None = None, hash: str | None = None,
                 metadata: dict[str, Any] | None = None, owns_original: bool = True,
                 source_url: str | None = None, lane: str | None = None,
                 enqueued: bool = False, recipe: str | None = None) -> str:
    """Insert a ``pending`` row and return its id (a new UUIDv7 unless given).

    ``recipe``: the recipe's name (None = ``default``); the caller checks it exists.
    An ``image_id`` already taken raises :class:`ImageExists`.
    """
    image_id = image_id or uuid7()
    now = time.time()
    try:
        with write_session(engine) as s:
            s.add(Image(
                id=image_id, filename=filename, original_path=original_path, mime_type=mime_type,
                size=size, hash=hash, status=Status.PENDING.value,
                metadata_=json.dumps(metadata) if metadata is not None else None,
                created_at=int(now), updated_at=now, owns_original=owns_original,
                source_url=source_url, lane=lane, enqueued_at=now if enqueued else None, recipe=recipe,
            ))
    except IntegrityError:
        if get(engine, image_id) is None:
            raise  # another constraint: a bug, not a taken id
        raise ImageExists(f"an image with id {image_id!r} already exists") from None
    return image_id


def insert_images(engine: Engine, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``pending`` rows in ONE transaction; each dict holds :func:`insert_image`'s arguments
    (``image_id`` required). All or none: the bulk intake records a batch of files at once."""
    if not rows:
        return
    now = time.time()
    with write_session(engine) as s:
        for r in rows:
            metadata = r.get("metadata")
            s.add(Image(
                id=r["image_id"], filename=r["filename"], original_path=r["original_path"],
                mime_type=r["mime_type"], size=r["size"], hash=r.get("hash"), status=Status.PENDING.value,
                metadata_=json.dumps(metadata) if metadata is not None else None,
                created_at=int(now), updated_at=now, owns_original=r.get("owns_original", True),
                source_url=r.get("source_url"), lane=r.get("lane"),
                enqueued_at=now if r.get("enqueued") else None, recipe=r.get("recipe"),
            ))


DEFAULT_RECIPE = "default"  # what a NULL images.recipe means (contract version 2)


def of_recipe(name: str | None) -> Any:
    """A WHERE clause for the rows of recipe ``name``; NULL counts as ``default``.

    >>> select(Image.id).where(of_recipe("avatar"))  # doctest: +SKIP
    """
    if not name or name == DEFAULT_RECIPE:
        return or_(Image.recipe.is_(None), Image.recipe == DEFAULT_RECIPE)
    return Image.recipe == name


def mark_enqueued(engine: Engine, ids: Sequence[str], at: float | None = None) -> None:
    if not ids:
        return
    with write_session(engine) as s:
        s.execute(update(Image).where(Image.id.in_(ids)).values(enqueued_at=at or time.time()))


def claim(engine: Engine, image_id: str, owner: str, lease_s: float) -> Claimed | None:
    """Take ``image_id`` for processing if it is pending, or processing with an expired lease.

    One compare-and-set ``UPDATE``: it sets ``processing``, the lease and
    its owner, and counts the attempt. Returns None when there is nothing
    to claim (already done, failed, or leased by a live worker).
    """
    now = time.time()
    claimable = or_(
        Image.status == Status.PENDING.value,
        Image.status.is_(None),
        and_(Image.status == Status.PROCESSING.value,
             or_(Image.lease_expires_at.is_(None), Image.lease_expires_at < now)),
    )
    with write_session(engine) as s:
        result = s.execute(
            update(Image)
            .where(Image.id == image_id, claimable)
            .values(status=Status.PROCESSING.value, lease_owner=owner,
                    lease_expires_at=now + lease_s, attempts=Image.attempts + 1,
                    started_at=now, updated_at=now)
        )
        if rowcount(result) != 1:
            return None
        row = s.execute(select(Image).where(Image.id == image_id)).scalar_one()
        return Claimed(id=row.id, filename=row.filename, original_path=row.original_path,
                       mime_type=row.mime_type, attempts=row.attempts, source_url=row.source_url,
                       lane=row.lane, error=row.error, recipe=row.recipe)


def renew(engine: Engine, image_id: str, owner: str, lease_s: float) -> bool:
    """Extend a lease we still hold; False means it was lost."""
    now = time.time()
    with write_session(engine) as s:
        return rowcount(s.execute(
            update(Image)
            .where(Image.id == image_id, Image.lease_owner == owner,
                   Image.status == Status.PROCESSING.value)
            .values(lease_expires_at=now + lease_s, updated_at=now)
        )) == 1


def _held(image_id: str, owner: str) -> Any:
    return and_(Image.id == image_id, Image.lease_owner == owner,
                Image.status == Status.PROCESSING.value)


def complete(engine: Engine, image_id: str, owner: str, facts: dict[str, Any],
             variants: Sequence[VariantRow], before_commit: Callable[[], None] | None = None) -> bool:
    """Record the variants and mark the image ``completed``, if we still hold it.

    Variant rows are upserts on ``(image_id, width, format)``; rows of
    widths/formats no longer produced are removed. ``before_commit`` runs
    inside the transaction once the compare-and-set has matched (the row is
    locked: no other worker can claim or complete it meanwhile), so only the
    holder of the lease moves its files into place; if it raises, nothing is
    recorded.
    """
    now = time.time()
    with write_session(engine) as s:
        done = rowcount(s.execute(
            update(Image).where(_held(image_id, owner)).values(
                status=Status.COMPLETED.value, error=None, lease_owner=None,
                lease_expires_at=None, completed_at=now, updated_at=now, **facts)
        )) == 1
        if not done:
            return False
        upsert_variants(s, image_id, variants, now)
        if before_commit is not None:
            before_commit()
    return True


def upsert_variants(session: Any, image_id: str, variants: Sequence[VariantRow], now: float) -> None:
    from sqlalchemy.dialects import postgresql, sqlite  # only writers need them (not status)

    dialect = session.get_bind().dialect.name
    ins = postgresql.insert if dialect == "postgresql" else sqlite.insert
    keep = {(v.width, v.format) for v in variants}
    for v in variants:
        stmt = ins(ImageVariant).values(
            id=uuid7(), image_id=image_id, width=v.width, format=v.format, path=v.path,
            size=v.size, height=v.height, created_at=now)
        stmt = stmt.on_conflict_do_update(
            index_elements=["image_id", "width", "format"],
            set_={"path": v.path, "size": v.size, "height": v.height, "created_at": now},
        )
        session.execute(stmt)
    existing = session.execute(
        select(ImageVariant.id, ImageVariant.width, ImageVariant.format)
        .where(ImageVariant.image_id == image_id)).all()
    stale = [vid for vid, w, f in existing if (w, f) not in keep]
    if stale:
        session.execute(delete(ImageVariant).where(ImageVariant.id.in_(stale)))


def fail(engine: Engine, image_id: str, error: str, owner: str | None = None) -> bool:
    """Mark ``failed`` with a readable error (if ``owner`` is given, only while held)."""
    now = time.time()
    cond = _held(image_id, owner) if owner else (Image.id == image_id)
    with write_session(engine) as s:
        return rowcount(s.execute(
            update(Image).where(cond).values(
                status=Status.FAILED.value, error=error[:ERROR_MAX_CHARS], lease_owner=None,
                lease_expires_at=None, updated_at=now)
        )) == 1


def release(engine: Engine, image_id: str, owner: str, error: str | None = None,
            retry_at: float | None = None, refund_attempt: bool = False) -> bool:
    """Give a held image back to ``pending`` (a retry, or shutdown).

    ``refund_attempt``: the claim did no work (e.g. the large lane was busy), so it
    does not count towards ``max_attempts``.
    """
    now = time.time()
    values: dict[str, Any] = dict(status=Status.PENDING.value, lease_owner=None,
                                  lease_expires_at=None, updated_at=now,
                                  enqueued_at=retry_at or now)
    if refund_attempt:
        values["attempts"] = Image.attempts - 1
    if error is not None:
        values["error"] = error[:ERROR_MAX_CHARS]
    with write_session(engine) as s:
        return rowcount(s.execute(update(Image).where(_held(image_id, owner)).values(**values))) == 1


def release_owned(engine: Engine, owner_prefix: str) -> int:
    """Give back every image leased by owners starting with ``owner_prefix``."""
    now = time.time()
    with write_session(engine) as s:
        return rowcount(s.execute(
            update(Image)
            .where(Image.status == Status.PROCESSING.value,
                   Image.lease_owner.startswith(owner_prefix, autoescape=True))
            .values(status=Status.PENDING.value, lease_owner=None, lease_expires_at=None,
                    updated_at=now, enqueued_at=None)
        ))


def release_dead(engine: Engine, owner: str, max_attempts: int, reason: str) -> list[str]:
    """Recover the images held by ``owner``, a worker process known to be dead.

    Those with attempts left go back to ``pending`` (their ids are returned,
    to be enqueued again); the others are ``failed`` with a message naming
    the attempts, so an image that kills its worker every time is
    quarantined instead of taking workers down for ever.
    """
    now = time.time()
    held = and_(Image.lease_owner == owner, Image.status == Status.PROCESSING.value)
    with write_session(engine) as s:
        rows = s.execute(select(Image.id, Image.attempts).where(held)).all()
        spent = [i for i, a in rows if a >= max_attempts]
        retry = [i for i, a in rows if a < max_attempts]
        for image_id, attempts in rows:
            if image_id in spent:
                s.execute(update(Image).where(held, Image.id == image_id).values(
                    status=Status.FAILED.value, lease_owner=None, lease_expires_at=None,
                    updated_at=now,
                    error=gave_up(attempts, reason)))
        if retry:
            s.execute(update(Image).where(held, Image.id.in_(retry)).values(
                status=Status.PENDING.value, lease_owner=None, lease_expires_at=None,
                updated_at=now, enqueued_at=now, error=reason[:ERROR_MAX_CHARS]))
    return retry


def reset_to_pending(engine: Engine, ids: Sequence[str], from_statuses: Iterable[str],
                     batch: int = 500) -> list[str]:
    """Put ``ids`` that are in one of ``from_statuses`` back to ``pending`` with fresh attempts.

    Used by ``darkroom retry`` and ``darkroom reprocess``; returns the ids
    that changed (an image being processed right now is left alone).
    """
    statuses = list(from_statuses)
    now = time.time()
    changed: list[str] = []
    for i in range(0, len(ids), batch):
        chunk = list(ids[i:i + batch])
        cond = and_(Image.id.in_(chunk),
                    or_(Image.status.in_(statuses),
                        Image.status.is_(None) if Status.PENDING.value in statuses else false()))
        with write_session(engine) as s:
            hit = list(s.scalars(select(Image.id).where(cond)))
            if hit:
                s.execute(update(Image).where(Image.id.in_(hit), cond).values(
                    status=Status.PENDING.value, attempts=0, error=None, lease_owner=None,
                    lease_expires_at=None, updated_at=now, enqueued_at=now))
        changed.extend(hit)
    return changed


def require_known(engine: Engine, ids: Sequence[str], batch: int = 500) -> None:
    """Raise :class:`~db.errors.UnknownImages` naming every id of ``ids`` that no image has.

    >>> require_known(engine, ["no-such-id"])   # doctest: +SKIP
    Traceback (most recent call last):
    db.errors.UnknownImages: no image with id no-such-id
    """
    known: set[str] = set()
    with read_sessions(engine)() as s:
        for i in range(0, len(ids), batch):
            known.update(s.scalars(select(Image.id).where(Image.id.in_(list(ids[i:i + batch])))))
    unknown = [i for i in dict.fromkeys(ids) if i not in known]
    if unknown:
        raise UnknownImages(unknown)


def get(engine: Engine, image_id: str) -> Image | None:
    with read_sessions(engine)() as s:
        return s.get(Image, image_id)


def variants_of(engine: Engine, image_id: str) -> list[ImageVariant]:
    with read_sessions(engine)() as s:
        return list(s.scalars(select(ImageVariant).where(ImageVariant.image_id == image_id)
                              .order_by(ImageVariant.format, ImageVariant.width)))


def counts(engine: Engine) -> dict[str, int]:
    """Rows per status; every status is present, NULL counts as pending."""
    out = {s.value: 0 for s in Status}
    with read_sessions(engine)() as s:
        for status, n in s.execute(select(Image.status, func.count()).group_by(Image.status)):
            key = status if status in out else Status.PENDING.value
            out[key] += n
    return out


def ids_with_status(engine: Engine, statuses: Iterable[str], limit: int | None = None) -> list[str]:
    with read_sessions(engine)() as s:
        q = select(Image.id).where(Image.status.in_(list(statuses))).order_by(Image.id)
        if limit:
            q = q.limit(limit)
        return list(s.scalars(q))
