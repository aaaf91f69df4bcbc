"""The local embedder inside the image job: a vector from pixels the job already decoded.

With ``embedder = "local"`` the image job (``jobs/image_job.py``) asks ``render`` for the small copy
(:mod:`jobs.imaging.embed_copy`), describes it here and stores the vector on
its row in the completing transaction (``images.pending_vector``, float32
little-endian, and ``pending_vector_model``). The embedding step stays the
one LanceDB writer: it takes the vector from the row, opens no file for it,
writes it in its batch and clears both columns. HTTP embedders, and rows
whose pending vector is of another model, go through the step as before.

>>> facts = vector_facts(copy)  # doctest: +SKIP
>>> sorted(facts)  # doctest: +SKIP
['pending_vector', 'pending_vector_model']
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import case, literal, null
from sqlalchemy.types import LargeBinary

from db.models import Image as ImageRow
from jobs.embeddings.embedders.base import EmbedderError, check_vectors
from jobs.embeddings.embedders.local import LocalEmbedder

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)

DTYPE = np.dtype("<f4")  # how a pending vector is stored
_EMBEDDER = LocalEmbedder()  # describe() is pure: one instance serves every thread


def describe(copy: Image.Image) -> np.ndarray | None:
    """The local vector of ``copy``; None (the step embeds from the file) if it cannot be made."""
    try:
        return check_vectors(_EMBEDDER.describe(copy)[None, :], 1, _EMBEDDER.dim)[0]
    except (EmbedderError, ValueError, OSError) as exc:  # a flat image has no direction: the step decides
        log.info("inline embedding skipped: %s", exc)
        return None


def vector_facts(vector: np.ndarray | None) -> dict[str, Any]:
    """Column values for ``images.complete``: the pending vector, or NULLs (no stale vector stays).

    A row that already has a vector of this model (a reprocessed image) keeps
    it and gets no pending copy: the step would never pick it up.
    """
    if vector is None:
        return {"pending_vector": None, "pending_vector_model": None}
    model = _EMBEDDER.model
    has_it = ImageRow.embedding_model == model
    blob = literal(np.ascontiguousarray(vector, dtype=DTYPE).tobytes(), LargeBinary())
    return {"pending_vector": case((has_it, null()), else_=blob),
            "pending_vector_model": case((has_it, null()), else_=literal(model))}


def stored(blob: bytes | None, blob_model: str | None, model: str, dim: int) -> np.ndarray | None:
    """A row's pending vector when ``model`` made it and it is usable; else None (embed from the file)."""
    if blob is None or blob_model != model or len(blob) != dim * DTYPE.itemsize:
        return None
    vector = np.frombuffer(blob, dtype=DTYPE).astype(np.float32)
    if not np.isfinite(vector).all() or not vector.any():
        return None
    return vector
