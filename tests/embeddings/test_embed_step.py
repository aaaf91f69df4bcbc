"""The embedding step on a real SQLite database, real LanceDB dir and real images."""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import update

from db import images
from db.engine import write_session
from db.models import Image as ImageRow
from db.models import Status
from jobs.embeddings import lease as embedding_lease
from jobs.embeddings.embedders import HttpEmbedder, HttpEmbedderSettings, LocalEmbedder
from jobs.embeddings.embedders.base import Embedder
from jobs.embeddings.settings import EmbeddingSettings
from jobs.embeddings.similarity import SimilarImage, SimilarityError, similar
from jobs.embeddings.step import LEASE_NAME, StepResult, run_step
from jobs.embeddings.store import VectorStore
from tests.embeddings.embed_photos import TRANSFORMS
from tests.embeddings.embed_server import EmbedServer
from worker.app import App, build, make_embedder, make_vector_store
from worker.settings import load


def completed(app: App, paths: list[Path]) -> list[str]:
    """Rows as process_image leaves them: completed, no embedding yet."""
    ids = []
    for i, p in enumerate(paths):
        image_id = images.insert_image(app.engine, filename=p.name, original_path=str(p),
                                       mime_type="image/png", size=p.stat().st_size)
        with write_session(app.engine) as s:
            s.execute(update(ImageRow).where(ImageRow.id == image_id).values(
                status=Status.COMPLETED.value, completed_at=time.time() + i * 1e-3))
        ids.append(image_id)
    return ids


def settings_of(app: App, **kw: object) -> EmbeddingSettings:
    return dataclasses.replace(app.settings.embeddings, **kw)  # type: ignore[arg-type]


def find(app: App, cfg: EmbeddingSettings, query: str | Path, limit: int = 10,
         embedder: Embedder | None = None) -> list[SimilarImage]:
    return similar(app.engine, make_vector_store(cfg), embedder or make_embedder(cfg), query, limit)


def step(app: App, embedder: object, cfg: EmbeddingSettings, owner: str = "test") -> StepResult:
    return run_step(app.engine, make_vector_store(cfg), embedder, cfg, app.settings.paths.media_dir, owner)  # type: ignore[arg-type]


def test_step_embeds_in_batches_and_similar_finds_copies(app: App, corpus: list[Path], tmp_path: Path) -> None:
    originals = corpus[:12]
    copies = []
    for name, fn in TRANSFORMS.items():
        with Image.open(originals[0]) as im:
            p = tmp_path / f"copy-{name}.jpg"
            fn(im.convert("RGB")).save(p, quality=90)
            copies.append(p)
    ids = completed(app, originals)
    cfg = settings_of(app, batch_size=5, duplicate_threshold=0.95)
    result = step(app, LocalEmbedder(), cfg)
    assert result.outcome == "done" and result.embedded == 12 and result.remaining == 0
    store = make_vector_store(cfg)
    assert sorted(store.ids("local-v2")) == sorted(ids)
    row = images.get(app.engine, ids[3])
    assert row is not None and row.embedding_model == "local-v2" and row.embedded_at
    # Each transformed copy, as a FILE query, finds the original first.
    for copy in copies:
        hits = find(app, cfg, copy, limit=3)
        assert hits[0].image_id == ids[0] and hits[0].original_path == str(originals[0])
    # By id: the image itself is not its own neighbour.
    assert ids[0] not in [h.image_id for h in find(app, cfg, ids[0], limit=5)]
    # A resized copy completed later is recorded as a near-duplicate of the original.
    dup_id = completed(app, [copies[list(TRANSFORMS).index("resized")]])[0]
    assert step(app, LocalEmbedder(), cfg).duplicates == 1
    row = images.get(app.engine, dup_id)
    assert row is not None and row.duplicate_of == ids[0] and row.duplicate_score > 0.95
    assert images.get(app.engine, ids[1]).duplicate_of is None  # type: ignore[union-attr]


