"""The vector store audit: rows claiming a vector the store lost are embedded again.

Real SQLite, real LanceDB directories (deleted, garbled), real images.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from db import images
from db.maintenance import runs
from jobs.embeddings import audit, rows
from jobs.embeddings.embedders import LocalEmbedder
from jobs.embeddings.settings import EmbeddingSettings
from jobs.embeddings.step import StepResult, run_step
from tests.conftest import run_cli
from tests.embeddings.test_embed_step import completed, settings_of
from worker.app import App, make_vector_store

MODEL = LocalEmbedder.model


def step(app: App, cfg: EmbeddingSettings) -> StepResult:
    return run_step(app.engine, make_vector_store(cfg), LocalEmbedder(), cfg, app.settings.paths.media_dir, "test")


def _embedded(app: App, corpus: list[Path], n: int) -> tuple[list[str], EmbeddingSettings]:
    ids = completed(app, corpus[:n])
    cfg = settings_of(app, batch_size=4)
    result = step(app, cfg)
    assert result.outcome == "done" and result.embedded == n
    return ids, cfg


def test_lost_vectors_are_found_and_embedded_again(app: App, corpus: list[Path]) -> None:
    ids, cfg = _embedded(app, corpus, 10)
    store = make_vector_store(cfg)
    store.delete(ids[:4], model=MODEL)  # lost behind the database's back
    assert rows.claim_counts(app.engine) == {MODEL: 10}

    dry = audit.audit(app.engine, store, dry_run=True)
    assert (dry.claimed, dry.present, dry.missing, dry.cleared) == ({MODEL: 10}, {MODEL: 6}, {MODEL: 4}, 0)
    assert rows.claim_counts(app.engine) == {MODEL: 10}, "a dry run changes nothing"

    result = step(app, settings_of(app, batch_size=3, audit_interval_s=0.001))
    assert result.audited is not None and result.audited.cleared == 4
    assert result.embedded == 4  # the same run refilled them, in batches of 3
    assert sorted(make_vector_store(cfg).ids(MODEL)) == sorted(ids)
    recorded = [r for r in runs.last_runs(app.engine) if r["name"] == "vectors"]
    assert recorded and recorded[0]["outcome"] == "ok" and recorded[0]["figures"]["missing"] == {MODEL: 4}


def test_full_audit_waits_for_its_interval(app: App, corpus: list[Path]) -> None:
    ids, cfg = _embedded(app, corpus, 3)  # the first run audits (never ran before)
    store = make_vector_store(cfg)
    # One vector lost and one no row claims: the counts agree, only the full audit sees it.
    store.upsert(MODEL, ["not-a-row"], store.get(MODEL, [ids[0]])[ids[0]][None, :])
    store.delete(ids[:1], model=MODEL)
    result = step(app, settings_of(app, audit_interval_s=3600.0))
    assert result.audited is None and result.embedded == 0
    result = step(app, settings_of(app, audit_interval_s=0.001))
    assert result.audited is not None and result.audited.extra == {MODEL: 1} and result.embedded == 1


def test_deleted_store_is_made_again_and_refilled(app: App, corpus: list[Path]) -> None:
    ids = completed(app, corpus[:6])
    cfg = settings_of(app, batch_size=4, audit_interval_s=3600.0)
    store = make_vector_store(cfg)  # one handle for every run, as in a worker process
    media = app.settings.paths.media_dir
    assert run_step(app.engine, store, LocalEmbedder(), cfg, media, "w").embedded == 6
    shutil.rmtree(cfg.lancedb_dir)
    # Not due by interval: a store short of vectors is audited at once.
    result = run_step(app.engine, store, LocalEmbedder(), cfg, media, "w")
    assert result.audited is not None and result.audited.unreadable and result.embedded == 6
    assert sorted(make_vector_store(cfg).ids(MODEL)) == sorted(ids)
    # A process that opens the store after the loss sees an empty directory: the same.
    shutil.rmtree(cfg.lancedb_dir)
    result = step(app, cfg)
    assert result.audited is not None and result.audited.missing == {MODEL: 6} and result.embedded == 6


def test_garbled_store_is_moved_aside_and_refilled(app: App, corpus: list[Path]) -> None:
    ids, cfg = _embedded(app, corpus, 5)
    lance_dir = app.settings.embeddings.lancedb_dir
    for f in lance_dir.rglob("*"):
        if f.is_file():
            f.write_bytes(b"garbage")
    store = make_vector_store(cfg)
    result = audit.audit(app.engine, store)
    assert result.unreadable and "cannot be read" in result.unreadable
    assert result.moved_to and Path(result.moved_to).is_dir() and Path(result.moved_to) != lance_dir
    assert result.cleared == 5 and store.ids(MODEL) == []
    assert step(app, cfg).embedded == 5
    assert sorted(make_vector_store(cfg).ids(MODEL)) == sorted(ids)


def test_reprocess_vectors_and_status_by_hand(app: App, corpus: list[Path], config_path: Path) -> None:
    ids, cfg = _embedded(app, corpus, 5)
    make_vector_store(cfg).delete(ids[:2], model=MODEL)

    report = json.loads(run_cli(config_path, "status", "--json").stdout)
    assert report["vector_claims"] == {MODEL: {"claimed": 5, "present": 3}}
    text = run_cli(config_path, "status").stdout
    assert f"vectors claimed ({MODEL}): 5 rows, 3 in the store" in text
    assert "darkroom reprocess --vectors" in text

    dry = run_cli(config_path, "reprocess", "--vectors", "--dry-run")
    assert f"{MODEL}: 5 rows claim a vector, 3 in the store, 2 missing" in dry.stdout
    assert "would embed 2 image(s) again (dry run: nothing changed)" in dry.stdout
    assert rows.claim_counts(app.engine) == {MODEL: 5}

    done = run_cli(config_path, "reprocess", "--vectors")
    assert "embedded 2 image(s) again" in done.stdout, done.stdout
    assert sorted(make_vector_store(cfg).ids(MODEL)) == sorted(ids)
    assert all(images.get(app.engine, i).embedded_at for i in ids)  # type: ignore[union-attr]
    report = json.loads(run_cli(config_path, "status", "--json").stdout)
    assert report["vector_claims"] == {MODEL: {"claimed": 5, "present": 5}}
