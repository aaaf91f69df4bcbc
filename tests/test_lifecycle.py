"""Across features: an image's whole life, from enqueue to TTL deletion."""

from __future__ import annotations

import json
from pathlib import Path

from db import images
from jobs.embeddings.store import VectorStore
from jobs.intake import submit_file
from tests.conftest import run_cli
from tests.imagefiles import photo
from worker import daemon
from worker.app import build
from worker.settings import load


def test_ttl_sweep_deletes_files_and_embedding_and_optimize_compacts_vectors(make_config, tmp_path: Path) -> None:
    cfg = make_config()
    with open(cfg, "a") as fh:  # expire every image at once
        fh.write('\n[[maintenance.ttl]]\nname = "all images"\ntable = "images"\n'
                 'column = "created_at"\nmax_age_s = 0.0\n')
    app = build(load(cfg, env={}))
    app.migrate()
    ids = [submit_file(app.engine, app.tasks, app.settings.paths.media_dir,
                       photo(tmp_path / f"{i}.jpg", (300, 200 + 20 * i))).image_id for i in range(3)]
    daemon.drain(app)
    rows = [images.get(app.engine, i) for i in ids]
    assert all(r.status == "completed" and r.embedding_model for r in rows), [r.error for r in rows]
    model = rows[0].embedding_model
    assert model is not None
    store = VectorStore(app.settings.embeddings.lancedb_dir)
    assert store.count(model) == 3
    media = app.settings.paths.media_dir
    files = [media / v.path for i in ids for v in images.variants_of(app.engine, i)]
    assert files and all(f.exists() for f in files)

    out = json.loads(run_cli(cfg, "maintenance", "sweep", "--json").stdout)
    assert "3" in json.dumps(out)  # the run reports the deleted rows
    assert all(images.get(app.engine, i) is None for i in ids)
    assert not any(f.exists() for f in files)
    assert not list((media / "originals").rglob("*.*"))  # Darkroom owned these originals
    assert VectorStore(app.settings.embeddings.lancedb_dir).count(model) == 0

    optimized = json.loads(run_cli(cfg, "maintenance", "optimize", "--json").stdout)
    assert "vectors" in json.dumps(optimized)
