"""The LanceDB store on real directories."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jobs.embeddings.store import IndexSettings, VectorsRefused, VectorStore, table_name

DIM = 32


def unit_rows(n: int, seed: int = 0, dim: int = DIM) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_upsert_search_count_delete(store: VectorStore) -> None:
    vecs = unit_rows(20)
    ids = [f"img-{i}" for i in range(20)]
    assert store.upsert("m1", ids, vecs) == 20
    assert store.count("m1") == 20 and store.models() == {"m1": DIM}
    hits = store.search("m1", vecs[4], limit=3)
    assert hits[0].image_id == "img-4" and hits[0].distance == pytest.approx(0.0, abs=1e-5)
    assert [h.distance for h in hits] == sorted(h.distance for h in hits)
    # Cosine: the distance is 1 - cosine similarity.
    assert hits[1].distance == pytest.approx(1 - float(vecs[4] @ vecs[int(hits[1].image_id[4:])]), abs=1e-5)
    assert "img-4" not in [h.image_id for h in store.search("m1", vecs[4], limit=3, exclude="img-4")]
    store.delete(["img-4", "img-5", "never-existed"])
    assert store.count("m1") == 18
    assert store.search("m1", vecs[4], limit=1)[0].image_id != "img-4"


def test_upsert_replaces_rather_than_duplicates(store: VectorStore) -> None:
    vecs = unit_rows(3)
    store.upsert("m1", ["a", "b", "c"], vecs)
    store.upsert("m1", ["b", "c"], vecs[:2])  # b and c now hold a's and b's vectors
    store.upsert("m1", ["d", "d"], vecs[1:3])  # a repeated id in one batch: the last wins
    assert sorted(store.ids("m1")) == ["a", "b", "c", "d"]
    got = store.get("m1", ["b", "d", "zzz"])
    assert set(got) == {"b", "d"}
    assert np.allclose(got["b"], vecs[0]) and np.allclose(got["d"], vecs[2])


def test_broken_vectors_never_reach_lancedb(store: VectorStore) -> None:
    bad = unit_rows(3)
    bad[1, 7] = np.nan
    with pytest.raises(VectorsRefused, match="NaN"):
        store.upsert("m1", ["a", "b", "c"], bad)
    assert not store.has_model("m1")  # refused before the table was even created
    store.upsert("m1", ["a"], unit_rows(1))
    inf = unit_rows(1)
    inf[0, 0] = np.inf
    for vec in (inf, unit_rows(1, dim=DIM + 1), unit_rows(2)):
        with pytest.raises(VectorsRefused):
            store.upsert("m1", ["x"], vec)
    assert store.ids("m1") == ["a"]
    with pytest.raises(VectorsRefused, match="NaN"):
        store.search("m1", np.full(DIM, np.nan))


def test_models_live_in_separate_tables(store: VectorStore) -> None:
    store.upsert("local-v1", ["a", "b"], unit_rows(2))
    store.upsert("http:clip@16", ["a"], unit_rows(1, dim=16))
    assert store.models() == {"local-v1": DIM, "http:clip@16": 16}
    assert table_name("a/b") != table_name("a_b")
    store.delete(["a"])
    assert store.ids("local-v1") == ["b"] and store.count("http:clip@16") == 0
    store.drop("http:clip@16")
    assert store.models() == {"local-v1": DIM}
    assert store.search("nothing-here", unit_rows(1)[0]) == []


def test_another_process_sees_writes(tmp_path: Path) -> None:
    writer = VectorStore(tmp_path / "lancedb")
    reader = VectorStore(tmp_path / "lancedb", read_consistency_s=0.0)
    vecs = unit_rows(4)
    writer.upsert("m1", ["a", "b"], vecs[:2])
    assert reader.count("m1") == 2
    writer.upsert("m1", ["c", "d"], vecs[2:])
    assert reader.search("m1", vecs[3], limit=1)[0].image_id == "d"


def test_optimize_bounds_fragments_and_keeps_results(store: VectorStore) -> None:
    vecs = unit_rows(500, seed=3)
    ids = [f"img-{i:03d}" for i in range(500)]
    for start in range(0, 500, 50):  # ten batches, ten writes
        store.upsert("m1", ids[start:start + 50], vecs[start:start + 50])
    assert store.fragments("m1") == 10
    queries = unit_rows(5, seed=99)
    before = [store.search("m1", q, limit=10) for q in queries]
    figures = store.optimize()
    assert figures["m1"]["fragments_before"] == 10 and figures["m1"]["fragments_after"] <= 2
    assert store.fragments("m1") <= 2 and store.count("m1") == 500
    after = [store.search("m1", q, limit=10) for q in queries]
    for b, a in zip(before, after):
        assert [h.image_id for h in b] == [h.image_id for h in a]
        assert np.allclose([h.distance for h in b], [h.distance for h in a], atol=1e-6)


def test_ann_index_above_threshold_keeps_exact_distances(tmp_path: Path) -> None:
    store = VectorStore(tmp_path / "lancedb", index=IndexSettings(threshold_rows=1000), read_consistency_s=0.0)
    vecs = unit_rows(1500, seed=5)
    ids = [f"img-{i}" for i in range(1500)]
    store.upsert("m1", ids[:900], vecs[:900])
    assert store.optimize()["m1"]["indexed"] == 0  # under the threshold: flat search
    store.upsert("m1", ids[900:], vecs[900:])
    assert store.optimize()["m1"]["indexed"] == 1
    for i in (0, 77, 1499):
        hits = store.search("m1", vecs[i], limit=5)
        assert hits[0].image_id == f"img-{i}"
        exact = 1 - vecs @ vecs[i]
        for h in hits:  # refine_factor: distances are exact, not quantised
            assert h.distance == pytest.approx(float(exact[int(h.image_id[4:])]), abs=1e-4)
    # Rows added after the index are still found (optimize folds them in too).
    store.upsert("m1", ["late"], -vecs[:1])
    assert store.search("m1", -vecs[0], limit=1)[0].image_id == "late"
    store.optimize()
    assert store.search("m1", -vecs[0], limit=1)[0].image_id == "late"


def _lance_table(store: VectorStore, model: str):  # the table as LanceDB itself sees it
    import lancedb

    return lancedb.connect(store.directory).open_table(table_name(model))


def test_image_id_has_a_scalar_index_kept_across_writes(store: VectorStore) -> None:
    vecs = unit_rows(300, seed=11)
    ids = [f"img-{i:03d}" for i in range(300)]
    store.upsert("m1", ids[:200], vecs[:200])
    store.upsert("m1", ids[100:], vecs[100:])  # updates and inserts through the index
    store.delete(["img-000"])
    store.optimize()  # folds the new rows into the index; the index stays
    table = _lance_table(store, "m1")
    by_column = {tuple(i.columns): i for i in table.list_indices()}
    assert ("image_id",) in by_column and by_column[("image_id",)].index_type == "BTree"
    assert by_column[("image_id",)].num_indexed_rows == 299
    # A lookup by id is an index probe, not a scan.
    plan = table.search().where("image_id IN ('img-007')").select(["image_id"]).explain_plan(True)
    assert "ScalarIndexQuery" in plan
    assert sorted(store.ids("m1")) == ids[1:]
    assert list(store.get("m1", ["img-007"])) == ["img-007"]
    store.upsert("m1", ["late"], vecs[:1])  # a second store process would not re-create it
    assert len([i for i in _lance_table(store, "m1").list_indices() if i.columns == ["image_id"]]) == 1


def test_ids_reads_every_id_past_a_default_limit(store: VectorStore) -> None:
    ids = [f"img-{i}" for i in range(25)]
    store.upsert("m1", ids, unit_rows(25))
    assert sorted(store.ids("m1")) == sorted(ids)
    assert store.ids("absent") == []
