"""The search columns of a vector table, written by the embedding step (the one writer).

Next to ``image_id``/``vector`` every row carries::

    text        the image's searchable text (jobs.embeddings.text), '' when it has none;
                NULL only in rows written before these columns existed (backfilled)
    recipe      images.recipe, 'default' when NULL
    status      the row's status when it was written ('completed')
    created_at  images.created_at (integer Unix seconds)
    meta        list of 'key=value' strings of the metadata (jobs.embeddings.text.metadata_pairs)

so search filters run inside LanceDB (``where ... prefilter``) and ``--limit``
is filled from matching rows. The filter columns carry scalar indexes
(:data:`SCALAR_INDEXES`: BITMAP on ``recipe``/``status``, BTREE on
``created_at``, LABEL_LIST on ``meta``, which serves ``array_has``), so a
filter is an index probe, not a scan of every row; the writer makes them
(:func:`ensure_scalar_indexes`) and ``optimize`` folds new rows in, rows
written since being scanned beside the index until then. ``text`` has LanceDB's own full-text index
(BM25, stemming and stop words of ``[search] language``); rows written after
the index was built are searched too (unindexed rows are scanned) until
:func:`upkeep` folds them in.

Tables made before these columns existed get them on the writer's next run
(:func:`add_missing_columns`, all NULL), then :func:`upkeep` backfills the
attributes in batches from the database, without re-embedding anything.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
from sqlalchemy import Engine, select

from db.engine import read_sessions
from db.images import DEFAULT_RECIPE
from db.models import Image
from jobs.embeddings.text import SearchSettings, metadata_pairs, searchable_text

log = logging.getLogger(__name__)

# Tables (by URI) whose every row had its attributes at the given monotonic time. Looking
# for rows without them is a scan of the text column (14 ms at 100k rows, more than the
# write of a batch): done once per table per process, then every BACKFILL_RECHECK_S, since
# only an older Darkroom writing into the same table would add such rows.
_backfilled_at: dict[str, float] = {}

SEARCH_FIELDS = (
    pa.field("text", pa.string()),
    pa.field("recipe", pa.string()),
    pa.field("status", pa.string()),
    pa.field("created_at", pa.int64()),
    pa.field("meta", pa.list_(pa.string())),
)
SEARCH_COLUMNS = tuple(f.name for f in SEARCH_FIELDS)
# The filter columns' scalar indexes: (column, LanceDB index type).
SCALAR_INDEXES = (("recipe", "BITMAP"), ("status", "BITMAP"), ("created_at", "BTREE"), ("meta", "LABEL_LIST"))
BACKFILL_ROWS = 2_000  # rows of an old table given their attributes per writer run
REINDEX_UNINDEXED_ROWS = 5_000  # fold new rows into the full-text index past this many
BACKFILL_RECHECK_S = 600.0  # a table found fully backfilled is not scanned again for this long
SQL_CHUNK = 500


def has_search_columns(table: Any) -> bool:
    names = set(table.schema.names)
    return all(c in names for c in SEARCH_COLUMNS)


def add_missing_columns(table: Any) -> list[str]:
    """Add the search columns a table made by an older Darkroom lacks (all NULL); return their names."""
    names = set(table.schema.names)
    missing = [f for f in SEARCH_FIELDS if f.name not in names]
    if missing:
        _backfilled_at.pop(str(getattr(table, "uri", table.name)), None)
        table.add_columns(missing)
        log.info("vector table %s: added search columns %s", table.name, ", ".join(f.name for f in missing))
    return [f.name for f in missing]


def attributes_for(engine: Engine, image_ids: Sequence[str], settings: SearchSettings) -> dict[str, list[Any]]:
    """The search columns of ``image_ids``, in that order, read from the images table.

    One query per 500 ids; an id without a row gets empty text (it will not be found).
    """
    facts: dict[str, tuple[Any, ...]] = {}
    ids = [str(i) for i in image_ids]
    with read_sessions(engine)() as s:
        for start in range(0, len(ids), SQL_CHUNK):
            chunk = ids[start:start + SQL_CHUNK]
            for row in s.execute(select(Image.id, Image.filename, Image.metadata_, Image.recipe, Image.status,
                                        Image.created_at).where(Image.id.in_(chunk))):
                facts[row[0]] = tuple(row[1:])
    out: dict[str, list[Any]] = {c: [] for c in SEARCH_COLUMNS}
    for image_id in ids:
        filename, metadata, recipe, status, created_at = facts.get(image_id, (None, None, None, None, None))
        out["text"].append(searchable_text(filename, metadata, settings.fields, settings.include_filename))
        out["recipe"].append(recipe or DEFAULT_RECIPE)
        out["status"].append(status or "completed")
        out["created_at"].append(int(created_at or 0))
        out["meta"].append(metadata_pairs(metadata))
    return out


def arrow_columns(attributes: dict[str, list[Any]] | None, n: int) -> dict[str, pa.Array]:
    """The search columns for a write of ``n`` rows (NULLs when ``attributes`` is None)."""
    return {f.name: pa.array(attributes[f.name] if attributes else [None] * n, f.type) for f in SEARCH_FIELDS}


def fts_config(settings: SearchSettings) -> Any:
    from lancedb.index import FTS

    return FTS(language=settings.language, stem=settings.stem, remove_stop_words=settings.remove_stop_words,
               lower_case=True, ascii_folding=True)


def fts_index(table: Any, indices: Sequence[Any] | None = None) -> Any | None:
    """The full-text index of ``table`` (``indices``: its ``list_indices()``, when already read)."""
    for idx in table.list_indices() if indices is None else indices:
        if list(idx.columns) == ["text"] and str(idx.index_type).upper().endswith("FTS"):
            return idx
    return None


def _scalar_config(kind: str) -> Any:
    from lancedb.index import Bitmap, BTree, LabelList

    return {"BITMAP": Bitmap, "BTREE": BTree, "LABEL_LIST": LabelList}[kind]()


def ensure_scalar_indexes(table: Any, indices: Sequence[Any] | None = None) -> list[str]:
    """Make the filter columns' scalar indexes a table lacks (writer only); return their columns.

    Made once per table, on an empty one too (tables made by an older Darkroom
    get them on the writer's next run); never rebuilt: ``optimize`` folds new
    rows in, and rows not yet folded in are scanned beside the index.
    """
    have = {tuple(idx.columns) for idx in (table.list_indices() if indices is None else indices)}
    made = []
    for column, kind in SCALAR_INDEXES:
        if (column,) in have:
            continue
        try:
            table.create_index(column, config=_scalar_config(kind), replace=False)
        except RuntimeError as exc:  # made meanwhile (another handle): fine
            if "already exists" not in str(exc):
                raise
        made.append(column)
    if made:
        log.info("vector table %s: scalar indexes made on %s", table.name, ", ".join(made))
    return made


def ensure_fts(table: Any, settings: SearchSettings, indices: Sequence[Any] | None = None) -> bool:
    """Build the full-text index if it is missing or was built for other language settings."""
    idx = fts_index(table, indices)
    if idx is not None:
        details = getattr(idx, "index_details", None) or {}
        wanted = {"language": settings.language, "stem": settings.stem,
                  "remove_stop_words": settings.remove_stop_words}
        if all(details.get(k, v) == v for k, v in wanted.items()):
            return False
    table.create_index("text", config=fts_config(settings), replace=True)
    log.info("vector table %s: built the full-text index (%s)", table.name, settings.language)
    return True


def backfill(engine: Engine, table: Any, settings: SearchSettings, limit: int = BACKFILL_ROWS) -> int:
    """Give up to ``limit`` rows written before the search columns existed their attributes."""
    uri = str(getattr(table, "uri", table.name))
    done_at = _backfilled_at.get(uri)
    if done_at is not None and time.monotonic() - done_at < BACKFILL_RECHECK_S:
        return 0
    rows = table.search().where("text IS NULL").select(["image_id"]).limit(limit).to_arrow()
    ids = [str(i) for i in rows.column("image_id").to_pylist()]
    if not ids:
        _backfilled_at[uri] = time.monotonic()
        return 0
    cols = arrow_columns(attributes_for(engine, ids, settings), len(ids))
    data = pa.table({"image_id": pa.array(ids, pa.string()), **cols})
    table.merge_insert("image_id").when_matched_update_all().execute(data)
    log.info("vector table %s: search attributes backfilled for %d rows", table.name, len(ids))
    return len(ids)


def upkeep(engine: Engine, table: Any, settings: SearchSettings) -> dict[str, int]:
    """The writer's search chores after a run: columns, backfill, index (see the module docstring).

    A failure is logged and left for the next run: search lagging behind is
    no reason to stop embedding.
    """
    try:
        return _upkeep(engine, table, settings)
    except (OSError, RuntimeError, ValueError) as exc:
        log.warning("vector table %s: search upkeep failed, retried next run: %s", table.name, exc)
        return {}


def _upkeep(engine: Engine, table: Any, settings: SearchSettings) -> dict[str, int]:
    added = add_missing_columns(table)
    filled = backfill(engine, table, settings)
    indices = table.list_indices()
    scalar = ensure_scalar_indexes(table, indices)
    built = ensure_fts(table, settings, indices)
    folded = 0
    if not built:
        idx = fts_index(table, indices)
        stats = table.index_stats(idx.name) if idx is not None else None
        if stats is not None and stats.num_unindexed_rows >= REINDEX_UNINDEXED_ROWS:
            table.optimize()  # folds new rows into every index (and compacts)
            folded = int(stats.num_unindexed_rows)
    return {"columns_added": len(added), "backfilled": filled, "index_built": int(built), "folded": folded,
            "scalar_indexes_made": len(scalar)}
