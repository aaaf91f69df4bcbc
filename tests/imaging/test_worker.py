"""Through the real queue, database and worker: hostile files fail, good ones complete, lanes hold."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from db import images
from db.models import Status
from jobs import lanes
from jobs.intake import submit_file
from tests.conftest import run_cli, wait_for
from tests.daemon import launch, stop_piped
from tests.imaging.test_hostile import REASONS
from worker import daemon
from worker.app import build, lane_rule
from worker.settings import load


def children(pid: int) -> set[int]:
    out: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        out |= {int(c) for c in (task / "children").read_text().split()}
    return out


@pytest.mark.acceptance
def test_hostile_files_fail_and_the_same_worker_goes_on(make_config, hostile: dict[str, Path], legit: dict[str, Path],
                                                        tmp_path: Path) -> None:
    cfg = make_config(queue={"workers": 1, "worker_type": "process"})
    run_cli(cfg, "migrate")
    worker = launch(cfg, "worker")
    try:
        # The whole family (the process worker and the scheduler) before taking the census.
        def family() -> set[int] | None:
            kids = children(worker.pid)
            return kids if len(kids) >= 2 else None

        before = wait_for(family, timeout=60)
        src = tmp_path / "in"
        src.mkdir()
        names = sorted(REASONS)
        for name in names:  # copies: intake names originals by id, the file names are data only
            shutil.copy(hostile[name], src / name)
        shutil.copy(legit["orient_6.jpg"], src / "good.jpg")
        files = [str(src / n) for n in names] + [str(src / "good.jpg")]
        ids = json.loads(run_cli(cfg, "enqueue", "--json", *files).stdout)["enqueued"]
        app = build(load(cfg, env={}))

        def settled() -> bool:
            rows = [images.get(app.engine, i) for i in ids]
            return all(r is not None and r.status in (Status.COMPLETED.value, Status.FAILED.value) for r in rows)

        wait_for(settled, timeout=90)
        after = children(worker.pid)
        rows = {name: images.get(app.engine, i) for name, i in zip(names + ["good.jpg"], ids)}
        for name in names:
            row = rows[name]
            assert row is not None and row.status == Status.FAILED.value, name
            assert REASONS[name].lower() in (row.error or "").lower(), (name, row.error)
        good = rows["good.jpg"]
        assert good is not None and good.status == Status.COMPLETED.value, good and good.error
        assert (good.width, good.height, good.orientation) == (120, 80, 6)
        assert good.placeholder and good.dominant_color and good.dominant_color.startswith("#")
        assert set(json.loads(good.timings or "{}")) >= {"decode", "resize", "encode_webp", "encode_avif"}
        assert before == after, "the worker process was replaced (crashed?)"
        app.close()
    finally:
        stop_piped(worker, timeout=45, must_stop=True)


def test_large_images_take_the_large_lane_and_wait_for_a_slot(make_config, tmp_path: Path) -> None:
    cfg = make_config(imaging={"large_pixels": 50_000, "keep_gps": False})
    app = build(load(cfg, env={}))
    app.migrate()
    big = tmp_path / "pano.jpg"
    Image.new("RGB", (600, 200), (20, 90, 160)).save(big)  # 120,000 px > 50,000: large
    small = tmp_path / "small.jpg"
    Image.new("RGB", (200, 100), (160, 90, 20)).save(small)
    media = app.settings.paths.media_dir
    big_id = submit_file(app.engine, app.tasks, media, big, lane_by=lane_rule(app.settings)).image_id
    small_id = submit_file(app.engine, app.tasks, media, small, lane_by=lane_rule(app.settings)).image_id
    assert images.get(app.engine, big_id).lane == "large"
    assert images.get(app.engine, small_id).lane == "default"
    # Small uploads are dequeued first even though the panorama was enqueued before them.
    first = app.huey.dequeue()
    assert first is not None and first.args == (small_id,)
    app.huey.enqueue(first)

    # Another process holds the only large slot: the panorama is deferred, its attempt refunded.
    lanes_dir = app.settings.paths.data_dir / "lanes"
    lanes_dir.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl,os,sys,time; fd=os.open(sys.argv[1], os.O_RDWR|os.O_CREAT); "
        "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()"),
        str(lanes_dir / "large-0.lock")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        app.install_context()
        from jobs import context, image_job

        assert image_job.process_image(context.current(), small_id) == "completed"
        assert image_job.process_image(context.current(), big_id) == "deferred"
        row = images.get(app.engine, big_id)
        assert row.status == Status.PENDING.value and row.attempts == 0
    finally:
        holder.communicate("", timeout=10)
    assert daemon.drain(app, workers=1) == 0  # the slot is free now
    assert images.get(app.engine, big_id).status == Status.COMPLETED.value
    with lanes.large_slot(lanes_dir, 1) as held:
        assert held, "the slot was released after the render"
    app.close()
