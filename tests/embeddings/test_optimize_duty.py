"""The maintenance ``optimize`` duty uses the store built from ``[embeddings]``, not a default one."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from jobs.maintenance import duties
from tests.embeddings.test_embed_vectors import unit_rows
from worker.app import build
from worker.settings import load


def test_optimize_duty_honours_the_configured_index_and_version_settings(make_config: Callable[..., Path]) -> None:
    config = make_config(embeddings={"index_threshold_rows": 1000, "index_type": "IVF_PQ",
                                     "keep_versions_s": 0.001, "read_consistency_s": 0.0})
    app = build(load(config, env={}))
    app.migrate()
    try:
        store = app.vector_store
        assert (store.index.threshold_rows, store.keep_versions_s) == (1000, 0.001)
        ids = [f"img-{i}" for i in range(1200)]
        vecs = unit_rows(1200, seed=3)
        for lo in range(0, 1200, 400):  # three writes: three table versions besides the first
            store.upsert("m1", ids[lo:lo + 400], vecs[lo:lo + 400])
        table = store._table("m1")
        assert len(table.list_versions()) >= 3
        time.sleep(0.05)  # older than keep_versions_s

        result = duties.run("optimize", app.engine, app.duty_env)

        assert result.outcome == "ok", result.error
        vectors = result.figures["vectors"]["m1"]
        assert vectors["rows"] == 1200
        assert vectors["indexed"] == 1, "the duty ignored embeddings.index_threshold_rows (default 100000)"
        # keep_versions_s = 0.001: the versions before the optimize were pruned
        # (with the default 600 s every one of them would survive).
        versions = store._table("m1").list_versions()
        assert len(versions) <= 3, versions
    finally:
        app.close()
