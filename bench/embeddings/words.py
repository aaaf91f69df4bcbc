"""Search by words, timed: full-text, vector and hybrid query latency, index builds, writer cost.

Called by ``bench.py --search`` (see its docstring). A real SQLite database
holds ``rows`` completed images with generated captions and tags; their
vectors, search text and filter columns go through the writer's own path
(``search_index.attributes_for`` + ``VectorStore.upsert``) in batches. Queries
go through :func:`jobs.embeddings.search.search`, as the CLI runs them (the
join with the images table included). The query embedder returns a
precomputed vector near a stored one: embedding the words is the model
server's cost, not the search's.
"""

from __future__ import annotations

import json
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import insert

from db import migrate
from db.engine import make_engine, write_session
from db.models import Image
from jobs.embeddings import search_index
from jobs.embeddings.search import Filters, search
from jobs.embeddings.store import IndexSettings, VectorStore
from jobs.embeddings.text import SearchSettings

MODEL = "bench-words"
WRITE_BATCH = 10_000
_NOUNS = ("kite dune beach dog cat harbour boat city street night rain bird sky forest river bridge "
          "mountain lake tree flower garden market train station window door road field snow sun cloud "
          "tower castle church square fountain statue bicycle car bus ship lighthouse cliff wave sand "
          "rock island valley meadow horse cow sheep goat fox owl hawk eagle falcon heron swan duck")
_ADJECTIVES = ("red blue green yellow old new quiet busy empty crowded wet dry cold warm bright dark "
               "misty sunny windy frozen golden silver tiny huge distant")
_PLACES = ("over the dunes|by the sea|in the city|at dawn|at dusk|under the bridge|near the harbour|"
           "in the rain|after the storm|on the hill|in winter|in summer")
NOUNS, ADJECTIVES, PLACES = _NOUNS.split(), _ADJECTIVES.split(), _PLACES.split("|")


class QueryEmbedder:
    """Looks like an embedder that embeds words: ``embed_query`` returns the next prepared vector."""

    embeds_text = True

    def __init__(self, model: str, vectors: np.ndarray) -> None:
        self.model, self.dim, self._vectors, self._i = model, vectors.shape[1], vectors, 0

    def embed(self, images: Any) -> np.ndarray:  # pragma: no cover - the bench never embeds images
        raise NotImplementedError

    def embed_query(self, text: str) -> np.ndarray:
        self._i = (self._i + 1) % len(self._vectors)
        return self._vectors[self._i]


