"""How long `darkroom worker` takes from its process start to its first claim.

Each run: a throw-away default installation (SQLite database and queue) with
one small image already pending (both made by the checkout under test), then
``python -m worker worker`` is started;
the figure is process start -> the row's ``images.started_at`` (set by the
claim that turns it ``processing``). Prints the median and the spread.

    python bench/startup.py                      # 9 runs
    python bench/startup.py --runs 15 --workers 1
    python bench/startup.py --repo /tmp/before   # the worker of another checkout
    python bench/startup.py --vs /tmp/before     # this checkout and another, run in turn

The worker is stopped (SIGTERM) after each claim. The target (issue 13) is a
first claim within 0.4 s of the start.

Bytecode: an installed or once-run checkout imports the project from its
cached bytecode (``__pycache__``, written by pip or by the first run); with
``PYTHONDONTWRITEBYTECODE=1`` in the environment (as in some CI and
sandboxes) Python compiles the project's ~150 modules from source at every
start, ~20-35 ms here. ``--bytecode both`` (the default) times each run both
ways, in turn: ``cached`` compiles the checkout first (``compileall``) and
starts the worker without that variable; ``source`` removes the checkout's
``__pycache__`` and starts it with the variable set. Third-party packages
keep their bytecode from pip either way.
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._install import write_config  # noqa: E402
from tests.daemon import launch  # noqa: E402

SETUP = """
import sys
from pathlib import Path
from PIL import Image
from jobs.intake import submit_file
from worker.app import build
from worker.settings import load
app = build(load(sys.argv[1], env={}))
app.migrate()
src = Path(sys.argv[2])
Image.new("RGB", (200, 150), (180, 90, 40)).save(src, quality=85)
print(submit_file(app.engine, app.tasks, app.settings.paths.media_dir, src).image_id)
"""


PACKAGES = ("worker", "jobs", "db")


def prepare_bytecode(repo: Path, mode: str) -> dict[str, str]:
    """Put ``repo``'s bytecode in the state ``mode`` names; the environment to start the worker with."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DARKROOM_")}
    env["PYTHONPATH"] = str(repo)
    if mode == "cached":
        for package in PACKAGES:
            compileall.compile_dir(repo / package, quiet=1)
        compileall.compile_file(repo / "darkroom_api.py", quiet=1)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    else:
        for package in PACKAGES:
            for cache in (repo / package).rglob("__pycache__"):
                shutil.rmtree(cache, ignore_errors=True)
        shutil.rmtree(repo / "__pycache__", ignore_errors=True)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def one_run(home: Path, repo: Path, workers: int, timeout_s: float, bytecode: str) -> float:
    cfg = write_config(home, {"queue": {"workers": workers}, "variants": {"widths": [64]}})
    env = prepare_bytecode(repo, bytecode)
    # Set up by the checkout under test: its own migrations, its own intake.
    image_id = subprocess.run([sys.executable, "-c", SETUP, str(cfg), str(home / "photo.jpg")], env=env,
                              cwd=home, capture_output=True, text=True, check=True).stdout.split()[-1]
    db = sqlite3.connect(home / "data" / "app.db", timeout=30)
    with open(home / "worker.log", "ab") as log:
        started = time.time()
        proc = launch(cfg, "worker", stdout=log, text=False, env=env)
    try:
        while time.time() - started < timeout_s:
            row = db.execute("SELECT started_at FROM images WHERE id = ?", (image_id,)).fetchone()
            if row is not None and row[0]:
                return float(row[0]) - started
            time.sleep(0.005)
        tail = (home / "worker.log").read_text(errors="replace")[-3000:]
        raise SystemExit(f"{repo}: no claim within {timeout_s} s; the worker's log ends:\n{tail}")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        db.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--workers", type=int, default=2, help="queue.workers (default 2, the config default)")
    ap.add_argument("--repo", type=Path, default=ROOT, help="checkout whose worker is started (PYTHONPATH)")
    ap.add_argument("--vs", type=Path, default=None,
                    help="a second checkout, run in turn with --repo (A B A B ...); prints both and A/B")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for a claim")
    ap.add_argument("--bytecode", choices=("both", "cached", "source"), default="both",
                    help="the project's bytecode cached (as installed), compiled from source each start, or both")
    args = ap.parse_args()
    repos = [args.repo.resolve()] + ([args.vs.resolve()] if args.vs else [])
    modes = ("cached", "source") if args.bytecode == "both" else (args.bytecode,)
    waits: dict[tuple[Path, str], list[float]] = {(r, m): [] for r in repos for m in modes}
    print(f"load {os.getloadavg()}", file=sys.stderr)
    for _ in range(args.runs):
        for mode in modes:
            for repo in repos:
                with tempfile.TemporaryDirectory(prefix="darkroom-startup-") as tmp:
                    waits[repo, mode].append(one_run(Path(tmp), repo, args.workers, args.timeout, mode))
    for (repo, mode), w in waits.items():
        w = sorted(w)
        print(f"worker start -> first claim, {args.runs} runs, {args.workers} worker(s), bytecode {mode}, {repo}: "
              f"median {statistics.median(w) * 1000:.0f} ms, min {w[0] * 1000:.0f} ms, max {w[-1] * 1000:.0f} ms")
    if args.vs:
        for mode in modes:
            a, b = waits[repos[0], mode], waits[repos[1], mode]
            print(f"A/B paired median, bytecode {mode}: "
                  f"{statistics.median(x / y for x, y in zip(a, b, strict=True)):.2f}")
    print(f"load {os.getloadavg()}", file=sys.stderr)


if __name__ == "__main__":
    main()
