"""SQL of the embedding step: which images need a vector, and recording the outcome.

An image is *covered* by a model when ``images.embedding_model`` names it:
with ``embedded_at`` set it has a vector; with ``embedded_at`` NULL the
embedder refused it for good and ``error`` says why (it is not retried until
the model changes or the image is reprocessed).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Engine, case, func, or_, select, update

from db.engine import read_sessions, rowcount, write_session
from db.models import Image, Status

EMBEDDING_ERROR_PREFIX = "embedding refused: "
CAPTION_KEYS = ("caption", "alt", "title", "description", "tags")


@dataclass(frozen=True)
class Candidate:
    id: str
    filename: str
    original_path: str
    metadata: str | None
    created_at: int | None
    recipe: str | None = None  # the file is decoded as this recipe's job decoded it
    pending_vector: bytes | None = None  # the image job's vector (jobs/embeddings/inline.py) ...
    pending_vector_model: str | None = None  # ... and the model that made it


@dataclass(frozen=True)
class Embedded:
    id: str
    duplicate_of: str | None
    duplicate_score: float | None


def _lacking(model: str) -> ColumnElement[bool]:
    return (Image.status == Status.COMPLETED.value) & or_(
        Image.embedding_model.is_(None), Image.embedding_model != model)


def candidates(engine: Engine, model: str, limit: int) -> list[Candidate]:
    """Completed images without an embedding for ``model``, oldest completion first."""
    with read_sessions(engine)() as s:
        rows = s.execute(
            select(Image.id, Image.filename, Image.original_path, Image.metadata_, Image.created_at, Image.recipe,
                   Image.pending_vector, Image.pending_vector_model)
            .where(_lacking(model))
            .order_by(Image.completed_at, Image.id)
            .limit(limit)
        ).all()
    return [Candidate(*row) for row in rows]


def lacking_count(engine: Engine, model: str) -> int:
    with read_sessions(engine)() as s:
        return int(s.scalar(select(func.count()).select_from(Image).where(_lacking(model))) or 0)


def record_embedded(engine: Engine, model: str, done: Sequence[Embedded]) -> list[str]:
    """Mark ``done`` embedded by ``model`` (their pending vectors are spent); returns the ids whose row
    is gone or no longer completed."""
    now = time.time()
    lost = []
    with write_session(engine) as s:
        for e in done:
            n = rowcount(s.execute(
                update(Image).where(Image.id == e.id, Image.status == Status.COMPLETED.value)
                .values(embedding_model=model, embedded_at=now, duplicate_of=e.duplicate_of,
                        duplicate_score=e.duplicate_score, pending_vector=None, pending_vector_model=None)))
            if n != 1:
                lost.append(e.id)
    return lost


def record_refused(engine: Engine, model: str, refused: dict[str, str]) -> None:
    """Mark images the embedder refused for good (the reason goes to ``error``)."""
    with write_session(engine) as s:
        for image_id, reason in refused.items():
            s.execute(
                update(Image).where(Image.id == image_id, Image.status == Status.COMPLETED.value)
                .values(embedding_model=model, embedded_at=None, duplicate_of=None, duplicate_score=None,
                        pending_vector=None, pending_vector_model=None,
                        error=(EMBEDDING_ERROR_PREFIX + reason)[:2000])
            )


def caption_text(filename: str, metadata: str | None) -> str:
    """What a text-only model embeds: caption-like metadata, else the filename and every metadata value."""
    try:
        meta = json.loads(metadata) if metadata else {}
    except json.JSONDecodeError:
        meta = {"metadata": metadata}
    if not isinstance(meta, dict):
        meta = {"metadata": meta}
    parts = [_flat(meta[k]) for k in CAPTION_KEYS if meta.get(k)]
    if not parts:
        parts = [filename.rsplit(".", 1)[0].replace("_", " ").replace("-", " ")]
        parts += [f"{k}: {_flat(v)}" for k, v in meta.items() if v not in (None, "", [], {})]
    return ". ".join(p for p in parts if p)[:4000]


def _flat(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


def embedding_counts(engine: Engine, model: str) -> dict[str, int]:
    """For ``status``: completed images embedded by ``model``, waiting, refused, near-duplicates."""
    def count(cond: ColumnElement[bool]) -> Any:
        return func.sum(case((cond, 1), else_=0))

    this_model = Image.embedding_model == model
    with read_sessions(engine)() as s:  # one pass over the completed rows, not four
        embedded, refused, waiting, dups = s.execute(select(
            count(this_model & Image.embedded_at.is_not(None)),
            count(this_model & Image.embedded_at.is_(None)),
            count(or_(Image.embedding_model.is_(None), Image.embedding_model != model)),
            count(Image.duplicate_of.is_not(None)),
        ).where(Image.status == Status.COMPLETED.value)).one()
    return {"embedded": int(embedded or 0), "waiting": int(waiting or 0),
            "refused": int(refused or 0), "duplicates": int(dups or 0)}


def _claims() -> ColumnElement[bool]:
    """Rows that say they have a vector: completed, a model named and ``embedded_at`` set."""
    return (Image.status == Status.COMPLETED.value) & Image.embedding_model.is_not(None) \
        & Image.embedded_at.is_not(None)


def claimed_ids(engine: Engine, batch: int = 5_000) -> dict[str, set[str]]:
    """Every image id claiming a vector, by model (read in pages of ``batch``, by id)."""
    out: dict[str, set[str]] = {}
    after = ""
    while True:
        with read_sessions(engine)() as s:
            page = s.execute(select(Image.id, Image.embedding_model).where(_claims(), Image.id > after)
                             .order_by(Image.id).limit(batch)).all()
        if not page:
            return out
        for image_id, model in page:
            out.setdefault(str(model), set()).add(str(image_id))
        after = page[-1][0]


def claim_counts(engine: Engine, model: str | None = None) -> dict[str, int]:
    """How many rows claim a vector, by model (only ``model``'s when given)."""
    query = select(Image.embedding_model, func.count()).where(_claims())
    if model is not None:
        query = query.where(Image.embedding_model == model)
    with read_sessions(engine)() as s:
        return {str(m): int(n) for m, n in s.execute(query.group_by(Image.embedding_model))}


def clear_claims(engine: Engine, model: str, ids: Sequence[str], batch: int = 500) -> int:
    """Forget that ``ids`` have a ``model`` vector (it is not in the store): the step embeds them again."""
    cleared = 0
    for i in range(0, len(ids), batch):
        with write_session(engine) as s:
            cleared += rowcount(s.execute(
                update(Image).where(Image.id.in_(list(ids[i:i + batch])), Image.embedding_model == model,
                                    Image.embedded_at.is_not(None))
                .values(embedding_model=None, embedded_at=None)))
    return cleared
