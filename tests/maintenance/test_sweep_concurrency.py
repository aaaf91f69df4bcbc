"""A sweep of 50,000 expired rows while another process keeps committing.

No timed assertion (speed belongs to bench/): the test prints the longest
time the other writer waited for a commit, and checks that it kept
committing throughout and lost nothing.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import time
from pathlib import Path

from sqlalchemy import Engine, text

from db.engine import write_session
from db.maintenance.ttl import TtlRule, sweep

EXPIRED = 50_000
FRESH = 1_000


def writer(db: str, stop: multiprocessing.synchronize.Event, ready: multiprocessing.synchronize.Event,
           out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    conn = sqlite3.connect(db, isolation_level=None, timeout=30)
    conn.execute("PRAGMA busy_timeout = 30000")
    waits: list[float] = []
    n = 0
    ready.set()
    while not stop.is_set():
        began = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO app_log (n, at) VALUES (?, ?)", (n, time.time()))
        conn.execute("COMMIT")
        waits.append(time.perf_counter() - began)
        n += 1
        time.sleep(0.002)  # an app committing a few hundred times a second
    conn.close()
    waits.sort()
    out.put({"commits": n, "max_s": waits[-1], "p99_s": waits[int(len(waits) * 0.99)],
             "median_s": waits[len(waits) // 2]})


def test_sweep_of_50k_rows_leaves_a_concurrent_writer_waiting_milliseconds(
        engine: Engine, db_path: Path) -> None:
    now = time.time()
    with write_session(engine) as s:
        s.execute(text("CREATE TABLE app_events (id INTEGER PRIMARY KEY, created_at REAL, payload TEXT)"))
        s.execute(text("CREATE TABLE app_log (n INTEGER, at REAL)"))
        s.execute(text("INSERT INTO app_events (created_at, payload) VALUES (:t, :p)"),
                  [{"t": now - 7 * 86_400 - i, "p": "x" * 40} for i in range(EXPIRED)]
                  + [{"t": now - i, "p": "fresh"} for i in range(FRESH)])
    ctx = multiprocessing.get_context("spawn")
    stop, ready, out = ctx.Event(), ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=writer, args=(str(db_path), stop, ready, out))
    proc.start()
    try:
        assert ready.wait(30)
        time.sleep(0.2)
        began = time.perf_counter()
        figures = sweep(engine, [TtlRule(table="app_events", column="created_at", max_age_s=86_400)],
                        batch_size=500)
        sweep_s = time.perf_counter() - began
        time.sleep(0.2)
    finally:
        stop.set()
        stats = out.get(timeout=30)
        proc.join(30)
    print(f"\nsweep: {figures['deleted']} rows in {figures['rules']['app_events.created_at']['batches']} "
          f"batches, {sweep_s:.2f} s, longest batch "
          f"{figures['rules']['app_events.created_at']['longest_batch_ms']} ms; other process: "
          f"{stats['commits']} commits, longest wait {stats['max_s'] * 1000:.1f} ms, "
          f"p99 {stats['p99_s'] * 1000:.1f} ms, median {stats['median_s'] * 1000:.2f} ms")
    assert proc.exitcode == 0
    assert figures["deleted"] == EXPIRED
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM app_events")).scalar_one() == FRESH
        assert conn.execute(text("SELECT count(*) FROM app_log")).scalar_one() == stats["commits"]
    assert stats["commits"] > 10  # it kept committing while the sweep ran
