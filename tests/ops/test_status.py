"""``darkroom status``: counts, failures grouped by error, workers, maintenance, sizes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from db import images
from db.engine import write_session
from db.models import MaintenanceRun
from tests.conftest import run_cli
from tests.daemon import launch
from tests.ops.conftest import Batch
from worker import heartbeat
from worker.app import App, build
from worker.settings import load
from worker.status.report import STATUS_VERSION, gather, render_text


def test_status_json_after_a_mixed_batch(app: App, mixed_batch: Batch, config_path: Path) -> None:
    report = json.loads(run_cli(config_path, "status", "--json").stdout)

    assert report["status_version"] == STATUS_VERSION
    assert report["images"] == {"pending": 2, "processing": 0, "completed": 3, "failed": 3}
    # Two files with the same bad bytes share one group; the missing original has its own.
    groups = {g["error"]: g for g in report["failures"]}
    assert sorted(g["count"] for g in report["failures"]) == [1, 2]
    assert report["failures"][0]["count"] == 2  # largest group first
    not_image = next(e for e in groups if e.startswith("not an image"))
    assert sorted(groups[not_image]["example_ids"]) == sorted(mixed_batch.failed[:2])
    missing = next(e for e in groups if "original file not found" in e)
    assert groups[missing]["example_ids"] == [mixed_batch.failed[2]]
    # The two later rows are pending: their age is measured, the queue holds them.
    assert report["oldest_pending_age_s"] is not None and report["oldest_pending_age_s"] >= 0
    assert report["queue"]["queued"] == 2
    # All three completions happened within the last minute.
    assert report["throughput"][0] == {"window_s": 60, "completed": 3, "per_minute": 3.0}
    assert [t["completed"] for t in report["throughput"]] == [3, 3, 3]
    db = report["storage"]["database"]
    assert db["backend"] == "sqlite" and db["db_bytes"] > 0 and db["wal_bytes"] >= 0
    assert Path(db["path"]) == app.settings.paths.data_dir / "app.db"
    assert report["workers"] == {"timeout_s": 30.0, "live": [], "stale": 0}
    assert report["vectors"]["rows"] == report["images"]["completed"]  # every completed image embedded

    media = report["media"]
    assert media["path"] == str(app.settings.paths.media_dir) and media["writable"] is True
    assert media["free_bytes"] > 0 and media["error"] is None

    text = run_cli(config_path, "status").stdout
    assert "completed 3  failed 3" in text and "pending 2" in text
    assert f"media: {app.settings.paths.media_dir}: " in text and " free, writable" in text
    assert "2 x not an image" in text


def test_status_lists_live_workers_with_what_they_process_now(app: App, tmp_path: Path) -> None:
    from tests.imagefiles import photo
    from tests.ops.conftest import submit

    wid = "hostA-123-abcdef"
    heartbeat.register(app.engine, wid, concurrency=2)
    heartbeat.register(app.engine, "hostB-9-zzzzzz", concurrency=1, now=time.time() - 3600)
    busy = submit(app, photo(tmp_path / "busy.jpg", (80, 60)))
    assert images.claim(app.engine, busy, f"{wid}/4242", lease_s=60) is not None
    # A lease of another worker whose id merely starts the same must not be listed.
    other = submit(app, photo(tmp_path / "other.jpg", (80, 60)))
    assert images.claim(app.engine, other, f"{wid}0/1", lease_s=60) is not None

    report = gather(app)

    live = report["workers"]["live"]
    assert [w["id"] for w in live] == [wid]
    assert live[0]["concurrency"] == 2 and live[0]["pid"] == os.getpid()
    assert [p["image_id"] for p in live[0]["processing"]] == [busy]
    assert live[0]["processing"][0]["filename"] == "busy.jpg"
    assert report["workers"]["stale"] == 1  # hostB stopped heartbeating an hour ago
    assert f"processing {busy} (busy.jpg)" in render_text(report)


def test_status_shows_the_last_run_of_each_duty(app: App) -> None:
    now = time.time()
    with write_session(app.engine) as s:
        s.add_all([
            MaintenanceRun(name="checkpoint", started_at=now - 600, finished_at=now - 599,
                           outcome="ok", figures=json.dumps({"wal_bytes_before": 100})),
            MaintenanceRun(name="checkpoint", started_at=now - 60, finished_at=now - 58.5,
                           outcome="ok", figures=json.dumps({"wal_bytes_before": 4096})),
            MaintenanceRun(name="backup", started_at=now - 30, finished_at=now - 29, outcome="failed",
                           error="disk full"),
        ])
    report = gather(app)
    by_name = {m["name"]: m for m in report["maintenance"]}
    assert set(by_name) == {"checkpoint", "backup"}
    assert by_name["checkpoint"]["figures"] == {"wal_bytes_before": 4096}
    assert by_name["checkpoint"]["duration_s"] == 1.5 and by_name["checkpoint"]["ok"] is True
    assert by_name["backup"]["ok"] is False and by_name["backup"]["error"] == "disk full"
    text = render_text(report)
    assert "wal_bytes_before=4096" in text and "error: disk full" in text


def test_status_watch_refreshes_until_interrupted(config_path: Path) -> None:
    run_cli(config_path, "migrate")
    proc = launch(config_path, "status", "--watch", "--json", "--interval", "0.2", stderr=subprocess.PIPE)
    assert proc.stdout is not None
    first, second = proc.stdout.readline(), proc.stdout.readline()  # one JSON object per refresh
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err  # Ctrl-C ends the watch cleanly
    reports = [json.loads(line) for line in (first, second, *out.splitlines()) if line.strip()]
    assert len(reports) >= 2
    assert reports[-1]["generated_at"] > reports[0]["generated_at"]


def test_status_counts_vector_rows_when_a_store_exists(app: App) -> None:
    vectors = pytest.importorskip("jobs.embeddings.store", reason="the LanceDB store is not in this tree")
    import numpy as np

    assert gather(app)["vectors"] is None  # no store on disk yet: nothing is created by asking
    store = vectors.VectorStore(app.settings.paths.data_dir / "lancedb")
    store.upsert("local-v1", ["a", "b", "c"], np.random.default_rng(0).random((3, 8), dtype=np.float32))
    report = gather(app)
    assert report["vectors"]["rows"] == 3 and report["vectors"]["models"] == {"local-v1": 3}
    assert "vectors: 3 rows  local-v1=3" in render_text(report)


def test_status_counts_vectors_where_embeddings_lancedb_dir_points(make_config: Any) -> None:
    """The one setting ``embeddings.lancedb_dir`` decides where status counts (not data_dir/lancedb)."""
    import numpy as np

    from jobs.embeddings.store import VectorStore

    config = make_config(embeddings={"lancedb_dir": "elsewhere/vectors"})
    app = build(load(config, env={}))
    app.migrate()
    try:
        assert app.settings.embeddings.lancedb_dir == config.parent / "elsewhere" / "vectors"
        store = VectorStore(app.settings.embeddings.lancedb_dir)
        store.upsert("local-v1", ["a", "b"], np.random.default_rng(0).random((2, 8), dtype=np.float32))
        report = gather(app)
        assert report["vectors"] is not None, "status looked for vectors in data_dir/lancedb"
        assert report["vectors"]["rows"] == 2
        assert report["vectors"]["path"] == str(app.settings.embeddings.lancedb_dir)
    finally:
        app.close()


def test_status_reads_the_vector_store_again_only_when_a_table_changed(app: App) -> None:
    """The counts are kept beside the data (worker/status/vector_counts.py): any commit to a table
    (a write, a delete) makes the next status read the store; an unchanged store is not opened."""
    import numpy as np

    from jobs.embeddings.store import VectorStore
    from worker.status.vector_counts import CACHE_NAME, cached_rows

    directory = app.settings.paths.data_dir / "lancedb"
    store = VectorStore(directory)
    rng = np.random.default_rng(1)
    store.upsert("local-v1", ["a", "b", "c"], rng.random((3, 8), dtype=np.float32))
    assert gather(app)["vectors"]["models"] == {"local-v1": 3}
    store.upsert("local-v1", ["d"], rng.random((1, 8), dtype=np.float32))
    assert gather(app)["vectors"]["models"] == {"local-v1": 4}  # a new manifest: read again
    store.delete(["a", "b"])
    assert gather(app)["vectors"]["models"] == {"local-v1": 2}
    reads: list[int] = []

    def read() -> dict:
        reads.append(1)
        return {"path": str(directory), "rows": -1, "models": {}}

    cache = app.settings.paths.data_dir / CACHE_NAME
    kept = cached_rows(directory, cache, read)
    assert kept is not None and kept["rows"] == 2 and reads == []  # unchanged: the kept counts
    store.upsert("local-v1", ["e"], rng.random((1, 8), dtype=np.float32))
    fresh = cached_rows(directory, cache, read)
    assert fresh is not None and fresh["rows"] == -1 and reads == [1]
