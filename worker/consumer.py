"""The process side: the daemon (huey consumer + reconciler) and drain mode.

``run_daemon`` runs until SIGTERM or SIGINT; both are graceful: the consumer
stops taking work, waits up to ``jobs.grace_s`` for tasks in hand, then
gives whatever it still holds back to ``pending``. ``drain`` processes until
the queue and the schedule are empty, then returns (one-shot runs, tests).
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import threading
import time
from typing import Any

from huey import Huey

from db import images
from jobs.reconcile import reconcile
from worker.app import App

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Ask Linux to kill this process when its parent dies (no orphans)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:  # not Linux: the lease expiry still recovers the work
        pass


def reconcile_once(app: App) -> None:
    s = app.settings.jobs
    reconcile(app.engine, app.tasks.enqueue_images, requeue_after_s=s.requeue_after_s,
              max_attempts=s.max_attempts)


class Reconciler(threading.Thread):
    """Runs the reconciler every ``jobs.reconcile_interval_s`` in the daemon."""

    def __init__(self, app: App) -> None:
        super().__init__(name="reconciler", daemon=True)
        self.app, self.stop = app, threading.Event()

    def run(self) -> None:
        while not self.stop.wait(self.app.settings.jobs.reconcile_interval_s):
            try:
                reconcile_once(self.app)
            except Exception:
                log.exception("reconciler run failed; will try again")


def _children_die_with_parent(consumer: Any) -> None:
    """Every forked child (workers *and* the scheduler) dies with the consumer.

    huey's ``on_startup`` hooks run in worker processes only, so the
    scheduler process, left alone, outlives a SIGKILLed consumer and keeps
    enqueueing periodic and retry tasks as an orphan.
    """
    env = consumer.environment
    if not env.forks:
        return
    init_child = env.init_child

    def _init_child(process: Any) -> None:
        die_with_parent()
        init_child(process)

    env.init_child = _init_child


def run_daemon(app: App, workers: int | None = None) -> int:
    settings = app.settings
    app.migrate()
    owner = app.install_context().owner_prefix
    huey = app.huey

    reconcile_once(app)
    consumer = huey.create_consumer(
        workers=workers or settings.queue.workers,
        worker_type=settings.queue.worker_type,
        periodic=True,
        initial_delay=0.05,
        backoff=1.15,
        max_delay=settings.queue.max_delay_s,
        graceful_signal="TERM",
        shutdown_timeout=settings.jobs.grace_s,
        check_worker_health=True,
        health_check_interval=5,
    )
    _children_die_with_parent(consumer)
    reconciler = Reconciler(app)
    reconciler.start()
    log.info("worker %s started: %d %s workers, queue %s", owner,
             workers or settings.queue.workers, settings.queue.worker_type, settings.queue.url)
    try:
        consumer.run()
    finally:
        reconciler.stop.set()
        released = images.release_owned(app.engine, owner + "/")
        if released:
            log.info("released %d unfinished image(s) back to pending", released)
        log.info("worker %s stopped", owner)
    return 0


def drain(app: App, workers: int = 1, progress: bool = False) -> int:
    """Process queued work until nothing is left, with ``workers`` processes."""
    app.migrate()
    app.install_context()
    reconcile_once(app)
    huey = app.huey
    # Redis storage blocks up to a second in BZPOPMIN on an empty queue; a
    # drain wants "empty" answered at once (the daemon keeps blocking reads).
    huey.storage.blocking = False
    rounds = 0
    while True:
        rounds += 1
        if workers <= 1:
            _drain_loop(huey)
        else:
            procs = [multiprocessing.get_context("fork").Process(target=_drain_child, args=(huey,))
                     for _ in range(workers)]
            for p in procs:
                p.start()
            for p in procs:
                p.join()
        _move_due(huey, wait=True)
        if huey.pending_count() == 0 and huey.scheduled_count() == 0:
            break
    return 0


def _drain_child(huey: Huey) -> None:
    die_with_parent()
    _drain_loop(huey)
    os._exit(0)


def _drain_loop(huey: Huey) -> None:
    while True:
        task = huey.dequeue()
        if task is not None:
            huey.execute(task)
            continue
        if not _move_due(huey, wait=True):
            return


def _move_due(huey: Huey, wait: bool) -> bool:
    """Move scheduled tasks that are due into the queue; waits for the next one.

    Returns False when nothing is queued or scheduled.
    """
    while True:
        for task in huey.read_schedule():
            huey.enqueue(task)
        if huey.pending_count():
            return True
        if not huey.scheduled_count() or not wait:
            return False
        time.sleep(0.05)
