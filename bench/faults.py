"""Backend faults, scenario by scenario: what happened, time to recover, lines logged.

Runs a real ``darkroom worker`` against private Redis and PostgreSQL servers
(on free ports, in temporary directories; never the machine's own 6379/5432)
and breaks one thing per scenario, reusing the test helpers
(``tests/faults/servers.py``, ``tests/daemon.py:Daemon``,
``tests/conftest.py``). Prints one table row per scenario:

    scenario | what happened | time to recover | lines logged during the outage

"time to recover" runs from the moment the backend is back (or the fault is
removed) to the moment every image is completed (or the vectors are back).

    python bench/faults.py                       # every scenario, ~2 min
    python bench/faults.py --only redis-restart --outage-s 20
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.conftest import TEST_SECTIONS, merge, run_cli, write_config
from tests.daemon import Daemon
from tests.faults.conftest import FAULT_SECTIONS, _private_dir
from tests.faults.servers import PostgresServer, RedisServer
from tests.imagefiles import photo


def _config(root: Path, name: str, **sections: dict[str, Any]) -> Path:
    return write_config(root / name / "config.toml", merge(merge(TEST_SECTIONS, FAULT_SECTIONS), sections))


def _status(cfg: Path) -> dict[str, Any] | None:
    proc = run_cli(cfg, "status", "--json", check=False)
    try:
        return dict(json.loads(proc.stdout))
    except ValueError:
        return None  # the database is down right now


def _wait(pred: Callable[[], bool], timeout: float) -> float | None:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if pred():
            return time.monotonic() - start
        time.sleep(0.3)
    return None


def _batch(root: Path, cfg: Path, n: int) -> None:
    for i in range(n):
        photo(root / "in" / cfg.parent.name / f"p{i:02d}.jpg", (220 + 6 * i, 160))
    run_cli(cfg, "enqueue", str(root / "in" / cfg.parent.name))


def _images(cfg: Path) -> dict[str, int]:
    s = _status(cfg)
    return s["images"] if s else {}


def _attempts(cfg: Path) -> str:
    from db import images
    from worker.app import build
    from worker.settings import load

    app = build(load(cfg, env={}))
    try:
        ids = images.ids_with_status(app.engine, ["completed", "failed", "pending", "processing"])
        att = [r.attempts for r in (images.get(app.engine, i) for i in ids) if r is not None]
    finally:
        app.close()
    return f"attempts max {max(att, default=0)}, total {sum(att)} for {len(att)} images"


def _restart(root: Path, name: str, cfg: Path, server: Any, outage_s: float, n: int) -> list[str]:
    _batch(root, cfg, n)
    worker = Daemon(cfg, "worker", new_session=True)
    try:
        _wait(lambda: _images(cfg).get("completed", 0) >= 2, 60)
        server.stop()
        before = len(worker.log().splitlines())
        time.sleep(outage_s)
        lines = len(worker.log().splitlines()) - before
        server.start()
        took = _wait(lambda: _images(cfg).get("completed", 0) == n, 180)
        c = _images(cfg)
        what = f"{c.get('completed')}/{n} completed, {c.get('failed')} failed; {_attempts(cfg)}"
        tracebacks = worker.log().count("Traceback")
        return [name, what + (f"; {tracebacks} tracebacks" if tracebacks else ""),
                "not within 180 s" if took is None else f"{took:.1f} s", f"{lines} in {outage_s:.0f} s"]
    finally:
        worker.stop()
        worker.kill_group()


def redis_restart(root: Path, args: argparse.Namespace) -> list[str]:
    server = RedisServer(Path(tempfile.mkdtemp(prefix="bench-redis-")))
    server.start()
    try:
        cfg = _config(root, "redis", queue={"url": server.url, "name": "bench"},
                      outage={"summary_interval_s": 60.0})
        return _restart(root, f"Redis down {args.outage_s:.0f} s mid-batch, back empty", cfg, server,
                        args.outage_s, args.images)
    finally:
        server.stop()
        shutil.rmtree(server.directory, ignore_errors=True)


def _postgres() -> PostgresServer:
    server = PostgresServer(_private_dir("bench-pg-"))
    server.init()
    server.start()
    return server


def postgres_restart(root: Path, args: argparse.Namespace) -> list[str]:
    server = _postgres()
    try:
        cfg = _config(root, "pg", database={"url": server.url}, outage={"summary_interval_s": 60.0})
        return _restart(root, f"PostgreSQL crashed, down {args.outage_s:.0f} s mid-batch", cfg, server,
                        args.outage_s, args.images)
    finally:
        server.stop("immediate")
        shutil.rmtree(server.directory, ignore_errors=True)


def start_into_outage(root: Path, args: argparse.Namespace) -> list[str]:
    server = _postgres()
    try:
        cfg = _config(root, "pgdown", database={"url": server.url})
        run_cli(cfg, "migrate")
        server.stop()
        worker = Daemon(cfg, "worker", new_session=True)
        try:
            time.sleep(args.outage_s)
            alive = worker.popen.poll() is None
            lines = len(worker.log().splitlines())
            health = run_cli(cfg, "health", "--local", check=False).stderr.strip().splitlines()[-1:]
            server.start()
            _batch(root, cfg, 3)
            took = _wait(lambda: _images(cfg).get("completed", 0) == 3, 120)
            what = (("waited" if alive else "EXITED") + f"; health: {health[0][:60] if health else '-'}"
                    + f"; then {_images(cfg).get('completed')}/3 completed")
            return ["worker started with PostgreSQL down", what,
                    "not within 120 s" if took is None else f"{took:.1f} s", f"{lines} in {args.outage_s:.0f} s"]
        finally:
            worker.stop()
            worker.kill_group()
    finally:
        server.stop("immediate")
        shutil.rmtree(server.directory, ignore_errors=True)


def vectors_deleted(root: Path, args: argparse.Namespace) -> list[str]:
    cfg = _config(root, "vectors")
    _batch(root, cfg, 8)
    worker = Daemon(cfg, "worker", new_session=True)
    try:
        def vectors_ok() -> bool:
            claims = (_status(cfg) or {}).get("vector_claims", {})
            return bool(claims) and all(c["claimed"] == c["present"] == 8 for c in claims.values())

        _wait(vectors_ok, 120)
        shutil.rmtree(cfg.parent / "data" / "lancedb")
        before = len(worker.log().splitlines())
        start = time.monotonic()
        photo(root / "in" / "one-more.jpg", (300, 200))  # a new image makes the step run
        run_cli(cfg, "enqueue", str(root / "in" / "one-more.jpg"))

        def refilled() -> bool:
            claims = (_status(cfg) or {}).get("vector_claims", {})
            return bool(claims) and all(c["claimed"] == c["present"] == 9 for c in claims.values())

        ok = _wait(refilled, 120)
        took = None if ok is None else time.monotonic() - start
        lines = len(worker.log().splitlines()) - before
        claims = (_status(cfg) or {}).get("vector_claims", {})
        return ["LanceDB directory deleted under a running worker",
                "refilled: " + ", ".join(f"{m} {c['present']}/{c['claimed']}" for m, c in claims.items()),
                "not within 120 s" if took is None else f"{took:.1f} s", f"{lines} until refilled"]
    finally:
        worker.stop()
        worker.kill_group()


SCENARIOS = {"redis-restart": redis_restart, "postgres-restart": postgres_restart,
             "start-into-outage": start_into_outage, "vectors-deleted": vectors_deleted}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=sorted(SCENARIOS), action="append")
    ap.add_argument("--outage-s", type=float, default=10.0)
    ap.add_argument("--images", type=int, default=24)
    args = ap.parse_args()
    why = RedisServer.available() or PostgresServer.available()
    if why:
        sys.exit(f"faults: {why}")
    root = _private_dir("bench-faults-")
    os.chmod(root, 0o755)
    rows = [["scenario", "what happened", "time to recover", "lines logged"]]
    try:
        for name in args.only or list(SCENARIOS):
            rows.append(SCENARIOS[name](root, args))
            print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for i, r in enumerate(rows):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")


if __name__ == "__main__":
    main()
