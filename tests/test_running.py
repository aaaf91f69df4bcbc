"""The running-job count across processes, and the encode threads that follow it."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from jobs import image_job, running
from jobs.intake import submit_file
from tests.imagefiles import photo
from worker.app import App

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

    def recording(slots_dir: Path | None) -> int:
        threads = real(slots_dir)
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
