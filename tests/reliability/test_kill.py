"""Acceptance: SIGKILL of a worker process or of the whole consumer loses nothing."""

from __future__ import annotations

import functools
import json
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.daemon import Daemon
from tests.imagefiles import photo
from tests.reliability.checks import assert_all_completed_cleanly
from tests.reliability.conftest import all_terminal, query, wait_for
from tests.reliability.procs import is_running, wait_gone

pytestmark = pytest.mark.acceptance

N = 20
# ~0.4 s per image: long enough to be caught mid-job, short enough for a quick test.
KILL_CONFIG = {
    "queue": {"workers": 2, "max_delay_s": 0.05, "initial_delay_s": 0.01},
    "variants": {"widths": [128, 512], "webp": {"quality": 70, "effort": 0},
                 "avif": {"quality": 50, "effort": 3}},
    "jobs": {"lease_s": 2.0, "reconcile_interval_s": 0.5, "requeue_after_s": 30.0, "grace_s": 5.0},
}


def enqueue_images(cfg: Path, tmp_path: Path, n: int = N) -> list[str]:
    files = [str(photo(tmp_path / "src" / f"p{i:02d}.jpg", (700, 500), color=(i * 12, 80, 40)))
             for i in range(n)]
    return json.loads(run_cli(cfg, "enqueue", "--json", *files).stdout)["enqueued"]


def kill_a_busy_worker(worker: Daemon) -> tuple[str, int]:
    """SIGKILL the worker process holding a row in ``processing``; returns (image id, pid)."""
    kids = set(worker.descendants())

    def busy() -> tuple[str, int] | None:
        for image_id, owner in query(worker.config, "SELECT id, lease_owner FROM images "
                                                    "WHERE status = 'processing'"):
            pid = int(owner.rsplit("/", 1)[1])
            if pid in kids:
                return image_id, pid
        return None

    image_id, pid = wait_for(busy, timeout=30, interval=0.01, what="a job in progress")
    os.kill(pid, signal.SIGKILL)
    return image_id, pid


def test_sigkill_of_a_worker_process_mid_job_loses_nothing(
        make_config: Callable[..., Path], start_worker: Callable[..., Daemon], tmp_path: Path) -> None:
    cfg = make_config(**KILL_CONFIG)
    run_cli(cfg, "migrate")
    worker = start_worker(cfg)
    worker.wait_children(3)  # two workers and the scheduler
    ids = enqueue_images(cfg, tmp_path)
    victim_id, victim_pid = kill_a_busy_worker(worker)

    wait_for(lambda: all_terminal(cfg, N), timeout=120, what="all images completed or failed")
    assert worker.popen.poll() is None, "the consumer must survive a dead worker"
    assert not is_running(victim_pid)
    assert_all_completed_cleanly(cfg, N)
    [(attempts,)] = query(cfg, "SELECT attempts FROM images WHERE id = ?", (victim_id,))
    assert attempts >= 2, "the killed job was taken again"
    assert sorted(ids) == sorted(r[0] for r in query(cfg, "SELECT id FROM images"))
    assert f"worker {victim_pid} died (killed by SIGKILL)" in worker.log()
    assert worker.stop() == 0


def test_sigkill_of_the_consumer_leaves_no_process_and_a_restart_completes_all(
        make_config: Callable[..., Path], start_worker: Callable[..., Daemon], tmp_path: Path) -> None:
    cfg = make_config(**KILL_CONFIG)
    run_cli(cfg, "migrate")
    old = start_worker(cfg)
    family = old.wait_children(3)
    enqueue_images(cfg, tmp_path)
    wait_for(lambda: query(cfg, "SELECT 1 FROM images WHERE status = 'processing'"),
             interval=0.01, what="a job in progress")
    family = sorted(set(family) | set(old.descendants()))
    old.send(signal.SIGKILL)
    old.popen.wait(10)

    assert wait_gone(family, timeout=5) == [], "processes of the killed consumer still run"
    stuck = query(cfg, "SELECT count(*) FROM images WHERE status = 'processing'")[0][0]
    assert stuck >= 1  # the killed consumer's jobs, held until their lease expires

    new = start_worker(cfg)
    wait_for(lambda: all_terminal(cfg, N), timeout=120, what="all images completed or failed")
    assert_all_completed_cleanly(cfg, N)
    assert new.stop() == 0


def test_an_image_that_kills_its_worker_every_time_is_quarantined(
        make_config: Callable[..., Path], start_worker: Callable[..., Daemon], tmp_path: Path) -> None:
    cfg = make_config(queue={"workers": 1},
                      variants={"widths": [1920], "formats": ["avif"], "avif": {"quality": 60, "effort": 0}},
                      jobs={"max_attempts": 2, "lease_s": 30.0})
    run_cli(cfg, "migrate")
    worker = start_worker(cfg)
    worker.wait_children(2)
    [image_id] = json.loads(run_cli(cfg, "enqueue", "--json",
                                    str(photo(tmp_path / "huge.jpg", (2000, 1500)))).stdout)["enqueued"]
    for attempt in (1, 2):  # what the OOM killer does to a worker on a too-large image
        [(owner,)] = wait_for(functools.partial(
            query,
            cfg, "SELECT lease_owner FROM images WHERE status = 'processing' AND attempts = ?", (attempt,)),
            interval=0.02, what=f"attempt {attempt} started")
        os.kill(int(owner.rsplit("/", 1)[1]), signal.SIGKILL)
    wait_for(lambda: query(cfg, "SELECT 1 FROM images WHERE status = 'failed'"), timeout=20,
             what="the image failed")
    [(attempts, error)] = query(cfg, "SELECT attempts, error FROM images WHERE id = ?", (image_id,))
    assert attempts == 2
    assert error == ("gave up after 2 attempts; last error: the worker process died while "
                     "processing it (killed by SIGKILL)")
    assert worker.popen.poll() is None and len(worker.wait_children(2)) >= 2  # still serving
    assert worker.stop() == 0
