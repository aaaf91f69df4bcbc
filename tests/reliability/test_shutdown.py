"""Acceptance: SIGTERM and SIGINT stop the daemon within the grace period, losing nothing."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import TEST_SECTIONS, merge, run_cli, write_config
from tests.daemon import Daemon
from tests.imagefiles import photo
from tests.reliability.conftest import query, wait_for
from tests.reliability.procs import wait_gone

pytestmark = pytest.mark.acceptance

GRACE_S = 1.0
# One AVIF at speed 0 of a 2000 px image: ~10 s of C code that no signal interrupts.
LONG_JOB = {
    "queue": {"workers": 1},
    "variants": {"widths": [1920], "formats": ["avif"], "avif": {"quality": 60, "effort": 0}},
    "jobs": {"grace_s": GRACE_S, "lease_s": 30.0},
}


def _start_one_job(cfg: Path, worker: Daemon, src: Path) -> tuple[str, list[int]]:
    family = worker.wait_children(2)
    [image_id] = json.loads(run_cli(cfg, "enqueue", "--json", str(src)).stdout)["enqueued"]
    wait_for(lambda: query(cfg, "SELECT 1 FROM images WHERE status = 'processing'"),
             interval=0.02, what="the job started")
    return image_id, sorted(set(family) | set(worker.descendants()))


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time ``pid`` has used so far (``/proc/PID/stat``)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()  # from the state on: utime, stime are fields 12, 13
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_inside_the_encoder(cfg: Path, image_id: str) -> None:
    """Wait until the job's process has spent 1.5 CPU-s on it: past decode and resize
    (~0.2 s for this photo), so inside the long AVIF encode, however loaded the machine."""
    [(owner,)] = query(cfg, "SELECT lease_owner FROM images WHERE id = ?", (image_id,))
    pid = int(owner.rsplit("/", 1)[1])
    start = _cpu_seconds(pid)
    wait_for(lambda: _cpu_seconds(pid) - start >= 1.5, timeout=120, interval=0.05, what="the job in its encoder")


@pytest.mark.quiet  # a bound in seconds: see tests/conftest.py:_quiet_machine
def test_sigterm_during_a_long_job_exits_within_grace_and_releases_it(
        make_config: Callable[..., Path], start_worker: Callable[..., Daemon], tmp_path: Path) -> None:
    cfg = make_config(**LONG_JOB)
    run_cli(cfg, "migrate")
    worker = start_worker(cfg)
    image_id, family = _start_one_job(cfg, worker, photo(tmp_path / "big.jpg", (2000, 1500)))
    # SIGTERM while in C code: on a busy machine the job could otherwise still be in Python
    # (decoding), take the interrupt there and release the image itself.
    _wait_inside_the_encoder(cfg, image_id)

    t0 = time.monotonic()
    code = worker.stop(signal.SIGTERM, timeout=GRACE_S + 15)
    elapsed = time.monotonic() - t0
    assert code == 0, worker.log()
    # grace, then ~1 s for the interrupt to be noticed, then the stuck encoder is killed
    assert elapsed < GRACE_S + 5, f"took {elapsed:.1f}s to stop"
    assert wait_gone(family, timeout=2) == []
    [(status, owner)] = query(cfg, "SELECT status, lease_owner FROM images WHERE id = ?", (image_id,))
    assert status in ("pending", "completed") and owner is None
    assert status == "pending"  # a 10 s encode cannot finish in a 1 s grace period
    assert "released 1 unfinished image(s) back to pending" in worker.log()

    # A restarted worker (faster settings, same data) takes the image again.
    fast = write_config(cfg.parent / "fast.toml",
                        merge(TEST_SECTIONS, {"variants": {"widths": [256], "formats": ["avif"]}}))
    again = start_worker(fast)
    wait_for(lambda: query(cfg, "SELECT 1 FROM images WHERE status = 'completed'"), timeout=30,
             what="the released image completed")
    assert again.stop() == 0


def test_sigint_finishes_the_job_in_hand(
        make_config: Callable[..., Path], start_worker: Callable[..., Daemon], tmp_path: Path) -> None:
    cfg = make_config(queue={"workers": 1},
                      variants={"widths": [1024], "formats": ["avif"], "avif": {"quality": 60, "effort": 4}},
                      jobs={"grace_s": 30.0})
    run_cli(cfg, "migrate")
    worker = start_worker(cfg)
    image_id, family = _start_one_job(cfg, worker, photo(tmp_path / "mid.jpg", (1400, 1000)))

    code = worker.stop(signal.SIGINT, timeout=40)
    assert code == 0, worker.log()
    assert wait_gone(family, timeout=2) == []
    [(status, owner)] = query(cfg, "SELECT status, lease_owner FROM images WHERE id = ?", (image_id,))
    assert (status, owner) == ("completed", None), worker.log()
