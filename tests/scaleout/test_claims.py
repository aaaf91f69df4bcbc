"""Claims stay exclusive with many claimers in many processes (hosts) at once.

Each process has its own engine, as a worker on another host would. On
PostgreSQL under READ COMMITTED a concurrent compare-and-set ``UPDATE`` waits
for the first writer's row lock and then re-checks its ``WHERE`` against the
committed row, so the loser updates nothing; on SQLite ``BEGIN IMMEDIATE``
serialises the writers.
"""

from __future__ import annotations

import multiprocessing
import random
import time
from pathlib import Path

import pytest
from sqlalchemy import update

from db import images, migrate
from db.engine import make_engine, write_session
from db.models import Image, Status
from tests import backends
from tests.backends import BackendSetup
from tests.conftest import backend_params

pytestmark = pytest.mark.parametrize(
    "backend", backend_params(backends.SQLITE, backends.PG_REDIS), indirect=True)

CLAIMERS = 6


def _claimer(url: str, ids: list[str], seed: int, barrier, out) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(url)
    order = list(ids)
    random.Random(seed).shuffle(order)
    won: list[str] = []
    barrier.wait()
    for image_id in order:
        if images.claim(engine, image_id, f"host{seed}/1", lease_s=60) is not None:
            won.append(image_id)
    engine.dispose()
    out.put((seed, won))


def test_every_claimable_row_is_claimed_exactly_once(backend: BackendSetup, tmp_path: Path) -> None:
    url = backend.database_url or f"sqlite:///{tmp_path / 'app.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    pending = [images.insert_image(engine, filename=f"{i}.jpg", original_path=f"{i}.jpg",
                                   mime_type="image/jpeg", size=1) for i in range(40)]
    expired = [images.insert_image(engine, filename="e.jpg", original_path="e.jpg",
                                   mime_type="image/jpeg", size=1) for _ in range(12)]
    live = [images.insert_image(engine, filename="l.jpg", original_path="l.jpg",
                                mime_type="image/jpeg", size=1) for _ in range(12)]
    now = time.time()
    with write_session(engine) as s:  # a dead worker's claims, and a live worker's
        s.execute(update(Image).where(Image.id.in_(expired)).values(
            status=Status.PROCESSING.value, lease_owner="dead/1", lease_expires_at=now - 5, attempts=1))
        s.execute(update(Image).where(Image.id.in_(live)).values(
            status=Status.PROCESSING.value, lease_owner="alive/1", lease_expires_at=now + 600, attempts=1))
    engine.dispose()  # no connection crosses the fork

    mp = multiprocessing.get_context("fork")
    barrier, out = mp.Barrier(CLAIMERS), mp.Queue()
    procs = [mp.Process(target=_claimer, args=(url, pending + expired + live, n, barrier, out))
             for n in range(CLAIMERS)]
    for p in procs:
        p.start()
    results = dict(out.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0

    won = [i for ids in results.values() for i in ids]
    assert len(won) == len(set(won)), "an image was claimed twice"
    assert set(won) == set(pending) | set(expired)
    assert sum(1 for ids in results.values() if ids) > 1, "one claimer took everything: no contention"

    engine = make_engine(url)
    try:
        for image_id in won:
            row = images.get(engine, image_id)
            owner = next(f"host{n}/1" for n, ids in results.items() if image_id in ids)
            assert row is not None and row.status == "processing" and row.lease_owner == owner
            assert row.attempts == (1 if image_id in pending else 2)
        for image_id in live:
            row = images.get(engine, image_id)
            assert row is not None and row.lease_owner == "alive/1" and row.attempts == 1
    finally:
        engine.dispose()
