"""Throughput of the same 100-image run on each backend, with real `darkroom worker` daemons.

Each scenario starts its daemons (real subprocesses), enqueues the same N
images from one producer, and times from the first enqueue until every row is
``completed``; it prints images/s. The worker processes in total are the same
in every scenario (``--procs``, default 2: one per core here), so the figures
compare backends, not parallelism:

============  ======================================================================
sqlite-1      SQLite + SQLite queue, one daemon with ``procs`` worker processes
sqlite-2      SQLite + SQLite queue, two daemons (one config) sharing the files
sqlite-redis  SQLite + Redis queue, two daemons (one config)
pg-redis      PostgreSQL + Redis, two daemons with their own config and data dir
              ("two hosts") and a shared media dir
============  ======================================================================

Usage::

    .venv/bin/python bench/scaleout.py                        # every scenario, 100 images
    .venv/bin/python bench/scaleout.py -n 200 --scenarios sqlite-1,pg-redis --size 1600x1200

PostgreSQL and Redis are the local servers (127.0.0.1); a scenario whose
server is down is skipped with the reason. The recipe is config.toml's
defaults (widths 320..1920 never upscaled, WebP effort 4, AVIF speed 8)
unless ``--quick`` selects the test suite's fast one. Prints figures only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from db import images  # noqa: E402
from db.engine import make_engine  # noqa: E402
from jobs.intake import submit_file  # noqa: E402
from tests import backends  # noqa: E402
from tests.conftest import TEST_SECTIONS, merge, write_config  # noqa: E402
from tests.daemon import daemon_env, launch, stop_piped, wait_started  # noqa: E402
from tests.imagefiles import photo  # noqa: E402
from worker.app import build  # noqa: E402
from worker.settings import load  # noqa: E402


@dataclass(frozen=True)
class Scenario:
    name: str
    backend: backends.Backend
    daemons: int
    separate_hosts: bool  # own config + data dir per daemon (needs shared DB and queue)


SCENARIOS = {
    "sqlite-1": Scenario("sqlite-1", backends.SQLITE, 1, False),
    "sqlite-2": Scenario("sqlite-2", backends.SQLITE, 2, False),
    "sqlite-redis": Scenario("sqlite-redis", backends.SQLITE_REDIS, 2, False),
    "pg-redis": Scenario("pg-redis", backends.PG_REDIS, 2, True),
}


@dataclass(frozen=True)
class Figures:
    images: int
    enqueue_s: float
    total_s: float
    per_daemon: tuple[int, ...]
    mean_job_s: float  # from the daemons' "completed in X s" log lines

    @property
    def rate(self) -> float:
        return self.images / self.total_s


def make_corpus(root: Path, n: int, size: tuple[int, int]) -> list[Path]:
    w, h = size
    return [photo(root / f"b{i:04}.jpg", (w - i % 9, h), color=(i * 7 % 255, 90, 40)) for i in range(n)]


def kill_groups(daemons: list[subprocess.Popen[str]]) -> None:
    """SIGKILL the process group of every daemon still running (cleanup of a run)."""
    for d in daemons:
        if d.poll() is None:
            os.killpg(d.pid, signal.SIGKILL)


def start_daemon(config: Path) -> subprocess.Popen[str]:
    return launch(config, "worker", new_session=True, env=daemon_env(PYTHONPATH=str(REPO)))




def run(scenario: Scenario, corpus: list[Path], procs: int, quick: bool, root: Path) -> Figures:
    with ExitStack() as stack:
        setup = stack.enter_context(backends.backend_setup(scenario.backend))
        base = merge(TEST_SECTIONS, {}) if quick else {}
        per_daemon = max(procs // scenario.daemons, 1)
        sections = merge(base, setup.sections)
        sections = merge(sections, {
            "queue": {"workers": per_daemon, "max_delay_s": 0.1},
            "paths": {"data_dir": "data", "media_dir": str(root / "shared-media")},
        })
        homes = range(scenario.daemons) if scenario.separate_hosts else range(1)
        configs = [write_config(root / f"host{i}" / "config.toml", sections) for i in homes]
        configs += [configs[0]] * (scenario.daemons - len(configs))
        app = build(load(configs[0], env={}))
        app.migrate()
        daemons = [start_daemon(c) for c in configs]
        stack.callback(kill_groups, daemons)
        for d in daemons:
            wait_started(d)
        engine = make_engine(app.settings.database.url)
        t0 = time.perf_counter()
        ids = [submit_file(app.engine, app.tasks, app.settings.paths.media_dir, f).image_id
               for f in corpus]
        enqueue_s = time.perf_counter() - t0
        while (counts := images.counts(engine))["completed"] + counts["failed"] < len(ids):
            if any(d.poll() is not None for d in daemons):
                raise RuntimeError(f"a daemon exited early: {counts}")
            time.sleep(0.05)
        total_s = time.perf_counter() - t0
        if counts["failed"]:
            raise RuntimeError(f"{counts['failed']} image(s) failed")
        outputs = [stop_piped(d, timeout=60) for d in daemons]
        per = tuple(out.count(" completed in ") for out in outputs)
        jobs = [float(x) for out in outputs for x in re.findall(r" completed in ([0-9.]+)s", out)]
        engine.dispose()
        app.close()
        return Figures(len(ids), enqueue_s, total_s, per, sum(jobs) / max(len(jobs), 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--images", type=int, default=100)
    parser.add_argument("--size", default="1024x768", help="WxH of the generated photos")
    parser.add_argument("--procs", type=int, default=2, help="worker processes in total")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--quick", action="store_true", help="the test suite's small, fast recipe")
    parser.add_argument("--json", action="store_true", help="one JSON line per scenario")
    args = parser.parse_args()
    w, h = (int(x) for x in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory(prefix="darkroom-bench-") as tmp:
        corpus = make_corpus(Path(tmp) / "corpus", args.images, (w, h))
        recipe = "quick (test) recipe" if args.quick else "config.toml default recipe"
        print(f"{args.images} images of {w}x{h}, {args.procs} worker processes in total, {recipe}, "
              f"{os.cpu_count()} CPUs", flush=True)
        for name in args.scenarios.split(","):
            scenario = SCENARIOS[name]
            why = backends.unreachable(scenario.backend)
            if why:
                print(f"{name:<13} skipped: {why}")
                continue
            fig = run(scenario, corpus, args.procs, args.quick, Path(tmp) / name)
            if args.json:
                print(json.dumps({"scenario": name, "images": fig.images, "images_per_s": round(fig.rate, 2),
                                  "total_s": round(fig.total_s, 2), "enqueue_s": round(fig.enqueue_s, 2),
                                  "per_daemon": fig.per_daemon,
                                  "mean_job_s": round(fig.mean_job_s, 3)}), flush=True)
            else:
                print(f"{name:<13} {fig.rate:6.2f} images/s   {fig.total_s:6.1f} s total   "
                      f"(enqueue {fig.enqueue_s:.1f} s; mean job {fig.mean_job_s:.2f} s; "
                      f"images per daemon {list(fig.per_daemon)})",
                      flush=True)


if __name__ == "__main__":
    main()
