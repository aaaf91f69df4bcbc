"""The LanceDB vector store: one table per embedding model, keyed by image id.

Each table is ``embeddings_<model slug>_<hash>`` with columns ``image_id``,
``model``, ``vector`` (fixed-size float32 list of the model's dimension) and
``embedded_at``; the schema metadata records the model and dimension.

Writes are batched: :meth:`VectorStore.upsert` is ONE ``merge_insert`` per
call (every single-row write would add a fragment and a version, and search
time grows with fragments). ``image_id`` carries a BTREE scalar index, made
by the writer once per table and kept up to date by ``optimize``, so
``merge_insert``, ``delete`` and lookups by id probe the index instead of
scanning the table. :meth:`VectorStore.optimize` compacts, prunes old
versions and builds/refreshes the ANN index once a table passes
``index_threshold_rows``. Vectors are checked (shape, NaN/inf) before they
reach LanceDB.

>>> store = VectorStore(Path("data/lancedb"))                   # doctest: +SKIP
>>> store.upsert("local-v1", ["img1"], vectors)                   # doctest: +SKIP
>>> store.search("local-v1", vectors[0], limit=5)                 # doctest: +SKIP
[Neighbor(image_id='img1', distance=0.0)]
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from db.errors import PermanentError, RetryableError
from jobs.embeddings import search_index
from jobs.embeddings.embedders.base import EmbedderError, check_vectors

log = logging.getLogger(__name__)

TABLE_PREFIX = "embeddings_"
META_MODEL = b"darkroom.model"
META_DIM = b"darkroom.dim"
DELETE_CHUNK = 500  # ids per DELETE predicate


class VectorsRefused(PermanentError, ValueError):
    """Vectors refused before they reached LanceDB (wrong dimension, NaN/inf)."""


class VectorStoreError(RetryableError):
    """LanceDB failed (I/O, commit conflict after its own retries); retryable."""


@dataclass(frozen=True)
class Neighbor:
    """A search hit: cosine ``distance`` = 1 - cosine similarity."""

    image_id: str
    distance: float

    @property
    def similarity(self) -> float:
        return 1.0 - self.distance


@dataclass(frozen=True)
class IndexSettings:
    """When and how to build the ANN index."""

    threshold_rows: int = 100_000  # below this a flat (exact) search is fast enough
    index_type: str = "IVF_PQ"  # IVF_HNSW_SQ builds ~10x slower on 2 cores
    refine_factor: int = 10  # re-rank refine_factor*k candidates with exact distances
    nprobes: int = 20

    def check(self) -> None:
        if self.index_type not in ("IVF_HNSW_SQ", "IVF_PQ"):
            raise ValueError("index_type: expected 'IVF_HNSW_SQ' or 'IVF_PQ'")
        if self.threshold_rows < 1 or self.refine_factor < 1 or self.nprobes < 1:
            raise ValueError("threshold_rows: expected threshold_rows, refine_factor and nprobes >= 1")


def table_name(model: str) -> str:
    """The table of ``model``: a readable slug plus a hash, so distinct names never collide.

    >>> table_name("local-v1")
    'embeddings_local_v1_9be1c5a2'
    """
    slug = re.sub(r"[^a-z0-9]+", "_", model.lower()).strip("_")[:60] or "model"
    return f"{TABLE_PREFIX}{slug}_{hashlib.sha1(model.encode()).hexdigest()[:8]}"


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class VectorStore:
    """LanceDB at ``directory``; see the module docstring."""

    def __init__(
        self,
        directory: Path | str,
        *,
        read_consistency_s: float = 1.0,
        index: IndexSettings = IndexSettings(),
        keep_versions_s: float = 600.0,
        cache_s: float | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.index = index
        self.keep_versions_s = keep_versions_s
        # Without a consistency interval a long-lived handle never sees other
        # processes' writes; with it, reads re-check the latest version.
        import lancedb  # a slow import (~1-3 s): only where vectors are used

        self._consistency = timedelta(seconds=read_consistency_s)
        self._db = lancedb.connect(self.directory, read_consistency_interval=self._consistency)
        self._tables: dict[str, Any] = {}
        self._id_indexed: set[str] = set()  # tables known to carry the image_id index
        # models() for searches: listing tables and reading each schema costs ~1 ms a query;
        # kept for cache_s (default read_consistency_s, the staleness readers accept already), and dropped
        # whenever this store creates or drops a table.
        self._models_ttl_s = read_consistency_s if cache_s is None else cache_s
        self._models: tuple[float, dict[str, int]] | None = None
        # What searches read of a table on every query (~2.5 ms a query, more than the
        # SQL join): whether it has the search columns (once true, true for good: columns
        # are never dropped) and its indexes (kept for read_consistency_s, like models;
        # dropped whenever this store, or the writer's upkeep through it, changes them).
        self._search_ready: set[str] = set()
        self._indices: dict[str, tuple[float, list[Any]]] = {}

    def reconnect(self) -> None:
        """Forget every open table and connect again (after the directory was lost or replaced)."""
        import lancedb

        self.directory.mkdir(parents=True, exist_ok=True)
        self._db = lancedb.connect(self.directory, read_consistency_interval=self._consistency)
        self._tables.clear()
        self._id_indexed.clear()
        self._search_ready.clear()
        self._indices.clear()
        self._models = None

    def recreate(self) -> Path | None:
        """Start an empty store here: a directory that cannot be read is moved aside, not deleted.

        Returns where the old directory went (None when there was none). Its
        vectors are lost to Darkroom; the rows are re-embedded by the audit
        (:mod:`jobs.embeddings.audit`). The moved directory is kept for a person
        to look at or remove.
        """
        moved: Path | None = None
        if self.directory.exists():
            moved = self.directory.with_name(f"{self.directory.name}.broken-{time.strftime('%Y%m%dT%H%M%S')}")
            n = 1
            while moved.exists():
                n += 1
                moved = moved.with_name(f"{moved.name.split('~')[0]}~{n}")
            self.directory.rename(moved)
        self.reconnect()
        return moved

    # --- tables ---------------------------------------------------------------

    def models(self) -> dict[str, int]:
        """Every model with a table here, with its dimension."""
        now = time.monotonic()
        if self._models is not None and now - self._models[0] < self._models_ttl_s:
            return dict(self._models[1])
        out: dict[str, int] = {}
        for name in self._table_names():
            meta = self._open(name).schema.metadata or {}
            if META_MODEL in meta:
                out[meta[META_MODEL].decode()] = int(meta[META_DIM])
        self._models = (now, dict(out))
        return out

    def has_model(self, model: str) -> bool:
        return table_name(model) in set(self._table_names())

    def drop(self, model: str) -> None:
        """Drop ``model``'s table (after a model switch finished)."""
        name = table_name(model)
        self._tables.pop(name, None)
        self._id_indexed.discard(name)
        self._search_ready.discard(name)
        self._indices.pop(name, None)
        self._models = None
        self._db.drop_table(name, ignore_missing=True)  # type: ignore[call-arg]  # local connections take it
        log.info("dropped vector table %s (model %s)", name, model)

    def _table_names(self) -> list[str]:
        names: list[str] = []
        token: str | None = None
        while True:
            resp = self._db.list_tables(page_token=token)
            names.extend(n for n in resp.tables if n.startswith(TABLE_PREFIX))
            token = resp.page_token
            if not token:
                return names

    def _open(self, name: str) -> Any:
        table = self._tables.get(name)
        if table is None:
            table = self._tables[name] = self._db.open_table(name)
        return table

    def _table(self, model: str, dim: int | None = None) -> Any | None:
        """The model's table; created when ``dim`` is given, else None if absent."""
        name = table_name(model)
        if name in self._tables:
            table = self._tables[name]
        elif name in set(self._table_names()):
            table = self._open(name)
        elif dim is None:
            return None
        else:
            schema = pa.schema(
                [
                    pa.field("image_id", pa.string(), nullable=False),
                    pa.field("model", pa.string(), nullable=False),
                    pa.field("vector", pa.list_(pa.float32(), dim)),
                    pa.field("embedded_at", pa.float64()),
                    *search_index.SEARCH_FIELDS,
                ],
                metadata={META_MODEL: model.encode(), META_DIM: str(dim).encode()},
            )
            table = self._tables[name] = self._db.create_table(name, schema=schema, exist_ok=True)
            self._models = None
        if dim is not None:
            have = int((table.schema.metadata or {}).get(META_DIM, b"0"))
            if have != dim:
                raise VectorsRefused(f"model {model!r} has vectors of dimension {have} here, got {dim}")
        return table

    def _ensure_id_index(self, name: str, table: Any) -> None:
        """Give ``table`` its BTREE index on ``image_id`` unless it has one (writers only).

        Made once (also on an empty table, and on tables written before the
        index existed); new rows are searched beside it until ``optimize``
        folds them in, so the index is never rebuilt from scratch.
        """
        if name in self._id_indexed:
            return
        if not any(idx.columns == ["image_id"] for idx in table.list_indices()):
            from lancedb.index import BTree

            try:
                table.create_index("image_id", config=BTree(), replace=False)
                self._indices.pop(name, None)
            except (OSError, RuntimeError) as exc:
                if not any(idx.columns == ["image_id"] for idx in table.list_indices()):
                    raise VectorStoreError(f"indexing image_id of {name} failed: {exc}") from exc
        self._id_indexed.add(name)

    # --- writes ---------------------------------------------------------------

    def upsert(self, model: str, image_ids: Sequence[str], vectors: np.ndarray,
               attributes: dict[str, list[Any]] | None = None) -> int:
        """Insert or replace the vectors of ``image_ids`` in ONE write; return rows written.

        ``attributes``: the search columns of each row, in order
        (:func:`jobs.embeddings.search_index.attributes_for`); without them the
        columns are NULL until the writer's backfill. Raises
        :class:`VectorsRefused` for a wrong shape or a NaN/inf row.
        """
        if len(image_ids) == 0:
            return 0
        arr = np.asarray(vectors)
        dim = arr.shape[1] if arr.ndim == 2 else -1
        try:
            arr = check_vectors(arr, len(image_ids), dim)
        except EmbedderError as exc:
            raise VectorsRefused(f"refused vectors for model {model!r}: {exc}") from exc
        # A source with a repeated key makes merge_insert write duplicate rows.
        last: dict[str, int] = {}
        for i, image_id in enumerate(image_ids):
            last[str(image_id)] = i
        rows = list(last.values())
        arr = arr[rows]
        table = self._table(model, dim)
        assert table is not None  # made when missing, since dim is given
        self._ensure_id_index(table_name(model), table)
        if not search_index.has_search_columns(table):
            search_index.add_missing_columns(table)  # a table made by an older Darkroom
        extra = search_index.arrow_columns(
            {k: [v[i] for i in rows] for k, v in attributes.items()} if attributes else None, len(rows))
        data = pa.table(
            {
                "image_id": pa.array(list(last), pa.string()),
                "model": pa.array([model] * len(rows), pa.string()),
                "vector": pa.FixedSizeListArray.from_arrays(pa.array(arr.ravel(), pa.float32()), dim),
                "embedded_at": pa.array([time.time()] * len(rows), pa.float64()),
                **extra,
            },
            schema=table.schema,
        )
        try:
            (
                table.merge_insert("image_id")
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .execute(data)
            )
        except (OSError, RuntimeError) as exc:
            raise VectorStoreError(f"writing {len(rows)} vectors for {model!r} failed: {exc}") from exc
        return len(rows)

    def delete(self, image_ids: Iterable[str], model: str | None = None) -> None:
        """Delete the vectors of ``image_ids`` (from every model's table unless ``model`` is given)."""
        ids = [str(i) for i in image_ids]
        if not ids:
            return
        names = [table_name(model)] if model else self._table_names()
        for name in names:
            if name not in set(self._table_names()):
                continue
            table = self._open(name)
            for chunk in _chunks(ids, DELETE_CHUNK):
                try:
                    table.delete("image_id IN (" + ", ".join(_quote(i) for i in chunk) + ")")
                except (OSError, RuntimeError) as exc:
                    raise VectorStoreError(f"deleting vectors from {name} failed: {exc}") from exc

    # --- reads ----------------------------------------------------------------

    def lance_table(self, model: str) -> Any | None:
        """The LanceDB table of ``model`` (None if absent), for search and the writer's upkeep."""
        return self._table(model)

    def search_ready(self, model: str, table: Any) -> bool:
        """Whether ``table`` (the model's) has the search columns; a true answer is kept."""
        name = table_name(model)
        if name in self._search_ready:
            return True
        if search_index.has_search_columns(table):
            self._search_ready.add(name)
            return True
        return False

    def indices(self, model: str, table: Any) -> list[Any]:
        """``table.list_indices()`` of the model's table, kept for ``read_consistency_s``.

        A stale answer costs speed, never rows: an index made by another process
        in the last second is used from the next read on, and unindexed rows are
        searched either way.
        """
        name = table_name(model)
        now = time.monotonic()
        cached = self._indices.get(name)
        if cached is not None and now - cached[0] < self._models_ttl_s:
            return cached[1]
        found = list(table.list_indices())
        self._indices[name] = (now, found)
        return found

    def indices_changed(self, model: str) -> None:
        """Forget the cached index list of ``model`` (after an index was made or rebuilt here)."""
        self._indices.pop(table_name(model), None)

    def count(self, model: str) -> int:
        table = self._table(model)
        return 0 if table is None else int(table.count_rows())

    def ids(self, model: str) -> list[str]:
        """Every image id stored for ``model`` (repeats included, so duplicates show)."""
        table = self._table(model)
        if table is None:
            return []
        # Only the id column: the vectors are most of the table's bytes.
        result = table.search().select(["image_id"]).limit(None).to_arrow()
        return [str(v) for v in result.column("image_id").to_pylist()]

    def get(self, model: str, image_ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored vectors of ``image_ids`` that exist."""
        table = self._table(model)
        out: dict[str, np.ndarray] = {}
        if table is None or not image_ids:
            return out
        for chunk in _chunks([str(i) for i in image_ids], DELETE_CHUNK):
            where = "image_id IN (" + ", ".join(_quote(i) for i in chunk) + ")"
            result = table.search().where(where).select(["image_id", "vector"]).limit(len(chunk)).to_arrow()
            for image_id, vec in zip(result.column("image_id").to_pylist(), result.column("vector").to_pylist()):
                out[str(image_id)] = np.asarray(vec, dtype=np.float32)
        return out

    def search(self, model: str, vector: np.ndarray, limit: int = 10, exclude: str | None = None) -> list[Neighbor]:
        """The ``limit`` nearest images to ``vector`` by cosine distance, nearest first."""
        table = self._table(model)
        if table is None or limit < 1:
            return []
        vec = np.asarray(vector, dtype=np.float32).ravel()
        if not np.isfinite(vec).all():
            raise VectorsRefused("query vector holds NaN or infinity")
        from lancedb.query import LanceVectorQueryBuilder

        # Made directly, and with the cached index list: table.search() and
        # list_indices() each read table metadata on every query.
        query = (
            LanceVectorQueryBuilder(table, vec, "vector")
            .distance_type("cosine")
            .limit(limit + (1 if exclude else 0))
            .select(["image_id", "_distance"])
        )
        if any("vector" in idx.columns for idx in self.indices(model, table)):
            # refine_factor re-ranks candidates with exact distances, so the
            # reported distances stay exact even with a quantised index.
            query = query.nprobes(self.index.nprobes).refine_factor(self.index.refine_factor)
        hits = [Neighbor(str(r["image_id"]), float(r["_distance"])) for r in query.to_list()]
        return [h for h in hits if h.image_id != exclude][:limit]

    def fragments(self, model: str) -> int:
        table = self._table(model)
        return 0 if table is None else int(table.stats()["fragment_stats"]["num_fragments"])

    # --- upkeep ---------------------------------------------------------------

    def optimize(self, model: str | None = None) -> dict[str, dict[str, int]]:
        """Compact, prune versions older than ``keep_versions_s``, index or refresh the index.

        Returns per model: rows, fragments before and after, whether indexed.
        """
        figures: dict[str, dict[str, int]] = {}
        for m in [model] if model else list(self.models()):
            table = self._table(m)
            if table is None:
                continue
            before = self.fragments(m)
            try:
                self._ensure_id_index(table_name(m), table)
                table.optimize(cleanup_older_than=timedelta(seconds=max(self.keep_versions_s, 0.001)))
                rows = int(table.count_rows())
                if rows >= self.index.threshold_rows and not self._indexed(table):
                    log.info("building %s index on %s (%d rows)", self.index.index_type, m, rows)
                    table.create_index("vector", config=self._index_config(), replace=True)
                self.indices_changed(m)
            except (OSError, RuntimeError) as exc:
                raise VectorStoreError(f"optimizing vectors of {m!r} failed: {exc}") from exc
            figures[m] = {"rows": rows, "fragments_before": before, "fragments_after": self.fragments(m),
                          "indexed": int(self._indexed(table))}
        return figures

    def _index_config(self) -> Any:
        from lancedb.index import HnswSq, IvfPq

        if self.index.index_type == "IVF_PQ":
            return IvfPq(distance_type="cosine")
        return HnswSq(distance_type="cosine")  # LanceDB's IVF_HNSW_SQ

    @staticmethod
    def _indexed(table: Any) -> bool:
        return any("vector" in idx.columns for idx in table.list_indices())


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]