def test_unreadable_image_is_refused_and_the_rest_embedded(app: App, corpus: list[Path], tmp_path: Path,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    ids = completed(app, [corpus[0], bad, corpus[1]])
    cfg = settings_of(app)
    started = time.perf_counter()
    with caplog.at_level(logging.INFO, logger="jobs.embeddings.step"):
        result = step(app, LocalEmbedder(), cfg)
    took = time.perf_counter() - started
    assert (result.embedded, result.refused) == (2, 1)
    # The run's line says what it did and how long it took (benches subtract it from the time between jobs).
    (line,) = [r for r in caplog.records if r.getMessage().startswith("embedding: 2 embedded, 1 refused")]
    assert line.getMessage().endswith(f"in {line.seconds:.3f} s") and 0 < line.seconds <= took  # type: ignore[attr-defined]
    row = images.get(app.engine, ids[1])
    assert row is not None and row.status == "completed" and row.embedded_at is None
    assert row.error and row.error.startswith("embedding refused:") and "not a readable image" in row.error
    with pytest.raises(SimilarityError, match="has no vector: embedding refused"):
        find(app, cfg, ids[1])
    with pytest.raises(SimilarityError, match="no image with id"):
        find(app, cfg, "no-such-id")
    assert step(app, LocalEmbedder(), cfg).refused == 0  # not retried every run


def _race(config: str, owner: str, barrier: Any, outcomes: Any) -> None:
    app = build(load(config, env={}))
    cfg = dataclasses.replace(app.settings.embeddings, batch_size=4)
    store, emb = make_vector_store(cfg), LocalEmbedder()
    barrier.wait(60)  # both processes are fully ready: start together
    outcomes.put(run_step(app.engine, store, emb, cfg, app.settings.paths.media_dir, owner).outcome)


def test_two_steps_at_once_write_each_vector_once(app: App, corpus: list[Path]) -> None:
    ids = completed(app, corpus[:24])
    # spawn, not fork: LanceDB's runtime threads (started by earlier tests) do not survive a fork.
    ctx = multiprocessing.get_context("spawn")
    barrier, outcomes = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_race, args=(str(app.settings.config_path), f"p{i}", barrier, outcomes))
             for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(90)
        assert p.exitcode == 0
    got = sorted([outcomes.get(timeout=5), outcomes.get(timeout=5)])
    assert got in (["done", "skipped"], ["done", "done"])  # "done" twice only if one finished first
    # Whoever lost the lease ran nothing; one more run finishes anything left.
    step(app, LocalEmbedder(), settings_of(app))
    stored = VectorStore(app.settings.embeddings.lancedb_dir).ids("local-v2")
    assert sorted(stored) == sorted(ids)  # every image once, no duplicate rows


def test_lease_is_exclusive(app: App) -> None:
    assert embedding_lease.acquire(app.engine, LEASE_NAME, "a", 60) is not None
    assert embedding_lease.acquire(app.engine, LEASE_NAME, "b", 60) is None
    embedding_lease.release(app.engine, LEASE_NAME, "a")
    assert embedding_lease.acquire(app.engine, LEASE_NAME, "b", 60) is not None


@pytest.fixture
def server() -> Iterator[EmbedServer]:
    srv = EmbedServer(16)
    yield srv
    srv.close()