def caption(rng: random.Random) -> dict[str, Any]:
    words = [rng.choice(ADJECTIVES), rng.choice(NOUNS), rng.choice(PLACES)]
    if rng.random() < 0.5:
        words += ["with", "a", rng.choice(ADJECTIVES), rng.choice(NOUNS)]
    return {"caption": " ".join(words).capitalize(), "tags": rng.sample(NOUNS, 3),
            "user": rng.randrange(1000)}


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def vectors_for(rng: np.random.Generator, centers: np.ndarray, n: int) -> np.ndarray:
    v = centers[rng.integers(0, len(centers), n)] + rng.normal(scale=0.35, size=(n, centers.shape[1]))
    v = v.astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def setup(tmp: Path, rows: int, dim: int) -> tuple[Any, VectorStore, np.ndarray]:
    """``rows`` completed, captioned, embedded images; returns (engine, store, the cluster centres)."""
    engine = make_engine(f"sqlite:///{tmp / f'words-{rows}.db'}")
    migrate.upgrade(engine)
    rnd = random.Random(rows)
    now = time.time()
    ids = [f"img-{i:07d}" for i in range(rows)]
    with write_session(engine) as s:
        for start in range(0, rows, WRITE_BATCH):
            s.execute(insert(Image), [
                {"id": i, "filename": f"photo_{n}.jpg", "original_path": f"originals/{i}.jpg",
                 "mime_type": "image/jpeg", "size": 1000, "status": "completed",
                 "metadata_": json.dumps(caption(rnd)), "created_at": 1_767_225_600 + n, "completed_at": now,
                 "embedding_model": MODEL, "embedded_at": now}
                for n, i in enumerate(ids[start:start + WRITE_BATCH], start)])
    store = VectorStore(tmp / f"words-lancedb-{rows}", index=IndexSettings(threshold_rows=10 * rows))
    rng = np.random.default_rng(rows)
    centers = rng.normal(size=(max(rows // 30, 10), dim)).astype(np.float32)
    settings = SearchSettings()
    t0 = time.perf_counter()
    for start in range(0, rows, WRITE_BATCH):
        chunk = ids[start:start + WRITE_BATCH]
        store.upsert(MODEL, chunk, vectors_for(rng, centers, len(chunk)),
                     search_index.attributes_for(engine, chunk, settings))
    print(f"words setup     rows={rows:7d}  vectors + search columns written in {time.perf_counter() - t0:6.1f} s")
    return engine, store, centers


def build_indexes(store: VectorStore, rows: int, index_type: str) -> None:
    table = store.lance_table(MODEL)
    t = time.perf_counter()
    store.optimize()  # compaction only (threshold above rows)
    print(f"words compact   rows={rows:7d}  {time.perf_counter() - t:6.2f} s")
    t = time.perf_counter()
    search_index.ensure_fts(table, SearchSettings())
    print(f"index build     rows={rows:7d}  full-text (BM25, English stemming) {time.perf_counter() - t:6.2f} s")
    t = time.perf_counter()
    made = search_index.ensure_scalar_indexes(table)
    print(f"index build     rows={rows:7d}  filters ({', '.join(made)}) {time.perf_counter() - t:6.2f} s")
    store.index = IndexSettings(threshold_rows=rows, index_type=index_type)
    t = time.perf_counter()
    store.optimize()
    print(f"index build     rows={rows:7d}  vector {index_type} {time.perf_counter() - t:6.2f} s")


def bench_queries(engine: Any, store: VectorStore, rows: int, queries: int, centers: np.ndarray) -> None:
    rnd = random.Random(7)
    texts = [" ".join(rnd.sample(NOUNS + ADJECTIVES, rnd.choice((1, 2, 3)))) for _ in range(queries)]
    qv = vectors_for(np.random.default_rng(1), centers, queries)
    embedder = QueryEmbedder(MODEL, qv)
    settings = SearchSettings()
    # Filters by how much of the table they keep: --where user=42 about 0.1 %, --where tags=kite
    # about 5 %, --since the newest 10 %, --recipe default every row.
    filters_by_name = {"": Filters(), " + where user": Filters(where=(("user", "42"),)),
                       " + where tag": Filters(where=(("tags", "kite"),)),
                       " + since": Filters(since=1_767_225_600 + rows * 0.9), " + recipe": Filters(recipe="default")}
    cases = [(mode + name, mode, f) for name, f in filters_by_name.items() for mode in ("text", "vector", "hybrid")]
    for label, mode, filters in cases:
        def one(q: str, mode: str = mode, filters: Filters = filters) -> int:
            return len(search(engine, store, embedder, settings, q, 10, mode, filters).hits)

        times, short = timed(one, texts)
        print(f"search k=10     rows={rows:7d}  {label:20s} p50 {pct(times, 50):7.2f} ms  "
              f"p95 {pct(times, 95):7.2f} ms  mean {statistics.fmean(times):7.2f} ms  under 10 hits {short}")
    vector_recall(engine, store, rows, qv)


def vector_recall(engine: Any, store: VectorStore, rows: int, qv: np.ndarray) -> None:
    """recall@10 of vector-mode ``search()`` (the store's nprobes/refine_factor) against an exact search."""
    table = store.lance_table(MODEL)
    assert table is not None
    settings, got = SearchSettings(), 0.0
    for v in qv:
        exact = table.search(v, vector_column_name="vector").distance_type("cosine").bypass_vector_index()
        want = set(exact.select(["image_id", "_distance"]).limit(10).to_arrow().column("image_id").to_pylist())
        hits = search(engine, store, QueryEmbedder(MODEL, v[None, :]), settings, "any", 10, "vector").hits
        got += len(want & {h.id for h in hits}) / 10
    print(f"recall@10       rows={rows:7d}  vector search (nprobes {store.index.nprobes}, refine_factor "
          f"{store.index.refine_factor}) vs exact: {got / len(qv):.3f}")


def timed(fn: Callable[[str], int], texts: list[str]) -> tuple[list[float], int]:
    for q in texts[:5]:
        fn(q)  # warm up: caches, index files
    times, short = [], 0  # short: fewer than 10 hits (a selective filter may leave fewer)
    for q in texts:
        t = time.perf_counter()
        n = fn(q)
        times.append((time.perf_counter() - t) * 1000)
        short += n < 10
    return times, short


def bench_writer_batch(engine: Any, store: VectorStore, rows: int, centers: np.ndarray, repeats: int = 15) -> None:
    """A batch of 64 new images: vectors alone vs vectors + search columns + the writer's search upkeep.

    Interleaved A B A B on the same table, each on fresh ids; ratio taken pair by pair.
    """
    settings = SearchSettings()
    rng = np.random.default_rng(3)
    rnd = random.Random(3)
    table = store.lance_table(MODEL)
    plain, full, ratios = [], [], []
    for r in range(repeats):
        ids_a = [f"new-a-{r}-{i}" for i in range(64)]
        ids_b = [f"new-b-{r}-{i}" for i in range(64)]
        with write_session(engine) as s:
            s.execute(insert(Image), [
                {"id": i, "filename": f"{i}.jpg", "original_path": f"originals/{i}.jpg", "mime_type": "image/jpeg",
                 "size": 1000, "status": "completed", "metadata_": json.dumps(caption(rnd)),
                 "created_at": 1_767_225_600, "completed_at": time.time()} for i in ids_a + ids_b])
        va, vb = vectors_for(rng, centers, 64), vectors_for(rng, centers, 64)
        t = time.perf_counter()
        store.upsert(MODEL, ids_a, va)  # what the writer did before search existed
        a = time.perf_counter() - t
        store.delete(ids_a, model=MODEL)  # else B's upkeep would backfill A's NULL-text rows
        t = time.perf_counter()
        store.upsert(MODEL, ids_b, vb, search_index.attributes_for(engine, ids_b, settings))
        search_index.upkeep(engine, table, settings)  # once per writer run (a run is 1-20 batches)
        b = time.perf_counter() - t
        plain.append(a * 1000)
        full.append(b * 1000)
        ratios.append(b / a)
    print(f"write 64        rows={rows:7d}  vectors alone p50 {pct(plain, 50):7.2f} ms  "
          f"+ search columns and upkeep p50 {pct(full, 50):7.2f} ms  ratio p50 {pct(ratios, 50):5.2f}x  "
          f"(min {min(ratios):.2f}, max {max(ratios):.2f})")


def bench_words(tmp: Path, rows: int, dim: int, queries: int, index_type: str) -> None:
    engine, store, centers = setup(tmp, rows, dim)
    build_indexes(store, rows, index_type)
    bench_queries(engine, store, rows, queries, centers)
    bench_writer_batch(engine, store, rows, centers)
    engine.dispose()
