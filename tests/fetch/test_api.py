"""The Python API against a real installation: SQLite files, huey queue, in-process drain."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from db import images
from tests.imagefiles import photo
from worker import daemon
from worker.api import Darkroom, ImageExists, ImageNotFound

from .conftest import LocalServer, image_bytes, send


@pytest.fixture
def open_darkroom(make_config: Callable[..., Path]) -> Iterator[Callable[..., Darkroom]]:
    opened: list[Darkroom] = []

    def _open(**sections: dict) -> Darkroom:  # type: ignore[type-arg]
        dr = Darkroom.from_config(make_config(**sections))
        opened.append(dr)
        return dr

    yield _open
    for dr in opened:
        dr.close()


def drain(dr: Darkroom) -> None:
    assert daemon.drain(dr.app, workers=1) == 0


def test_submit_path_bytes_and_url_then_variants(open_darkroom: Callable[..., Darkroom], server: LocalServer,
                                                 tmp_path: Path) -> None:
    dr = open_darkroom(fetch={"allow": ["127.0.0.1/32"]})
    server.routes["/remote.png"] = lambda h: send(h, 200, image_bytes("PNG", (300, 200)), "image/png")
    from_path = dr.submit(photo(tmp_path / "a.jpg", (400, 300)), metadata={"album": "x"})
    from_bytes = dr.submit(image_bytes("JPEG", (200, 100)))
    from_url = dr.submit(server.url("/remote.png"))
    assert {dr.status(i).status for i in (from_path, from_bytes, from_url)} == {"pending"}
    assert dr.status(from_url).source_url == server.url("/remote.png")
    assert dr.variants(from_path) == []
    drain(dr)
    for image_id, size in ((from_path, (400, 300)), (from_bytes, (200, 100)), (from_url, (300, 200))):
        st = dr.wait(image_id, timeout=5)
        assert st.status == "completed", st.error
        assert (st.width, st.height) == size
        variants = dr.variants(image_id)
        assert variants and all(v.path.is_file() and v.path.stat().st_size == v.size for v in variants)
    url_row = images.get(dr.app.engine, from_url)
    assert url_row is not None and url_row.mime_type == "image/png" and url_row.filename == "remote.png"
    assert (dr.app.settings.paths.media_dir / url_row.original_path).is_file()  # fetched into the store
    assert url_row.owns_original and url_row.hash and url_row.size > 0
    assert [h.path for h in server.hits] == ["/remote.png"]
    assert images.get(dr.app.engine, from_path).metadata_ == '{"album": "x"}'  # type: ignore[union-attr]


def test_caller_chosen_id_and_clash(open_darkroom: Callable[..., Darkroom], tmp_path: Path) -> None:
    dr = open_darkroom()
    first = photo(tmp_path / "first.jpg", (120, 90))
    assert dr.submit(first, id="upload-42") == "upload-42"
    stored = dr.app.settings.paths.media_dir / images.get(dr.app.engine, "upload-42").original_path  # type: ignore[union-attr]
    before = stored.read_bytes()
    with pytest.raises(ImageExists, match="an image with id 'upload-42' already exists"):
        dr.submit(image_bytes("PNG"), id="upload-42")
    assert stored.read_bytes() == before  # the existing original is untouched
    with pytest.raises(ValueError, match="not usable"):
        dr.submit(first, id="../../etc/passwd")
    with pytest.raises(FileNotFoundError, match="no such file"):
        dr.submit(tmp_path / "missing.jpg")


def test_status_of_unknown_id_and_wait_timeout(open_darkroom: Callable[..., Darkroom]) -> None:
    dr = open_darkroom()
    image_id = dr.submit(image_bytes("JPEG"))
    with pytest.raises(ImageNotFound):
        dr.status("nope")
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="still pending after 0.3 s"):
        dr.wait(image_id, timeout=0.3, poll_s=0.05)  # no worker running
    assert time.monotonic() - started < 5


def test_refused_url_ends_failed_with_reason_and_no_connection(open_darkroom: Callable[..., Darkroom],
                                                               server: LocalServer) -> None:
    dr = open_darkroom()  # default [fetch]: loopback refused
    server.routes["/a.jpg"] = lambda h: send(h, 200, image_bytes("JPEG"), "image/jpeg")
    image_id = dr.submit(server.url("/a.jpg"))
    drain(dr)
    st = dr.status(image_id)
    assert st.status == "failed" and st.attempts == 1
    assert "127.0.0.1, which is not a public address (loopback)" in (st.error or "")
    assert server.hits == []


def test_not_an_image_url_fails_permanently(open_darkroom: Callable[..., Darkroom], server: LocalServer) -> None:
    dr = open_darkroom(fetch={"allow": ["127.0.0.1/32"]})
    server.routes["/page"] = lambda h: send(h, 200, b"<html><body>hi</body></html>" * 10, "image/jpeg")
    image_id = dr.submit(server.url("/page"))
    drain(dr)
    st = dr.status(image_id)
    assert st.status == "failed" and "not an image" in (st.error or "")
    assert len(server.hits) == 1


def test_url_503_is_retried_by_the_worker_after_retry_after(open_darkroom: Callable[..., Darkroom],
                                                           server: LocalServer) -> None:
    dr = open_darkroom(fetch={"allow": ["127.0.0.1/32"]})
    times: list[float] = []

    def flaky(h: BaseHTTPRequestHandler) -> None:
        times.append(time.monotonic())
        if len(times) == 1:
            send(h, 503, b"busy", "text/plain", {"Retry-After": "1"})
        else:
            send(h, 200, image_bytes("JPEG", (160, 120)), "image/jpeg")

    server.routes["/flaky.jpg"] = flaky
    image_id = dr.submit(server.url("/flaky.jpg"))
    drain(dr)
    st = dr.status(image_id)
    assert st.status == "completed" and st.attempts == 2
    assert times[1] - times[0] >= 0.9  # the retry waited for Retry-After


def test_busy_database_is_retried(open_darkroom: Callable[..., Darkroom], caplog: pytest.LogCaptureFixture) -> None:
    dr = open_darkroom(database={"busy_timeout_ms": 50})
    dr.submit(image_bytes("JPEG"))  # creates the schema
    db_path = dr.app.settings.database.url.removeprefix("sqlite:///")
    locked, release = threading.Event(), threading.Event()

    def hold_write_lock() -> None:
        conn = sqlite3.connect(db_path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        locked.set()
        release.wait(5)
        conn.execute("ROLLBACK")
        conn.close()

    holder = threading.Thread(target=hold_write_lock)
    holder.start()
    locked.wait(5)
    threading.Timer(0.4, release.set).start()
    with caplog.at_level(logging.INFO, logger="worker.api"):
        image_id = dr.submit(image_bytes("PNG"))
    holder.join()
    assert dr.status(image_id).status == "pending"
    assert any("database busy" in r.message for r in caplog.records)


def test_crash_between_row_and_message_loses_nothing(open_darkroom: Callable[..., Darkroom]) -> None:
    dr = open_darkroom(jobs={"requeue_after_s": 0.2})

    class CrashesBeforeEnqueue(Darkroom):
        def _enqueue(self, image_id: str) -> None:
            raise SystemExit("killed between the row and the queue message")

    crashing = CrashesBeforeEnqueue(dr.app)
    with pytest.raises(SystemExit):
        crashing.submit(image_bytes("JPEG", (90, 60)), id="survivor")
    assert dr.app.huey.pending_count() == 0  # no message was sent
    assert dr.status("survivor").status == "pending"
    from jobs.reconcile import ENQUEUE_SETTLE_S

    time.sleep(ENQUEUE_SETTLE_S + 0.2)  # past the settle time: the reconciler now owns it
    drain(dr)  # drain starts with a reconcile pass, as the daemon does every interval
    assert dr.status("survivor").status == "completed"


def test_a_huge_retry_after_is_capped_by_jobs_max_retry_delay_s(open_darkroom: Callable[..., Darkroom],
                                                                server: LocalServer) -> None:
    from jobs.image_job import process_image

    dr = open_darkroom(fetch={"allow": ["127.0.0.1/32"]}, jobs={"max_retry_delay_s": 30.0})
    server.routes["/parked.jpg"] = lambda h: send(h, 503, b"busy", "text/plain", {"Retry-After": "999999"})
    image_id = dr.submit(server.url("/parked.jpg"))
    ctx = dr.app.job_context()
    delays: list[float] = []
    ctx.schedule = lambda image_id, delay, lane=None: delays.append(delay)
    before = time.time()
    assert process_image(ctx, image_id) == "retry"
    assert delays == [30.0]  # not 999999 s (11 days)
    row = images.get(dr.app.engine, image_id)
    assert row is not None and row.status == "pending"
    assert row.enqueued_at is not None and row.enqueued_at <= before + 31