def test_outage_leaves_images_waiting_and_logs_once(app: App, corpus: list[Path], server: EmbedServer,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    ids = completed(app, corpus[:6])
    http = HttpEmbedderSettings(base_url=server.base_url, model="clip", dimensions=16, max_retries=1,
                                backoff_s=0.01, image_max_side_px=32)
    cfg = settings_of(app, embedder="http", http=http, backoff_s=0.05, max_backoff_s=0.05)
    emb = HttpEmbedder(http, sleep=lambda s: None)
    server.down = True
    caplog.set_level(logging.INFO, logger="jobs.embeddings.step")
    outcomes = []
    for _ in range(3):
        outcomes.append(step(app, emb, cfg).outcome)
        time.sleep(0.06)  # let the backoff pass so the next run tries again
    assert outcomes == ["outage"] * 3
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "unavailable" in warnings[0].getMessage()  # once per outage
    for image_id in ids:
        row = images.get(app.engine, image_id)
        assert row is not None and row.status == "completed" and row.embedding_model is None
    # While backing off, another run does not even try.
    n = len(server.requests)
    cfg_long = settings_of(app, embedder="http", http=http, backoff_s=30.0, max_backoff_s=30.0)
    assert step(app, emb, cfg_long).outcome == "outage"
    assert step(app, emb, cfg_long).outcome == "backoff" and len(server.requests) == n + 2
    with write_session(app.engine) as s:  # skip the long wait
        s.execute(update(embedding_lease.Lease).values(expires_at=0.0))
    server.down = False
    result = step(app, emb, cfg)
    assert result.outcome == "done" and result.embedded == 6
    assert any("back after" in r.getMessage() for r in caplog.records)
    assert all(images.get(app.engine, i).embedding_model == "http:clip@16" for i in ids)  # type: ignore[union-attr]


def test_401_backs_off_without_marking_images(app: App, corpus: list[Path], server: EmbedServer,
                                              caplog: pytest.LogCaptureFixture) -> None:
    from tests.embeddings.embed_server import Reply

    ids = completed(app, corpus[:2])
    http = HttpEmbedderSettings(base_url=server.base_url, model="clip", dimensions=16)
    cfg = settings_of(app, embedder="http", http=http)
    server.script = [Reply(401, body={"error": "bad key"})]
    assert step(app, HttpEmbedder(http), cfg).outcome == "misconfigured"
    assert len(server.requests) == 1
    assert [r.levelno for r in caplog.records if r.name == "jobs.embeddings.step"] == [logging.ERROR]
    assert images.get(app.engine, ids[0]).embedding_model is None  # type: ignore[union-attr]


def test_model_switch_reembeds_while_similar_keeps_answering(app: App, corpus: list[Path],
                                                              server: EmbedServer) -> None:
    ids = completed(app, corpus[:10])
    local_cfg = settings_of(app)
    assert step(app, LocalEmbedder(), local_cfg).embedded == 10
    before = [h.image_id for h in find(app, local_cfg, ids[0], limit=3)]
    # Switch to an http model, two images per run.
    http = HttpEmbedderSettings(base_url=server.base_url, model="clip", dimensions=16, image_max_side_px=32)
    new_cfg = settings_of(app, embedder="http", http=http, batch_size=2, max_batches_per_run=1)
    emb = HttpEmbedder(http)
    result = step(app, emb, new_cfg)
    assert result.embedded == 2 and result.remaining == 8 and result.dropped_models == ()
    # Mid-switch: searches still use the complete old model.
    mid = find(app, new_cfg, ids[0], limit=3, embedder=emb)
    assert [h.image_id for h in mid] == before and mid[0].model == "local-v2"
    while (result := step(app, emb, new_cfg)).remaining:
        assert find(app, new_cfg, ids[5], limit=3, embedder=emb)[0].model == "local-v2"
    assert result.dropped_models == ("local-v2",) and result.optimized
    store = make_vector_store(new_cfg)
    assert set(store.models()) == {"http:clip@16"} and sorted(store.ids("http:clip@16")) == sorted(ids)
    after = find(app, new_cfg, ids[0], limit=3, embedder=emb)
    assert after[0].model == "http:clip@16" and len(after) == 3


def test_optimize_runs_on_schedule_and_bounds_fragments(app: App, corpus: list[Path]) -> None:
    # 500 images: the 60-photo corpus reused (paths repeat; rows are distinct).
    paths = [corpus[i % len(corpus)] for i in range(500)]
    ids = completed(app, paths)
    cfg = settings_of(app, batch_size=50, max_batches_per_run=1, optimize_interval_s=3600.0,
                      duplicate_threshold=1.0, read_consistency_s=0.0)
    store = make_vector_store(cfg)
    runs = [step(app, LocalEmbedder(), cfg) for _ in range(10)]
    assert sum(r.embedded for r in runs) == 500
    assert runs[0].optimized and not any(r.optimized for r in runs[1:])  # first run ever, then hourly
    assert store.fragments("local-v2") >= 9  # one per batch since the first optimize
    query = store.get("local-v2", [ids[7]])[ids[7]]
    before = store.search("local-v2", query, limit=10)
    with write_session(app.engine) as s:  # an hour passes
        s.execute(update(embedding_lease.Lease).values(last_run_at=time.time() - 3601))
    assert step(app, LocalEmbedder(), cfg).optimized
    assert store.fragments("local-v2") <= 2 and store.count("local-v2") == 500
    after = store.search("local-v2", query, limit=10)
    assert [(h.image_id, round(h.distance, 5)) for h in before] == [(h.image_id, round(h.distance, 5)) for h in after]


def test_deleted_rows_lose_their_vectors(app: App, corpus: list[Path]) -> None:
    app.delete_vectors(["no-store-yet"])  # nothing to do, no error, no store made
    assert not app.settings.embeddings.lancedb_dir.exists()
    ids = completed(app, corpus[:3])
    cfg = settings_of(app)
    step(app, LocalEmbedder(), cfg)
    app.delete_vectors(ids[:2])
    assert make_vector_store(cfg).ids("local-v2") == [ids[2]]
