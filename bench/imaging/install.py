"""A throw-away Darkroom installation with the default config.toml and a real `darkroom worker` daemon.

Used by run.py: the daemon is started and left to go idle (its start-up
maintenance done, polling backed off) before anything is timed, as on a
server that has been up for a while. Progress is read from the database
file with the stdlib ``sqlite3`` module, so watching costs the machine
almost nothing.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from tests.daemon import daemon_env as clean_env  # noqa: F401  (run.py starts its one-shot commands with it)
from tests.daemon import launch

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DARKROOM = [sys.executable, "-m", "worker"]  # what the `darkroom` script runs, in this venv
# "2026-12-03 10:24:10,660 INFO    6242 jobs.embeddings.step: embedding: 6 embedded, ... in 0.041 s"
EMBEDDING_RUN = re.compile(r"(?P<at>\S+ \S+) INFO +\d+ jobs"
                           r"\.embeddings\.step: embedding: .* in (?P<s>[0-9.]+) s$")


class Install:
    """``home/config.toml`` (a copy of the repository's default) and its data directory."""

    def __init__(self, home: Path, encode_threads: int = 0) -> None:
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        text = (REPO / "config.toml").read_text()
        if encode_threads:  # the one change to the default config some runs make
            line = "encode_threads = 0 "
            assert line in text, "config.toml has no 'encode_threads = 0' line to change"
            text = text.replace(line, f"encode_threads = {encode_threads} ")
        (home / "config.toml").write_text(text)
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
        """Bytes per format, bytes at ``keep_width``, stage seconds summed, and the overhead shares.

        The ``keep_width`` variants are copied to ``keep_dir/<filename>.<format>`` for scoring. Over the rows
        claimed at or after ``after`` (epoch seconds), in order of their claims, for a one-worker daemon:
        ``overhead`` = (the time between one job's completion and the next claim, minus the part of it the
        worker spent on other tasks, plus the jobs' write and db stages) / the first-claim-to-last-completion
        span, i.e. the queue, the claim, file and database work; ``other`` = the other tasks' part of the time
        between jobs / the span: the embedding step's runs (their log lines give each run's seconds) and
        maintenance duties (``maintenance_runs``), which one worker runs between image jobs.
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
            jobs = con.execute("SELECT started_at, completed_at, timings FROM images WHERE started_at >= ?"
                               " ORDER BY started_at", (after,)).fetchall()
            duties = con.execute("SELECT started_at, finished_at FROM maintenance_runs WHERE finished_at >= ?",
                                 (after,)).fetchall()
        finally:
            con.close()
        if len(jobs) < 2:
            return {"bytes": sizes, "bytes_at": at_width, "stages": stages, "overhead": None, "other": None}
        others = sorted(self.embedding_runs(after) + [(a, b) for a, b in duties if b is not None])
        span = jobs[-1][1] - jobs[0][0]
        between = other = 0.0
        for (_, done, _), (start, _, _) in itertools.pairwise(jobs):
            gap = max(0.0, start - done)
            busy = sum(max(0.0, min(b, start) - max(a, done)) for a, b in others)
            between += gap - min(gap, busy)
            other += min(gap, busy)
        timings = [json.loads(t or "{}") for _, _, t in jobs]
        io_s = sum(t.get("write", 0.0) + t.get("db", 0.0) for t in timings)
        return {"bytes": sizes, "bytes_at": at_width, "stages": stages,
                "overhead": (between + io_s) / span, "other": other / span}

    def embedding_runs(self, after: float) -> list[tuple[float, float]]:
        """(start, end) epoch seconds of each embedding-step run the daemon logged after ``after``."""
        runs = []
        for line in self.log.read_text(errors="replace").splitlines():
            m = EMBEDDING_RUN.match(line)
            if m:
                end = datetime.strptime(m["at"], "%Y-%m-%d %H:%M:%S,%f").timestamp()  # local time, as logged
                if end >= after:
                    runs.append((end - float(m["s"]), end))
        return runs


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
