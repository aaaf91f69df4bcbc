"""Search by words: full-text (BM25), semantic (the query embedded) and hybrid (RRF).

Modes::

    text     LanceDB's full-text index over each image's searchable text
    vector   the query embedded by the configured embedder, nearest vectors
             (needs an embedder that embeds words into the image space)
    hybrid   both lists fused with reciprocal rank fusion (LanceDB's RRFReranker)
    auto     hybrid when the embedder can embed words, else text

Filters (:class:`Filters`) become one LanceDB ``where`` applied before the
search (``prefilter``), on columns the writer stores with each vector, so a
limit is filled from matching rows. Hits are joined with the images table;
a hit whose row is gone (deleted a moment ago) is dropped.

Scores: ``text`` is BM25 (higher is better, unbounded), ``vector`` is cosine
similarity, ``hybrid`` is the RRF score (sum of 1/(60 + rank)).

>>> result = search(engine, store, embedder, SearchSettings(), "kites", limit=5)   # doctest: +SKIP
>>> [(h.id, h.filename) for h in result.hits]  # doctest: +SKIP
[('0190c8e2-...', 'red_kite.jpg')]
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import Engine, bindparam, select

from db.engine import READONLY
from db.errors import PermanentError
from db.models import Image
from jobs.embeddings import search_index
from jobs.embeddings.embedders.base import Embedder, EmbedderError
from jobs.embeddings.similarity import search_model
from jobs.embeddings.store import VectorStore
from jobs.embeddings.text import SearchSettings, clean_query, parse_metadata, scalar_text

log = logging.getLogger(__name__)

MODES = ("auto", "text", "vector", "hybrid")
STATUSES = ("pending", "processing", "completed", "failed")
SLACK = 5  # extra hits asked for, to cover rows deleted between the SQL and the vector delete
NO_WORDS_HINT = ("the configured embedder cannot embed words (the local embedder describes pixels only); "
                 "set [embeddings] embedder = \"http\" with a text or multimodal model and query_input, "
                 "or use --mode text")


class SearchError(PermanentError, ValueError):
    """The search cannot be run as asked (empty query, unavailable mode, bad filter)."""


class SearchHit(NamedTuple):
    """One hit, best first: ``(id, score, filename, metadata)``."""

    id: str
    score: float
    filename: str
    metadata: dict[str, Any]


@dataclass(frozen=True)
class SearchResult:
    query: str
    mode: str  # the mode that ran: text | vector | hybrid
    hits: list[SearchHit]
    model: str | None = None


@dataclass(frozen=True)
class Filters:
    """What a hit must match; every field is optional.

    >>> Filters(recipe="avatar", since=1767225600, where=(("user", "42"),)).sql()
    "recipe = 'avatar' AND created_at >= 1767225600 AND array_has(meta, 'user=42')"
    """

    recipe: str | None = None
    status: str | None = None  # only completed images are embedded, so others find nothing
    since: float | None = None  # images.created_at >= since (Unix seconds)
    where: tuple[tuple[str, str], ...] = ()  # metadata key == value

    def check(self) -> None:
        if self.status is not None and self.status not in STATUSES:
            raise SearchError(f"status {self.status!r}: expected one of {', '.join(STATUSES)}")
        for key, _ in self.where:
            if not key:
                raise SearchError("--where: expected key=value with a non-empty key")

    def sql(self) -> str | None:
        parts = []
        if self.recipe is not None:
            parts.append(f"recipe = {_quote(self.recipe)}")
        if self.status is not None:
            parts.append(f"status = {_quote(self.status)}")
        if self.since is not None:
            parts.append(f"created_at >= {int(self.since)}")
        parts += [f"array_has(meta, {_quote(f'{k}={v}')})" for k, v in self.where]
        return " AND ".join(parts) or None


def where_pairs(values: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """``{"user": 42}`` as the ``(key, text)`` pairs of :attr:`Filters.where` (42 and "42" both match)."""
    out = []
    for key, value in values.items():
        text = scalar_text(value)
        if text is None:
            raise SearchError(f"where {key}: expected a string, number or boolean, got {type(value).__name__}")
        out.append((str(key), text))
    return tuple(out)


def filters_from(recipe: str | None = None, status: str | None = None, since: Any = None,
                 where: dict[str, Any] | None = None, **unknown: Any) -> Filters:
    """:class:`Filters` from the keyword arguments of ``Darkroom.search``.

    ``since``: Unix seconds, a ``date`` (UTC midnight), a ``datetime`` or an ISO 8601 string.

    >>> filters_from(since="2026-01-01", where={"user": 42}).sql()
    "created_at >= 1767225600 AND array_has(meta, 'user=42')"
    """
    if unknown:
        raise TypeError(f"unknown search filter(s) {', '.join(sorted(unknown))}: "
                        "expected recipe, status, since, where")
    return Filters(recipe=recipe, status=status, since=None if since is None else _timestamp(since),
                   where=where_pairs(where or {}))


def _timestamp(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise SearchError(f"since {value!r}: expected a date such as 2026-01-01") from None
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    raise SearchError(f"since: expected Unix seconds, a date or a datetime, got {type(value).__name__}")


def can_embed_words(embedder: Embedder) -> bool:
    return bool(getattr(embedder, "embeds_text", False)) and hasattr(embedder, "embed_query")


def search(engine: Engine, store: VectorStore, embedder: Embedder, settings: SearchSettings, query: str,
           limit: int = 10, mode: str = "auto", filters: Filters = Filters()) -> SearchResult:
    """The ``limit`` best images for ``query`` (see the module docstring).

    Raises :class:`SearchError` for an empty query, an unknown mode, ``vector``
    or ``hybrid`` with an embedder that cannot embed words, or a bad filter.
    A query with no match gives no hits.
    """
    if mode not in MODES:
        raise SearchError(f"mode {mode!r}: expected one of {', '.join(MODES)}")
    if limit < 1:
        raise SearchError("limit: expected an integer >= 1")
    filters.check()
    text = clean_query(query or "", settings.max_query_chars)
    if not text:
        raise SearchError("empty query: give one or more words to search for")
    model = search_model(engine, store, embedder.model)
    words_ok = can_embed_words(embedder) and model == embedder.model
    if mode in ("vector", "hybrid") and not words_ok:
        if not can_embed_words(embedder):
            raise SearchError(f"--mode {mode}: {NO_WORDS_HINT}")
        raise SearchError(f"--mode {mode}: a model switch to {embedder.model} is under way; "
                          "use --mode text until it finishes")
    run_mode = ("hybrid" if words_ok else "text") if mode == "auto" else mode
    table = store.lance_table(model)
    if table is None:
        return SearchResult(text, run_mode, [], model)
    if not store.search_ready(model, table):
        raise SearchError("the search columns of the vector table are being added; "
                          "the embedding step adds them on its next run")
    vector: np.ndarray | None = None
    if run_mode in ("vector", "hybrid"):
        try:
            vector = embedder.embed_query(text)  # type: ignore[attr-defined]
        except EmbedderError as exc:
            if mode != "auto":
                raise SearchError(f"could not embed the query: {exc}") from exc
            log.warning("search: could not embed the query (%s); searching the text only", exc)
            run_mode = "text"
    indices = store.indices(model, table)
    if run_mode != "vector" and search_index.fts_index(table, indices) is None:
        store.indices_changed(model)  # a cached "no full-text index" is never trusted: read again
        indices = store.indices(model, table)
    rows = _run(table, indices, store, run_mode, text, vector, filters.sql(), limit + SLACK)
    return SearchResult(text, run_mode, _join(engine, rows)[:limit], model)


def _run(table: Any, indices: list[Any], store: VectorStore, mode: str, text: str, vector: np.ndarray | None,
         where: str | None, k: int) -> list[tuple[str, float]]:
    if mode == "text":
        rows = _text_query(table, indices, text, where, k).to_arrow()
        return list(zip(_ids(rows), rows.column("_score").to_pylist()))
    assert vector is not None
    if mode == "vector":
        rows = _vector_query(table, indices, store, vector, where, k).to_arrow()
        return [(i, 1.0 - float(d)) for i, d in zip(_ids(rows), rows.column("_distance").to_pylist())]
    from lancedb.rerankers import RRFReranker

    # The two lists are asked for here rather than through LanceDB's hybrid query
    # builder: it selects our columns without the score columns, and LanceDB then
    # prints a deprecation warning per query on stderr. Like the builder, the
    # full-text list runs on a second thread while this one runs the vector list
    # (LanceDB releases the GIL while it searches).
    text_query = _text_query(table, indices, text, where, k).with_row_id(True)
    pending = _pool().submit(text_query.to_arrow)
    by_vector = _vector_query(table, indices, store, vector, where, k).with_row_id(True).to_arrow()
    fused = RRFReranker().rerank_hybrid(text, by_vector, pending.result()).slice(0, k)
    return list(zip(_ids(fused), fused.column("_relevance_score").to_pylist()))


_POOLS: dict[int, ThreadPoolExecutor] = {}


def _pool() -> ThreadPoolExecutor:
    """This process's search thread (a forked child must not reuse its parent's pool)."""
    pid = os.getpid()
    if pid not in _POOLS:
        _POOLS.clear()
        _POOLS[pid] = ThreadPoolExecutor(max_workers=1, thread_name_prefix="search")
    return _POOLS[pid]


def _text_query(table: Any, indices: list[Any], text: str, where: str | None, k: int) -> Any:
    if search_index.fts_index(table, indices) is None:
        raise SearchError("the full-text index is not built yet; the embedding step builds it on its next run")
    from lancedb.query import LanceFtsQueryBuilder

    # The builders are made directly: table.search() reads the table's schema
    # (to infer the vector column) on every call, ~1-2 ms of a query.
    q = LanceFtsQueryBuilder(table, text, fts_columns="text").select(["image_id", "_score"]).limit(k)
    return q.where(where, prefilter=True) if where else q


def _vector_query(table: Any, indices: list[Any], store: VectorStore, vector: np.ndarray, where: str | None,
                  k: int) -> Any:
    from lancedb.query import LanceVectorQueryBuilder

    q = LanceVectorQueryBuilder(table, np.asarray(vector, np.float32), "vector").distance_type("cosine")
    if any("vector" in idx.columns for idx in indices):
        # refine_factor re-ranks candidates with exact distances (scores stay exact cosine).
        q = q.nprobes(store.index.nprobes).refine_factor(store.index.refine_factor)
    q = q.select(["image_id", "_distance"]).limit(k)
    return q.where(where, prefilter=True) if where else q


def _ids(rows: Any) -> list[str]:
    return [str(i) for i in rows.column("image_id").to_pylist()] if rows.num_rows else []


# One statement for every join (SQLAlchemy caches its compiled form): a primary-key
# lookup of at most limit + SLACK ids, on a plain connection (a session costs ~1 ms more).
_FACTS = select(Image.id, Image.filename, Image.metadata_).where(Image.id.in_(bindparam("ids", expanding=True)))


def _join(engine: Engine, rows: list[tuple[str, float]]) -> list[SearchHit]:
    if not rows:
        return []
    with engine.connect().execution_options(**{READONLY: True}) as conn:
        facts = {r[0]: (r[1], r[2]) for r in conn.execute(_FACTS, {"ids": [i for i, _ in rows]})}
    return [SearchHit(i, score, facts[i][0], parse_metadata(facts[i][1])) for i, score in rows if i in facts]


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
