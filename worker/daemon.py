"""The process side: the daemon (huey consumer + reconciler) and drain mode.

``run_daemon`` runs until SIGTERM or SIGINT; both are graceful: the consumer
stops taking work, waits up to ``jobs.grace_s`` for tasks in hand, then
gives whatever it still holds back to ``pending``. Worker processes die with
the consumer (see ``worker/huey_consumer.py``); a worker that dies on its own has
its image recovered at once. ``drain`` processes until the queue and the
schedule are empty, then returns (one-shot runs, tests).

The reconciler runs in every daemon, but at most once per
``jobs.reconcile_interval_s`` across all of them: each run takes the
``reconcile`` lease (``db/leases.py``) and is recorded in ``maintenance_runs``.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from dataclasses import asdict
from typing import Any

from db import images, leases
from db.errors import unreachable_from
from db.maintenance.checkpoint import checkpoint_on_shutdown
from jobs.huey_import import Huey
from jobs.maintenance import duties
from jobs.outage import OUTAGES
from jobs.queue import describe_queue_url, ping, unreachable_queue
from jobs.reconcile import reconcile
from worker import services, startup, startup_gc
from worker.app import App
from worker.huey_consumer import DarkroomConsumer, die_with_parent

log = logging.getLogger(__name__)

RECONCILE_LEASE = "reconcile"


def reconcile_once(app: App) -> dict[str, Any]:
    s = app.settings.jobs
    result = reconcile(app.engine, app.tasks.enqueue_images, requeue_after_s=s.requeue_after_s,
                       max_attempts=s.max_attempts, queue_depth=app.huey.pending_count)
    return asdict(result)


def reconcile_guarded(app: App, owner: str) -> bool:
    """One reconciler run unless another daemon already ran it in this period."""
    period = app.settings.jobs.reconcile_interval_s
    # Only runs that found something are recorded: a quiet run every 30 s would
    # fill maintenance_runs; leases.last_run_at says when it last ran.
    return leases.run_once_per_period(app.engine, RECONCILE_LEASE, period,
                                      lambda: reconcile_once(app), owner=owner,
                                      record=lambda figures: any(figures.values()))


class Reconciler(threading.Thread):
    """Runs the reconciler at start and then every ``jobs.reconcile_interval_s``.

    It wakes every ``interval / 4`` so that, with several daemons, the period
    is taken by whichever arrives first, early in the period.
    """

    def __init__(self, app: App, owner: str) -> None:
        super().__init__(name="reconciler", daemon=True)
        self.app, self.owner, self.stop = app, owner, threading.Event()
        self._where = ""  # the backend of the outage this thread is in, if any
        self._queue_down = False

    def _catch_up(self) -> None:
        """Enqueue the duties missed while no worker ran (see ``duties.catch_up``).

        Here, not before the consumer starts: working out each schedule's
        longest gap evaluates its crontab minute by minute over days (~0.1 s),
        which the first claim of a starting worker should not wait for.
        """
        app = self.app
        try:
            duties.catch_up(app.engine, app.duty_env, app.duties)
        except Exception as exc:
            if not self._outage(exc):  # an outage: the loop below says when it is back
                log.exception("maintenance catch-up failed; the schedule runs the duties as usual")

    def _outage(self, exc: Exception) -> bool:
        """Report ``exc`` to the outage log if it means the database or the queue is down."""
        queue_down = unreachable_queue(exc, self.app.settings.queue.url)
        down = unreachable_from(exc, self.app.settings.database.url) or queue_down
        if down is None:
            return False
        self._where, self._queue_down = down.where, down is queue_down
        OUTAGES.down(down.where, down.reason)  # logged once by the outage log, not every tick
        return True

    def run(self) -> None:
        self._catch_up()
        tick = max(self.app.settings.jobs.reconcile_interval_s / 4, 0.05)
        while True:
            try:
                reconcile_guarded(self.app, self.owner)
                if self._where:
                    # A run may not touch the queue at all (another daemon's turn, nothing
                    # pending): the queue is back only once it answers. Without this
                    # check the log said "back" and "unreachable" every tick of an outage.
                    if self._queue_down:
                        ping(self.app.huey)
                    OUTAGES.up(self._where)
                    self._where, self._queue_down = "", False
            except Exception as exc:
                if not self._outage(exc):
                    log.exception("reconciler run failed; will try again")
            if self.stop.wait(tick):
                return


def preload_job_modules() -> None:
    """Import what every image job needs (Pillow, numpy, the pipeline, the local embedder) once, before the fork.

    The producers (CLI, API) never import them (``jobs.tasks`` imports the job
    inside the task); the worker imports them here so that each forked worker
    shares them and claims its first job without importing anything.
    """
    with startup_gc.paused():
        import jobs.embeddings.inline  # the local embedder, run inside the job (embedder = "local")
        import jobs.image_job
        import jobs.imaging.pipeline  # noqa: F401


def run_daemon(app: App, workers: int | None = None) -> int:
    """Run the worker daemon until SIGTERM or SIGINT; returns the exit status.

    >>> run_daemon(build(load("config.toml")))  # `darkroom worker`  # doctest: +SKIP
    0
    """
    settings = app.settings
    if not _wait_and_migrate(app):
        log.info("stopped while waiting for the backends")
        return 0
    settings.paths.media_dir.mkdir(parents=True, exist_ok=True)
    duties.validate(app.engine, settings.maintenance)  # a bad TTL rule stops start-up, named
    preload_job_modules()
    owner = app.install_context().owner_prefix
    jobs = settings.jobs

    def on_worker_death(pid: int, exitcode: int | None) -> None:
        how = (f"killed by {signal.Signals(-exitcode).name}" if exitcode is not None and exitcode < 0
               else f"exited with status {exitcode}")
        reason = f"the worker process died while processing it ({how})"
        retry = images.release_dead(app.engine, f"{owner}/{pid}", jobs.max_attempts, reason)
        if retry:
            app.tasks.enqueue_images(retry)
            log.warning("worker %d died (%s); re-enqueued %d image(s) it held", pid, how, len(retry))

    consumer = DarkroomConsumer(
        app.huey,
        workers=workers or settings.queue.workers,
        worker_type=settings.queue.worker_type,
        periodic=True,
        initial_delay=settings.queue.initial_delay_s,
        backoff=settings.queue.backoff,
        max_delay=settings.queue.max_delay_s,
        shutdown_timeout=jobs.grace_s,
        on_worker_death=on_worker_death,
        queue_name="{} at {}".format(*describe_queue_url(settings.queue.url)),
    )
    reconciler = Reconciler(app, owner)  # its first act: duties.catch_up, off the way of the first claim
    running = services.start(app, owner, workers or settings.queue.workers)  # heartbeat, metrics (#8)
    log.info("worker %s started: %d %s workers, queue %s", owner,
             workers or settings.queue.workers, settings.queue.worker_type, settings.queue.url)
    try:
        startup_gc.freeze_before_fork()  # the workers' collections leave the shared pages alone
        consumer.start()
        reconciler.start()
        _consume(consumer)
    finally:
        reconciler.stop.set()
        consumer.stop_flag.set()
        consumer.kill_stragglers()
        released = images.release_owned(app.engine, owner + "/")
        if released:
            log.info("released %d unfinished image(s) back to pending", released)
        reconciler.join(5)
        checkpoint_on_shutdown(app.engine, app.duty_env.queue_db)
        running.stop()
        log.info("worker %s stopped", owner)
    return 0


def _wait_and_migrate(app: App) -> bool:
    """Wait for the database and the queue (see ``worker/startup.py``), then migrate.

    Returns False when SIGTERM/SIGINT came first. The signal handlers set here
    are put back before the consumer installs its own.
    """
    from db.errors import DatabaseUnreachable

    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while startup.wait_for_backends(app, stop):
            try:
                app.migrate()
                return True
            except DatabaseUnreachable:  # gone again between the probe and the migration
                pass
        return False
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _consume(consumer: DarkroomConsumer) -> None:
    """huey's ``Consumer.run`` loop, minus its re-exec on SIGHUP (which would skip our cleanup)."""
    from jobs.huey_import import ConsumerStopped
    from jobs.huey_private import restart_requested

    health_check_ts = time.monotonic()
    while True:
        try:
            health_check_ts = consumer.loop(health_check_ts)
        except ConsumerStopped:
            break
    consumer.huey.notify_interrupted_tasks()
    if restart_requested(consumer):
        log.info("SIGHUP: stopping; restart is left to the supervisor (systemd, Procfile)")


def drain(app: App, workers: int = 1, progress: bool = False) -> int:
    """Process queued work until nothing is left, with ``workers`` processes."""
    app.migrate()
    duties.validate(app.engine, app.settings.maintenance)
    preload_job_modules()
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
            procs = [multiprocessing.get_context("fork").Process(target=_drain_child,
                                                              args=(huey, os.getpid()))
                     for _ in range(workers)]
            for p in procs:
                p.start()
            for p in procs:
                p.join()
        _move_due(huey, wait=True)
        if huey.pending_count() == 0 and huey.scheduled_count() == 0:
            break
    return 0


def _drain_child(huey: Huey, parent_pid: int) -> None:
    die_with_parent(parent_pid)
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
