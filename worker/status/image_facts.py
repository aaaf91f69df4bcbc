"""What the status page shows of single images: one image's facts, search hits, thumbnails.

Plain data (dicts and lists) read from the database and the vector store;
the HTML is :mod:`worker.status.web.search_page`. Reads only: the vector
store is opened only when its directory exists (opening it would create it).
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from db.engine import read_sessions
from db.models import Image, ImageVariant
from jobs.embeddings.text import parse_metadata

if TYPE_CHECKING:
    from worker.app import App

log = logging.getLogger(__name__)

NEAREST = 8  # nearest images shown on an image's page


def thumbnails(app: App, image_ids: list[str]) -> dict[str, str]:
    """The variant row id to show for each image that has one: the smallest WebP, else the smallest."""
    if not image_ids:
        return {}
    with read_sessions(app.engine)() as s:
        rows = s.execute(select(ImageVariant.image_id, ImageVariant.id)
                         .where(ImageVariant.image_id.in_(image_ids))
                         .order_by(ImageVariant.image_id, ImageVariant.format != "webp", ImageVariant.width)).all()
    out: dict[str, str] = {}
    for image_id, variant_id in rows:
        out.setdefault(image_id, variant_id)
    return out


def image_facts(app: App, image_id: str) -> dict[str, Any] | None:
    """Everything the page of one image shows, or None when there is no such image."""
    with read_sessions(app.engine)() as s:
        row = s.get(Image, image_id)
        if row is None:
            return None
        variants = [{"id": v.id, "width": v.width, "height": v.height, "format": v.format, "size": v.size}
                    for v in s.scalars(select(ImageVariant).where(ImageVariant.image_id == image_id)
                                       .order_by(ImageVariant.format, ImageVariant.width))]
        facts: dict[str, Any] = {
            "id": row.id, "filename": row.filename, "status": row.status, "mime_type": row.mime_type,
            "size": row.size, "width": row.width, "height": row.height, "recipe": row.recipe or "default",
            "created_at": row.created_at, "started_at": row.started_at, "completed_at": row.completed_at,
            "attempts": row.attempts, "error": row.error, "metadata": parse_metadata(row.metadata_),
            "placeholder": row.placeholder, "dominant_color": row.dominant_color, "taken_at": row.taken_at,
            "embedding_model": row.embedding_model, "duplicate_of": row.duplicate_of,
            "duplicate_score": row.duplicate_score, "timings": _timings(row.timings), "variants": variants,
        }
    facts["nearest"], facts["nearest_note"] = nearest(app, image_id)
    return facts


def placeholder_of(app: App, image_id: str) -> str | None:
    with read_sessions(app.engine)() as s:
        return s.scalar(select(Image.placeholder).where(Image.id == image_id))


def _timings(raw: str | None) -> list[tuple[str, str]]:
    """``(stage, "0.123 s")`` pairs of the row's timings JSON; unreadable JSON is shown as it is."""
    if not raw:
        return []
    try:
        doc = json.loads(raw)
    except (json.JSONDecodeError, TypeError):
        return [("timings", raw)]
    if not isinstance(doc, dict):
        return [("timings", raw)]
    return [(str(k), f"{v:.3f} s" if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v))
            for k, v in doc.items()]


def nearest(app: App, image_id: str) -> tuple[list[dict[str, Any]], str]:
    """The image's nearest images by vector, with their thumbnails, and a note when there are none."""
    if not app.has_vector_store():
        return [], "no vectors yet"
    from jobs.embeddings.embedders.base import EmbedderError
    from jobs.embeddings.similarity import SimilarityError, similar
    from jobs.embeddings.store import VectorsRefused, VectorStoreError

    try:
        hits = similar(app.engine, app.vector_store, app.embedder, image_id, limit=NEAREST)
    except SimilarityError as exc:
        return [], str(exc)
    except (EmbedderError, VectorsRefused, VectorStoreError, OSError) as exc:
        log.warning("status page: nearest images of %s: %s", image_id, exc)
        return [], f"nearest images unavailable: {exc}"
    thumbs = thumbnails(app, [h.image_id for h in hits])
    return [{"id": h.image_id, "filename": h.filename, "similarity": h.similarity,
             "variant": thumbs.get(h.image_id)} for h in hits], "" if hits else "no other image has a vector"


def search_hits(app: App, query: str, mode: str, limit: int) -> tuple[dict[str, Any] | None, str]:
    """Run a search for the page: (``{"mode", "hits": [...]}``, "") or (None, a message for the user)."""
    from jobs.embeddings.embedders.base import EmbedderError
    from jobs.embeddings.search import SearchError, search

    if not app.has_vector_store():
        return None, "nothing is searchable yet: no image has been embedded"
    try:
        result = search(app.engine, app.vector_store, app.embedder, app.settings.search, query, limit, mode)
    except (SearchError, EmbedderError) as exc:
        return None, str(exc)
    thumbs = thumbnails(app, [h.id for h in result.hits])
    hits = [{"id": h.id, "score": h.score, "filename": h.filename, "metadata": h.metadata,
             "variant": thumbs.get(h.id)} for h in result.hits]
    return {"mode": result.mode, "query": result.query, "hits": hits}, ""
