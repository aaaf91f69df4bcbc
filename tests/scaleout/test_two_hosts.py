"""Two hosts, one cluster: two ``darkroom worker`` daemons with their own data
dirs and config files, one PostgreSQL database, one Redis queue and a shared
media mount, process 100 images with no duplicates and no losses.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from db import images
from db.engine import make_engine, read_sessions
from db.models import Image
from jobs.embeddings.store import VectorStore
from tests import backends
from tests.conftest import backend_params, run_cli
from tests.daemon import launch, stop_piped, wait_started
from tests.imagefiles import photo
from worker.settings import load

pytestmark = [pytest.mark.acceptance,
              pytest.mark.parametrize("backend", backend_params(backends.PG_REDIS), indirect=True)]

IMAGES = 100
DONE = re.compile(r"image (\S+) completed in")


def _start(config: Path) -> subprocess.Popen[str]:
    return launch(config, "worker", new_session=True)


def _embedded(engine: Engine) -> int:
    with read_sessions(engine)() as s:
        return s.scalar(select(func.count()).select_from(Image).where(Image.embedded_at.is_not(None))) or 0


def test_two_hosts_share_the_work_without_duplicates_or_losses(make_config, tmp_path: Path) -> None:
    shared_media = tmp_path / "nfs" / "media"  # the shared mount both hosts see
    shared_vectors = tmp_path / "nfs" / "lancedb"
    sections = dict(paths={"data_dir": "data", "media_dir": str(shared_media)},
                    embeddings={"lancedb_dir": str(shared_vectors), "delay_after_complete_s": 0.2},
                    queue={"workers": 1},
                    variants={"widths": [64, 128]},
                    jobs={"requeue_after_s": 120.0})
    host_a, host_b = make_config(**sections), make_config(**sections)
    assert host_a.parent != host_b.parent
    settings = load(host_a, env={})
    engine = make_engine(settings.database.url)
    run_cli(host_a, "migrate")
    run_cli(host_b, "migrate")  # the second host's start-up migration is a no-op
    src = tmp_path / "uploads"
    for i in range(IMAGES):
        photo(src / f"u{i:03}.jpg", (160 + i % 7, 120), color=(i * 2 % 255, 80, 40))

    workers = [_start(host_a), _start(host_b)]
    outputs: list[str] = []
    heads: list[str] = []
    try:
        # Both "hosts" consuming before the first image arrives; on a loaded
        # machine one daemon could otherwise finish the batch alone.
        heads.extend(wait_started(w) for w in workers)
        ids = json.loads(run_cli(host_a, "enqueue", "--json", str(src)).stdout)["enqueued"]
        assert len(ids) == IMAGES
        deadline = time.monotonic() + 120
        while (counts := images.counts(engine))["completed"] + counts["failed"] < IMAGES:
            assert all(w.poll() is None for w in workers), "a worker exited early"
            assert time.monotonic() < deadline, counts
            time.sleep(0.25)
        # The embedding step runs on whichever host takes its lease; every
        # image gets exactly one vector in the shared store.
        deadline = time.monotonic() + 60
        while _embedded(engine) < IMAGES:
            assert time.monotonic() < deadline, f"{_embedded(engine)} of {IMAGES} embedded"
            time.sleep(0.25)
    finally:
        outputs = [stop_piped(w) for w in workers]
        outputs = [h + o for h, o in zip(heads, outputs)] if len(heads) == 2 else outputs
    assert [w.returncode for w in workers] == [0, 0], outputs

    assert images.counts(engine) == {"pending": 0, "processing": 0, "completed": IMAGES, "failed": 0}
    done_a, done_b = (DONE.findall(out) for out in outputs)
    assert done_a and done_b, "one host did all the work"
    assert len(done_a) == len(set(done_a)) and len(done_b) == len(set(done_b))
    assert not set(done_a) & set(done_b), "an image was processed on both hosts"
    assert set(done_a) | set(done_b) == set(ids), "an image was lost"
    for image_id in ids:
        row = images.get(engine, image_id)
        assert row.attempts == 1 and row.lease_owner is None
        variants = images.variants_of(engine, image_id)
        assert sorted((v.width, v.format) for v in variants) == [
            (64, "avif"), (64, "webp"), (128, "avif"), (128, "webp")]
        assert all((shared_media / v.path).stat().st_size == v.size for v in variants)
    store = VectorStore(shared_vectors)
    (model,) = store.models()
    vector_ids = store.ids(model)
    assert len(vector_ids) == IMAGES and set(vector_ids) == set(ids)
    for host in (host_a, host_b):  # nothing shared sits in a host's own data dir
        data = host.parent / "data"
        assert not (data / "app.db").exists() and not (data / "queue.db").exists()
        assert not (data / "lancedb").exists()
    engine.dispose()
