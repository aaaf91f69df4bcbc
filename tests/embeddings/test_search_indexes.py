"""The filter columns' scalar indexes: made by the writer, used by filtered searches, never in the way.

Each filter (metadata equality, recipe, status, since) must probe its index
(LanceDB's plan names it) instead of scanning every row, must still fill
``--limit`` from matching rows, and must find rows written after the index
was made, before the next optimize folds them in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from jobs.embeddings import search_index
from jobs.embeddings.search import Filters, SearchError, search
from tests.embeddings.search_helpers import add_completed, embed
from worker.app import App

WANTED = {"caption": "a kite far away over the winter sand", "user": 42, "tags": ["keep", "x"]}


def find(app: App, query: str, limit: int = 10, **filters: Any) -> list[str]:
    result = search(app.engine, app.vector_store, app.embedder, app.settings.search, query, limit, "text",
                    Filters(**filters))
    return [h.filename for h in result.hits]


def table(app: App) -> Any:
    t = app.vector_store.lance_table(app.embedder.model)
    assert t is not None
    return t


def index_types(app: App) -> dict[str, str]:
    return {idx.columns[0]: str(idx.index_type) for idx in table(app).list_indices()}


def plan(app: App, where: str) -> str:
    """LanceDB's plan of a filtered full-text and a filtered vector query."""
    from lancedb.query import LanceFtsQueryBuilder, LanceVectorQueryBuilder

    t = table(app)
    dim = int(t.schema.field("vector").type.list_size)
    fts = LanceFtsQueryBuilder(t, "kite", fts_columns="text").where(where, prefilter=True).limit(10)
    vec = LanceVectorQueryBuilder(t, np.ones(dim, np.float32), "vector").where(where, prefilter=True).limit(10)
    return str(fts.explain_plan()) + "\n" + str(vec.explain_plan())


def add_rows(app: App, tmp: Path, n_other: int, n_wanted: int, tag: str) -> None:
    # The others rank higher for "kite" than the wanted rows, so a filter applied
    # after the search would come back short.
    for i in range(n_other):
        add_completed(app, tmp, f"other-{tag}{i}.jpg", {"caption": "kite kite", "user": 1}, created_at=1_000)
    for i in range(n_wanted):
        add_completed(app, tmp, f"wanted-{tag}{i}.jpg", WANTED, created_at=1_767_225_600 + i, recipe="avatar")


def check_filters(app: App, wanted: int) -> None:
    for filters in ({"where": (("user", "42"),)}, {"where": (("tags", "keep"),)}, {"recipe": "avatar"},
                    {"since": 1_767_225_600}, {"recipe": "avatar", "since": 1_767_225_600,
                                               "where": (("user", "42"),), "status": "completed"}):
        hits = find(app, "kite", limit=10, **filters)
        assert len(hits) == min(10, wanted) and all(n.startswith("wanted") for n in hits), filters
        assert len(find(app, "kite", limit=100, **filters)) == wanted, filters
    assert find(app, "kite", limit=100, status="failed") == []
    assert all(n.startswith("other") for n in find(app, "kite", limit=100, recipe="default"))


def test_the_writer_makes_the_filter_indexes_and_filters_probe_them(app: App, tmp_path: Path) -> None:
    add_rows(app, tmp_path, 30, 12, "a")
    embed(app)
    types = index_types(app)
    assert types["recipe"].upper() == "BITMAP" and types["status"].upper() == "BITMAP"
    assert types["created_at"].upper() == "BTREE" and types["meta"].upper().replace("_", "") == "LABELLIST"
    for where, index in ((Filters(where=(("user", "42"),)).sql(), "meta_idx"),
                         (Filters(recipe="avatar").sql(), "recipe_idx"),
                         (Filters(status="completed").sql(), "status_idx"),
                         (Filters(since=1_767_225_600).sql(), "created_at_idx")):
        assert where is not None
        text = plan(app, where)
        assert text.count(f"@{index}") == 2, text  # both the full-text and the vector query probe it
    check_filters(app, 12)


def test_rows_written_after_the_indexes_are_found_before_the_next_optimize(app: App, tmp_path: Path) -> None:
    add_rows(app, tmp_path, 20, 4, "a")
    first = embed(app)
    assert first.optimized  # the first run optimizes; the next ones within the hour do not
    add_rows(app, tmp_path, 20, 9, "b")
    second = embed(app)
    assert second.embedded == 29 and not second.optimized
    stats = table(app).index_stats("meta_idx")
    assert stats is not None and stats.num_unindexed_rows >= 29  # the new rows are outside the index
    check_filters(app, 13)
    assert len([n for n in find(app, "kite", limit=100, where=(("user", "42"),)) if "-b" in n]) == 9
    app.vector_store.optimize()  # folded in: same answers
    stats = table(app).index_stats("meta_idx")
    assert stats is not None and stats.num_unindexed_rows == 0
    check_filters(app, 13)


def test_a_store_made_before_the_indexes_gets_them_on_the_next_writer_run(app: App, tmp_path: Path) -> None:
    add_rows(app, tmp_path, 20, 6, "a")
    embed(app)
    t = table(app)
    for idx in t.list_indices():  # as an older Darkroom left it: search columns, no filter indexes
        if idx.columns[0] in {c for c, _ in search_index.SCALAR_INDEXES}:
            t.drop_index(idx.name)
    app.vector_store.indices_changed(app.embedder.model)
    assert not {c for c, _ in search_index.SCALAR_INDEXES} & set(index_types(app))
    check_filters(app, 6)  # filters work without the indexes (scanning)
    result = embed(app)  # nothing to embed: the upkeep alone makes them
    assert result.embedded == 0
    assert {c for c, _ in search_index.SCALAR_INDEXES} <= set(index_types(app))
    assert "@meta_idx" in plan(app, "array_has(meta, 'user=42')")
    check_filters(app, 6)
    add_rows(app, tmp_path, 0, 5, "b")  # and rows written after the upgrade are found too
    assert embed(app).embedded == 5
    check_filters(app, 11)


def test_a_search_process_sees_the_full_text_index_the_moment_the_writer_makes_it(app: App, tmp_path: Path) -> None:
    """Another process's store keeps the index list for read_consistency_s; a missing FTS index is re-read."""
    from jobs.embeddings.store import VectorStore

    add_rows(app, tmp_path, 3, 3, "a")
    embed(app)
    fts = search_index.fts_index(table(app))
    assert fts is not None
    table(app).drop_index(fts.name)
    # LanceDB itself re-reads the table on every read; the store's caches keep for 30 s.
    reader = VectorStore(app.settings.embeddings.lancedb_dir, read_consistency_s=0.0, cache_s=30.0)

    def read(query: str) -> list[str]:
        result = search(app.engine, reader, app.embedder, app.settings.search, query, 10, "text", Filters())
        return sorted(h.filename for h in result.hits)

    with pytest.raises(SearchError, match="not built yet"):
        read("kite")
    embed(app)  # the writer (this test's app store) makes the index again
    assert len(read("kite")) == 6  # at once, not 30 s later
    assert read("winter") == [f"wanted-a{i}.jpg" for i in range(3)]
