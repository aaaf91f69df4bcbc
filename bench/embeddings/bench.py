"""Embedding throughput and vector search latency.

    .venv/bin/python bench/embeddings/bench.py [--images 200] [--rows 10000,100000] [--parts embed,vectors,words]

Prints: local-embedder throughput (images/s, ms/image) on generated JPEG
photos at two sizes; LanceDB batched upsert rate; search latency p50/p95
(flat, and with the ANN index) at each row count; lookup / upsert / delete by
image id with the ``image_id`` scalar index and without it. Vectors for the search part
are random unit vectors of the local embedder's dimension (search cost does
not depend on where the numbers came from).

``words`` (bench/embeddings/words.py): search by words at each row count:
full-text, vector and hybrid query latency p50/p95 through ``search()``, the
full-text and vector index build times, and a batch of 64 new images written
with their search columns and the writer's search upkeep vs their vectors alone.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from jobs.embeddings.embedders import EmbedInput, LocalEmbedder  # noqa: E402
from jobs.embeddings.store import IndexSettings, VectorStore  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from words import bench_words  # noqa: E402


def _photos_module():  # the generator the tests use
    spec = importlib.util.spec_from_file_location("embed_photos", ROOT / "tests/embeddings/embed_photos.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def bench_embed(tmp: Path, n: int, size: tuple[int, int]) -> None:
    photos = _photos_module()
    paths = []
    base = [photos.make_photo(i, (640, 480)) for i in range(min(n, 20))]
    for i in range(n):  # upscale a few distinct photos: generation is slower than embedding
        p = tmp / f"p{size[0]}-{i}.jpg"
        base[i % len(base)].resize(size).save(p, quality=88)
        paths.append(p)
    emb = LocalEmbedder()
    emb.embed([EmbedInput(paths[0])])  # warm up
    t0 = time.perf_counter()
    for start in range(0, n, 32):
        emb.embed([EmbedInput(p) for p in paths[start:start + 32]])
    dt = time.perf_counter() - t0
    print(f"embed local-v2  {size[0]}x{size[1]} JPEG  n={n:5d}  {n / dt:8.1f} images/s  {dt / n * 1000:6.2f} ms/image")


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def bench_search(tmp: Path, rows: int, dim: int, queries: int, index_type: str) -> None:
    store = VectorStore(tmp / f"lancedb-{rows}", index=IndexSettings(threshold_rows=rows))
    rng = np.random.default_rng(rows)
    # Clustered unit vectors (like descriptors of a photo library: groups of
    # similar shots), and queries that are small perturbations of stored ones.
    centers = rng.normal(size=(max(rows // 30, 10), dim)).astype(np.float32)
    batch = 10_000
    t0 = time.perf_counter()
    for start in range(0, rows, batch):
        n = min(batch, rows - start)
        v = centers[rng.integers(0, len(centers), n)] + rng.normal(scale=0.35, size=(n, dim)).astype(np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        if start == 0:
            qs = v[:queries] + rng.normal(scale=0.02, size=(queries, dim)).astype(np.float32)
        store.upsert("bench", [f"img-{i}" for i in range(start, start + len(v))], v)
    dt = time.perf_counter() - t0
    print(f"upsert          rows={rows:7d}  batches of {batch}: {rows / dt:9.0f} rows/s  "
          f"fragments={store.fragments('bench')}")

    def run(label: str) -> list[str]:
        times, firsts = [], []
        store.search("bench", qs[0], limit=10)  # warm up
        for q in qs:
            t = time.perf_counter()
            hits = store.search("bench", q, limit=10)
            times.append((time.perf_counter() - t) * 1000)
            firsts.append(hits[0].image_id)
        print(f"search k=10     rows={rows:7d}  {label:28s} p50 {pct(times, 50):7.2f} ms  "
              f"p95 {pct(times, 95):7.2f} ms  mean {statistics.fmean(times):7.2f} ms")
        return firsts

    store.index = IndexSettings(threshold_rows=rows * 10)  # compaction only
    t = time.perf_counter()
    store.optimize()
    print(f"optimize        rows={rows:7d}  compaction {time.perf_counter() - t:6.2f} s  "
          f"fragments={store.fragments('bench')}")
    flat = run("flat (exact)")
    store.index = IndexSettings(threshold_rows=rows, index_type=index_type)
    t = time.perf_counter()
    store.optimize()
    print(f"index build     rows={rows:7d}  {store.index.index_type} {time.perf_counter() - t:6.2f} s")
    ann = run(f"{store.index.index_type} + refine x10")
    agree = sum(a == b for a, b in zip(flat, ann)) / len(flat)
    print(f"recall@1        rows={rows:7d}  ANN vs exact: {agree:.3f}")
    bench_by_id(store, rows, rng)


def bench_by_id(store: VectorStore, rows: int, rng: np.random.Generator, repeats: int = 10) -> None:
    """Lookup (20 ids), upsert (100 existing ids) and delete (20 ids) by id, with the index and without."""
    import lancedb

    from jobs.embeddings.store import table_name

    def measure(label: str) -> None:
        get_ms, up_ms, del_ms = [], [], []
        for _ in range(repeats):
            picked = [f"img-{i}" for i in rng.choice(rows, 140, replace=False)]
            t = time.perf_counter()
            stored = store.get("bench", picked[:20])
            get_ms.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            store.upsert("bench", picked[20:120], np.stack([stored[picked[0]]] * 100))
            up_ms.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            store.delete(picked[120:], model="bench")
            del_ms.append((time.perf_counter() - t) * 1000)
        print(f"by image_id     rows={rows:7d}  {label:28s} get(20) p50 {pct(get_ms, 50):7.2f} ms  "
              f"upsert(100) p50 {pct(up_ms, 50):7.2f} ms  delete(20) p50 {pct(del_ms, 50):7.2f} ms")

    store.upsert("bench", ["warm-up"], np.ones((1, LocalEmbedder.dim), np.float32))  # the store makes its index
    store.optimize()  # the index covers every row, as after a scheduled optimize
    measure("with image_id BTREE index")
    # The store makes the index once per process, so dropping it behind its
    # back shows what every write and lookup cost before the index existed.
    table = lancedb.connect(store.directory).open_table(table_name("bench"))
    for idx in table.list_indices():
        if idx.columns == ["image_id"]:
            table.drop_index(idx.name)
    measure("without (full scans)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--rows", default="10000,100000")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--index-type", default="IVF_PQ", choices=["IVF_PQ", "IVF_HNSW_SQ"])
    ap.add_argument("--parts", default="embed,vectors,words",
                    help="embed (embedder throughput), vectors (similar search, by id), words (search by words)")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    row_counts = [int(r) for r in args.rows.split(",")]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if "embed" in parts:
            bench_embed(tmp, args.images, (1024, 768))
            bench_embed(tmp, max(20, args.images // 5), (4000, 3000))
        for rows in row_counts if "vectors" in parts else []:
            bench_search(tmp, rows, LocalEmbedder.dim, args.queries, args.index_type)
        for rows in row_counts if "words" in parts else []:
            bench_words(tmp, rows, LocalEmbedder.dim, args.queries, args.index_type)


if __name__ == "__main__":
    main()
