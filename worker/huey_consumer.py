"""huey's consumer, adjusted so that no work and no process is lost or left behind.

What huey 3.5.4 does by itself, and what :class:`DarkroomConsumer` changes:

- ``kill -9`` of the consumer leaves its worker and scheduler processes
  running as orphans. Every child here (workers *and* the scheduler, which
  never runs huey's ``on_startup`` hooks) asks Linux for ``PR_SET_PDEATHSIG``
  = SIGKILL as its first act, and exits at once if its parent is already gone.
- SIGINT stops the consumer *without* grace when SIGTERM is the graceful
  signal. Here both are graceful: stop taking work, wait up to the grace
  period for the tasks in hand. Children ignore both (a Ctrl-C or systemd
  signals the whole process group), so only the consumer decides when a
  task is interrupted. A second SIGTERM/SIGINT cuts the grace period short.
- After the grace period huey interrupts tasks in hand with a signal that
  raises ``KeyboardInterrupt`` in the task (SIGUSR1 here, so it cannot be
  confused with a Ctrl-C), which lets the task give its image back. A task
  stuck in C code (an AVIF encode) cannot see that, so whatever is still
  alive a moment later is killed; the daemon then releases its leases.
- huey logs "Error reading from queue" with a traceback on every poll while
  Redis is down (hundreds of lines a second). Here a failed read goes to the
  outage log (``jobs/outage.py``: one WARNING, a summary a minute, one INFO
  when it is back) and the worker waits the outage backoff before reading again.
- A worker that dies (OOM killer, SIGKILL) is restarted by the health check;
  here the health check runs every second and first calls ``on_worker_death``
  with the dead process's pid, so the daemon can recover the image it held
  at once instead of waiting for the lease to expire.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
from collections.abc import Callable
from typing import Any

from jobs.huey_import import Consumer, Huey, ProcessEnvironment, Scheduler, Worker
from jobs.huey_private import make_signals_graceful, process_logger, reset_schedule_clock
from jobs.outage import OUTAGES

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
INTERRUPT_SIGNAL = signal.SIGUSR1
HEALTH_CHECK_INTERVAL_S = 1.0
KILL_WAIT_S = 2.0


def die_with_parent(parent_pid: int | None = None) -> None:
    """Ask Linux to SIGKILL this process when its parent dies (no orphans).

    ``parent_pid`` closes the race where the parent died between ``fork``
    and this call: the signal would never come, so exit now instead.
    """
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:  # not Linux: the lease expiry still recovers the work
        return
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)


class QuietWorker(Worker):
    """huey's worker loop, with queue read errors waited out instead of logged per poll."""

    queue_name = "the queue"

    def loop(self, now: Any = None) -> None:
        try:
            task = self.huey.dequeue()
        except Exception as exc:
            from db.errors import reason_of

            delay = OUTAGES.down(self.queue_name, reason_of(exc))
            self.stop_flag.wait(delay)
            return
        OUTAGES.up(self.queue_name)
        if task is not None:
            self.delay = self.default_delay
            self.task_count += 1
            try:
                self.huey.execute(task, now)
            except Exception as exc:
                from db.errors import reason_of
                from jobs.queue import queue_errors

                if not isinstance(exc, queue_errors()):
                    process_logger(self).exception("Unhandled error during execution of task %s.", task.id)
                    return
                # huey's bookkeeping after the task (revoke flag, result) lost the queue:
                # the work is done and recorded in the row; say so once, as an outage.
                self.stop_flag.wait(OUTAGES.down(self.queue_name, reason_of(exc)))
        elif not self.huey.storage.blocking:
            self.sleep()


class QuietScheduler(Scheduler):
    """huey's scheduler, which would log "Error reading schedule." with a traceback every
    second while the queue is down: it checks the queue first and waits the outage out."""

    def loop(self, now: Any = None) -> None:
        from db.errors import reason_of
        from jobs.queue import ping

        try:
            ping(self.huey)
        except Exception as exc:
            self.stop_flag.wait(OUTAGES.down(QuietWorker.queue_name, reason_of(exc)))
            reset_schedule_clock(self)
            return
        OUTAGES.up(QuietWorker.queue_name)
        super().loop(now)


class DarkroomProcessEnvironment(ProcessEnvironment):
    """Forked workers and scheduler that die with the consumer and ignore group signals."""

    def __init__(self) -> None:
        super().__init__(signal.SIGTERM, INTERRUPT_SIGNAL)
        self.parent_pid = os.getpid()

    def init_child(self, process: Any) -> None:
        die_with_parent(self.parent_pid)
        super().init_child(process)  # ignores SIGTERM, SIGUSR1 interrupts a running task
        signal.signal(signal.SIGINT, signal.SIG_IGN)


class DarkroomConsumer(Consumer):
    """huey's consumer with the changes described in this module's docstring.

    >>> consumer = DarkroomConsumer(huey, workers=2, worker_type="process",  # doctest: +SKIP
    ...                             shutdown_timeout=30.0, on_worker_death=print)
    >>> consumer.run()  # until SIGTERM or SIGINT  # doctest: +SKIP
    """

    worker_class = QuietWorker
    scheduler_class = QuietScheduler

    def __init__(self, huey: Huey, *, on_worker_death: Callable[[int, int | None], None] | None = None,
                 queue_name: str | None = None, **options: Any) -> None:
        if queue_name:
            QuietWorker.queue_name = queue_name
        options.setdefault("health_check_interval", HEALTH_CHECK_INTERVAL_S)
        options["check_worker_health"] = True
        options["graceful_signal"] = "TERM"
        super().__init__(huey, **options)
        self.on_worker_death = on_worker_death
        # Signal -> (restart, graceful): SIGINT is graceful too.
        make_signals_graceful(self, signal.SIGINT, signal.SIGTERM)

    def get_environment(self, worker_type: str) -> Any:
        if worker_type == "process":
            return DarkroomProcessEnvironment()
        return super().get_environment(worker_type)

    def children(self) -> list[Any]:
        return [p for _, p in self.worker_threads] + [self.scheduler]

    def check_worker_health(self) -> bool:
        if self.on_worker_death is not None and self.environment.forks:
            for _, proc in self.worker_threads:
                if proc.pid is not None and not proc.is_alive():
                    try:
                        self.on_worker_death(proc.pid, proc.exitcode)
                    except Exception:  # the reconciler will recover it once the lease expires
                        log.exception("could not recover the work of dead worker %s", proc.pid)
        return bool(super().check_worker_health())

    def stop(self, graceful: bool = False) -> None:
        super().stop(graceful)
        self.kill_stragglers()

    def kill_stragglers(self) -> list[int]:
        """SIGKILL children still alive after the grace period (stuck in C code)."""
        if not self.environment.forks:
            return []
        killed = []
        for proc in self.children():
            if proc.pid is not None and proc.is_alive():
                try:
                    os.kill(proc.pid, signal.SIGKILL)
                    killed.append(proc.pid)
                except ProcessLookupError:
                    continue
        for proc in self.children():
            if proc.pid is not None:
                proc.join(KILL_WAIT_S)
        if killed:
            log.warning("killed %d process(es) still busy after the grace period: %s", len(killed), killed)
        return killed
