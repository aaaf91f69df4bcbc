"""A throw-away Darkroom installation with the default config.toml and a real `darkroom worker` daemon.

Used by run.py: the daemon is started and left to go idle (its start-up
maintenance done, polling backed off) before anything is timed, as on a
server that has been up for a while. Progress is read from the database
file with the stdlib ``sqlite3`` module, so watching costs the machine
almost nothing.
"""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.daemon import daemon_env as clean_env  # noqa: F401  (run.py starts its one-shot commands with it)
from tests.daemon import launch

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DARKROOM = [sys.executable, "-m", "worker"]  # what the `darkroom` script runs, in this venv


class Install:
    """``home/config.toml`` (a copy of the repository's default) and its data directory."""

    def __init__(self, home: Path) -> None:
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        shutil.copy(REPO / "config.toml", home / "config.toml")
        self.home = home
        self.config = home / "config.toml"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = home / "worker.log"

    def command(self, *args: str) -> list[str]:
        return [*DARKROOM, "--config", str(self.config), *args]

    def start(self, workers: int, quiet_s: float = 2.0, min_s: float = 5.0, timeout_s: float = 120.0) -> None:
        """Start the daemon; return once it has logged 'started' and then nothing for ``quiet_s``."""
        with open(self.log, "ab") as fh:
            self.proc = launch(self.config, "worker", "--workers", str(workers), stdout=fh, text=False)
        t0 = time.monotonic()
        last_size, last_change = -1, t0
        while True:
            time.sleep(0.2)
            if self.proc.poll() is not None:
                raise SystemExit(f"the worker exited at start:\n{self.log.read_text()[-3000:]}")
            size = self.log.stat().st_size
            now = time.monotonic()
            if size != last_size:
                last_size, last_change = size, now
            started = b" started: " in self.log.read_bytes()
            if started and now - t0 >= min_s and now - last_change >= quiet_s:
                return
            if now - t0 > timeout_s:
                raise SystemExit(f"the worker did not settle within {timeout_s} s:\n{self.log.read_text()[-3000:]}")

    def settle(self, quiet_s: float = 2.0) -> None:
        """Wait until the daemon has logged nothing for ``quiet_s`` (periodic tasks done)."""
        last_size, last_change = -1, time.monotonic()
        while time.monotonic() - last_change < quiet_s:
            time.sleep(0.2)
            size = self.log.stat().st_size
            if size != last_size:
                last_size, last_change = size, time.monotonic()

    def peak_rss_mb(self) -> float:
        """The largest VmHWM among the daemon and its worker processes (read while they run)."""
        assert self.proc is not None
        pids = [self.proc.pid] + [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()
                                  and _parent(int(p.name)) == self.proc.pid]
        return max((_hwm_mb(pid) for pid in pids), default=0.0)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    # --- reading the database --------------------------------------------------------------------

    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.home / 'data' / 'app.db'}?mode=ro", uri=True, timeout=5)

    def counts(self, con: sqlite3.Connection) -> tuple[int, int, int]:
        """(completed, completed and embedded - a vector written, or refused by the embedder -, failed)."""
        row = con.execute("SELECT sum(status = 'completed'), sum(status = 'completed' AND embedding_model IS NOT NULL"
                          " AND (embedded_at IS NOT NULL OR error LIKE 'embedding refused: %')),"
                          " sum(status = 'failed') FROM images").fetchone()
        return int(row[0] or 0), int(row[1] or 0), int(row[2] or 0)

    def refused(self) -> list[tuple[str, str]]:
        """(filename, reason) of completed rows the embedder refused: they have no vector."""
        con = self.db()
        try:
            return con.execute("SELECT filename, error FROM images WHERE status = 'completed' AND embedded_at IS NULL"
                               " AND error LIKE 'embedding refused: %'").fetchall()
        finally:
            con.close()

    def wait_done(self, expected: int, poll_s: float = 0.02, timeout_s: float = 600.0) -> tuple[float, float]:
        """Block until ``expected`` rows are completed and embedded; (t all completed, t all embedded)."""
        deadline = time.perf_counter() + timeout_s
        t_completed = None
        con = self.db()
        try:
            while time.perf_counter() < deadline:
                try:
                    completed, embedded, failed = self.counts(con)
                except sqlite3.OperationalError:  # not created yet, or locked for a moment
                    completed = embedded = failed = 0
                now = time.perf_counter()
                if failed:
                    errors = con.execute("SELECT filename, error FROM images WHERE status = 'failed'").fetchall()
                    raise SystemExit(f"{failed} image(s) failed: {errors}")
                if completed >= expected and t_completed is None:
                    t_completed = now
                if embedded >= expected:
                    return t_completed or now, now
                time.sleep(poll_s)
        finally:
            con.close()
        raise SystemExit(f"not done after {timeout_s} s; see {self.log}")

    def results(self, keep_width: int, keep_dir: Path, after: float = 0.0) -> dict:
        """Bytes per format, bytes at ``keep_width``, stage seconds summed, the first-claim-to-last-completion
        span and the sum of each row's claim-to-completion time.

        The ``keep_width`` variants are copied to ``keep_dir/<filename>.<format>`` for scoring. ``overhead``
        is over the rows claimed at or after ``after`` (epoch seconds): (span - the rows' claim-to-completion
        times + their write and db stages, i.e. the queue between jobs plus file and database work) / span.
        """
        keep_dir.mkdir(parents=True, exist_ok=True)
        media = self.home / "data" / "media"
        con = self.db()
        try:
            sizes: dict[str, int] = {"webp": 0, "avif": 0}
            at_width: dict[str, int] = {"webp": 0, "avif": 0}
            for fname, fmt, width, size, path in con.execute(
                    "SELECT i.filename, v.format, v.width, v.size, v.path FROM image_variants v "
                    "JOIN images i ON i.id = v.image_id"):
                sizes[fmt] += size
                if width == keep_width:
                    at_width[fmt] += size
                    shutil.copy(media / path, keep_dir / f"{fname}.{fmt}")
            stages: dict[str, float] = {}
            for (timings,) in con.execute("SELECT timings FROM images"):
                for k, v in json.loads(timings or "{}").items():
                    stages[k] = stages.get(k, 0.0) + v
            first, last, in_jobs = con.execute(
                "SELECT min(started_at), max(completed_at), sum(completed_at - started_at) FROM images"
                " WHERE started_at >= ?", (after,)).fetchone()
            io_s = 0.0
            for (timings,) in con.execute("SELECT timings FROM images WHERE started_at >= ?", (after,)):
                t = json.loads(timings or "{}")
                io_s += t.get("write", 0.0) + t.get("db", 0.0)
        finally:
            con.close()
        overhead = (last - first - in_jobs + io_s) / (last - first) if first is not None and last > first else None
        return {"bytes": sizes, "bytes_at": at_width, "stages": stages, "overhead": overhead}


def _parent(pid: int) -> int | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(text[text.rindex(")") + 2:].split()[1])


def _hwm_mb(pid: int) -> float:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0.0
    return next((int(line.split()[1]) / 1024 for line in lines if line.startswith("VmHWM:")), 0.0)
