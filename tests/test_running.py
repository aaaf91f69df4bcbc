"""The running-job count across processes, and the encode threads that follow it."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from jobs import image_job, running
from jobs.intake import submit_file
from tests.imagefiles import photo
from worker.app import App, build
from worker.settings import ConfigError, load

HOLD_A_SLOT = """
import sys, time
from pathlib import Path
from jobs import running
with running.job(Path(sys.argv[1])):
    print("holding", flush=True)
    sys.stdin.read()
"""


@contextmanager
def slot_held_by_another_process(slots_dir: Path) -> Iterator[None]:
    """Another process holds a running slot until the block ends, then dies by SIGKILL."""
    with subprocess.Popen([sys.executable, "-c", HOLD_A_SLOT, str(slots_dir)], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent) as proc:
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
            yield
        finally:
            proc.kill()  # the kernel drops a dead job's lock: no phantom job
            proc.wait()


def test_threads_share_the_cores_among_running_jobs() -> None:
    assert [running.threads_for(n, cores=2) for n in (0, 1, 2, 3)] == [2, 2, 1, 1]
    assert [running.threads_for(n, cores=8) for n in (1, 2, 3, 8, 20)] == [8, 4, 2, 1, 1]


def test_count_follows_jobs_in_threads_and_processes(tmp_path: Path) -> None:
    slots = tmp_path / "lanes"
    assert running.count(slots) == 0
    with running.job(slots):
        assert running.count(slots) == 1
        entered, leave = threading.Event(), threading.Event()

        def other_job() -> None:
            with running.job(slots):
                entered.set()
                leave.wait(10)

        t = threading.Thread(target=other_job)
        t.start()
        assert entered.wait(10)
        assert running.count(slots) == 2
        leave.set()
        t.join()
        assert running.count(slots) == 1
        with slot_held_by_another_process(slots):
            assert running.count(slots) == 2
            assert running.encode_threads(slots) == running.threads_for(2, running.cores())
        assert running.count(slots) == 1
    assert running.count(slots) == 0


def test_count_without_a_directory_is_this_process(tmp_path: Path) -> None:
    assert running.count(None) == 0
    with running.job(None), running.job(None):
        assert running.count(None) == 2
    assert running.count(None) == 0


def test_the_job_encodes_with_the_threads_the_running_count_allows(app: App, tmp_path: Path,
                                                                   monkeypatch) -> None:
    ctx = app._context
    assert ctx is not None and ctx.lanes_dir is not None
    asked: list[tuple[int, int]] = []
    real = running.encode_threads

    def recording(slots_dir: Path | None, at_most: int = 0) -> int:
        threads = real(slots_dir, at_most)
        asked.append((running.count(slots_dir), threads))
        return threads

    monkeypatch.setattr(running, "encode_threads", recording)
    media_dir = app.settings.paths.media_dir
    alone = submit_file(app.engine, app.tasks, media_dir, photo(tmp_path / "a.jpg", (400, 300))).image_id
    assert image_job.process_image(ctx, alone) == "completed"
    assert asked == [(1, running.threads_for(1, running.cores()))]  # idle worker: every core
    busy = submit_file(app.engine, app.tasks, media_dir, photo(tmp_path / "b.jpg", (400, 300))).image_id
    with slot_held_by_another_process(ctx.lanes_dir):  # another worker process is rendering
        assert image_job.process_image(ctx, busy) == "completed"
    assert asked[1] == (2, running.threads_for(2, running.cores()))
    assert running.count(ctx.lanes_dir) == 0


def test_encode_threads_caps_the_threads_of_a_lone_job(config_path: Path, tmp_path: Path, monkeypatch) -> None:
    """``imaging.encode_threads = 1``: a job alone on the worker still encodes serially."""
    assert running.encode_threads(None, at_most=1) == 1
    assert running.encode_threads(None, at_most=0) == running.threads_for(1, running.cores())
    monkeypatch.setattr(running, "cores", lambda: 4)
    assert running.encode_threads(None, at_most=3) == 3 and running.encode_threads(None, at_most=9) == 4
    monkeypatch.undo()
    capped = build(load(config_path, env={"DARKROOM_IMAGING__ENCODE_THREADS": "1"}))
    try:
        capped.migrate()
        ctx = capped.install_context()
        assert ctx.encode_threads == 1
        asked: list[int] = []
        real = running.encode_threads
        monkeypatch.setattr(running, "encode_threads",
                            lambda slots_dir, at_most=0: asked.append(real(slots_dir, at_most)) or asked[-1])
        image_id = submit_file(capped.engine, capped.tasks, capped.settings.paths.media_dir,
                               photo(tmp_path / "a.jpg", (400, 300))).image_id
        assert image_job.process_image(ctx, image_id) == "completed"
        assert asked == [1]
    finally:
        capped.close()


def test_a_negative_encode_threads_stops_the_start(config_path: Path) -> None:
    with pytest.raises(ConfigError, match="imaging.encode_threads.*expected 0 \\(automatic\\) or an integer >= 1"):
        load(config_path, env={"DARKROOM_IMAGING__ENCODE_THREADS": "-1"})
