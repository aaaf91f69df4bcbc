"""Similarity search over the stored vectors: by image id or by a file.

While a model switch is in progress (the configured model does not cover
every completed image yet) searches keep using the old model's vectors; once
the new model covers everything the embedding step drops the old table and
searches move over.

>>> hits = similar(engine, store, embedder, "0190c8e2-...", limit=5)   # doctest: +SKIP
>>> [(h.image_id, round(h.distance, 3)) for h in hits]  # doctest: +SKIP
[('0190c8e3-...', 0.012), ...]
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, select

from db.engine import read_sessions
from db.errors import PermanentError
from db.models import Image
from jobs.embeddings import rows
from jobs.embeddings.embedders import EmbedderError, EmbedInput, LocalEmbedder
from jobs.embeddings.embedders.base import Embedder
from jobs.embeddings.store import VectorStore


class SimilarityError(PermanentError):
    """The query cannot be answered (unknown id, no vector yet, unreadable file)."""


@dataclass(frozen=True)
class SimilarImage:
    image_id: str
    distance: float  # cosine distance, 0 = same direction
    similarity: float  # 1 - distance
    filename: str | None
    original_path: str | None
    model: str


def search_model(engine: Engine, store: VectorStore, current: str) -> str:
    """The model searches use: ``current`` unless a switch to it is still under way."""
    others = {m: store.count(m) for m in store.models() if m != current}
    if not others or rows.lacking_count(engine, current) == 0:
        return current
    return max(others, key=lambda m: others[m])


def similar(engine: Engine, store: VectorStore, embedder: Embedder, query: str | os.PathLike[str],
            limit: int = 10) -> list[SimilarImage]:
    """The ``limit`` images nearest to ``query``: an image id, or the path of an image file.

    Raises :class:`SimilarityError` with a readable message when the query
    cannot be answered.
    """
    model = search_model(engine, store, embedder.model)
    exclude: str | None = None
    text = os.fspath(query)
    path = Path(text)
    if path.is_file():
        qembedder = embedder if model == embedder.model else _embedder_for(model)
        if qembedder is None:  # the old model's embedder is gone: search what the new one has
            model, qembedder = embedder.model, embedder
        try:
            vector = qembedder.embed([EmbedInput(path, text=rows.caption_text(path.name, None))])[0]
        except EmbedderError as exc:
            raise SimilarityError(f"cannot embed {path}: {exc}") from exc
    else:
        exclude = text
        vector = store.get(model, [text]).get(text)
        if vector is None:
            raise SimilarityError(_why_no_vector(engine, text, model))
    hits = store.search(model, vector, limit=limit, exclude=exclude)
    facts = _facts(engine, [h.image_id for h in hits])
    out = []
    for h in hits:
        filename, original_path = facts.get(h.image_id, (None, None))
        out.append(SimilarImage(h.image_id, h.distance, h.similarity, filename, original_path, model))
    return out


def _embedder_for(model: str) -> Embedder | None:
    local = LocalEmbedder()
    return local if local.model == model else None


def _why_no_vector(engine: Engine, image_id: str, model: str) -> str:
    with read_sessions(engine)() as s:
        row = s.execute(select(Image.status, Image.embedding_model, Image.error)
                        .where(Image.id == image_id)).first()
    if row is None:
        return f"no image with id {image_id!r} and no such file"
    status, emb_model, error = row
    if status != "completed":
        return f"image {image_id} is {status}; only completed images are embedded"
    if emb_model and error and error.startswith(rows.EMBEDDING_ERROR_PREFIX):
        return f"image {image_id} has no vector: {error}"
    return f"image {image_id} has no vector for model {model} yet; the embedding step will add it shortly"


def _facts(engine: Engine, ids: list[str]) -> dict[str, tuple[str | None, str | None]]:
    if not ids:
        return {}
    with read_sessions(engine)() as s:
        return {r[0]: (r[1], r[2]) for r in s.execute(
            select(Image.id, Image.filename, Image.original_path).where(Image.id.in_(ids)))}
