"""Fixtures for the operating tests: a mixed batch, worker daemons, free ports."""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from jobs.intake import submit_file
from tests.conftest import wait_for  # noqa: F401  (re-exported for the ops tests)
from tests.daemon import Daemon, started_daemons
from tests.imagefiles import photo
from worker import daemon
from worker.app import App
from worker.status.web.server import ServeSettings, StatusServer, make_server

# Fast heartbeats so "dead within the timeout" is measured in seconds.
FAST_HEARTBEAT = {"interval_s": 0.2, "timeout_s": 1.5, "prune_after_s": 60.0}
NOT_AN_IMAGE = b"<script>alert('x')</script> this is not an image"


@dataclass(frozen=True)
class Batch:
    completed: list[str]
    failed: list[str]
    pending: list[str]


def submit(app: App, path: Path) -> str:
    return submit_file(app.engine, app.tasks, app.settings.paths.media_dir, path).image_id


def make_files(tmp: Path, good: int, bad: int) -> tuple[list[Path], list[Path]]:
    goods = [photo(tmp / f"good{i}.jpg", (160 + 8 * i, 120)) for i in range(good)]
    bads = []
    for i in range(bad):
        p = tmp / f"evil<b>{i}<img src=x onerror=alert({i})>.jpg"  # names are user data: the page must escape them
        p.write_bytes(NOT_AN_IMAGE)
        bads.append(p)
    return goods, bads


@pytest.fixture
def mixed_batch(app: App, tmp_path: Path) -> Batch:
    """3 completed, 2 failed with the same error, 1 failed with another, 2 pending."""
    goods, bads = make_files(tmp_path / "in", 3, 2)
    completed = [submit(app, p) for p in goods]
    failed = [submit(app, p) for p in bads]
    missing = photo(tmp_path / "in" / "gone.png", (50, 50))
    failed.append(submit(app, missing))
    (app.settings.paths.media_dir / _original_of(app, failed[-1])).unlink()
    daemon.drain(app, 1)
    # Inserted after the drain and never processed: still pending.
    pending = [submit(app, photo(tmp_path / "in" / f"later{i}.jpg", (90, 90))) for i in range(2)]
    return Batch(completed, failed, pending)


def _original_of(app: App, image_id: str) -> str:
    from db import images

    row = images.get(app.engine, image_id)
    assert row is not None
    return row.original_path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])



@pytest.fixture
def start_worker() -> Iterator[Callable[..., Daemon]]:
    """``start_worker(config, "--log-level", "WARNING", "worker", ...)``; killed at teardown."""
    with started_daemons(signal.SIGKILL, new_session=True) as start:
        yield start


@contextmanager
def serving(app: App) -> Iterator[StatusServer]:
    """The status page of ``app`` on a free loopback port, served from a thread for the block."""
    srv = make_server(app, ServeSettings(port=0, refresh_s=0))
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
