"""How many image jobs are running on this worker, across its processes and threads.

A job holds one slot while it renders: a non-blocking ``flock`` on
``<dir>/running-<n>.lock`` (the lanes directory of the data dir, shared by
every worker process of every consumer on it). The kernel drops the lock
when a process dies, so a killed worker never leaves a phantom job. Counting
probes each slot file with a shared lock. Without a directory (a bare
:class:`~jobs.context.JobContext` in tests or scripts) the count is this
process's own.

The count decides how many threads a job encodes its outputs with
(``jobs/imaging/fanout.py``): the cores shared among the running jobs, never
fewer than one, so one upload on an idle worker uses every core and a busy
worker stays at one thread per job (no oversubscription). ``imaging.encode_threads``
caps it (1: every job encodes serially, for a host whose other cores belong
to other services).

>>> threads_for(running=1, cores=2), threads_for(running=2, cores=2), threads_for(running=3, cores=2)
(2, 1, 1)
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PREFIX = "running-"
MAX_SLOTS = 256  # more jobs than this at once still run; they are just not counted

_lock = threading.Lock()
_local_jobs = 0


def cores() -> int:
    """CPUs this process may run on (its affinity, not the machine's total)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def threads_for(running: int, cores: int) -> int:
    """Encode threads for one of ``running`` jobs on ``cores`` CPUs."""
    return max(1, cores // max(1, running))


@contextmanager
def job(slots_dir: Path | None) -> Iterator[None]:
    """Count the caller as a running job until the block ends."""
    global _local_jobs
    with _lock:
        _local_jobs += 1
    try:
        if slots_dir is None:
            yield
        else:
            with _slot(slots_dir):
                yield
    finally:
        with _lock:
            _local_jobs -= 1


def count(slots_dir: Path | None) -> int:
    """Jobs running now: slots held under ``slots_dir``, or this process's jobs without one."""
    if slots_dir is None:
        return _local_jobs
    held = 0
    for path in slots_dir.glob(PREFIX + "*.lock"):
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:  # removed or unreadable: not a running job
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            held += 1
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
    return held


def encode_threads(slots_dir: Path | None, at_most: int = 0) -> int:
    """Threads for a job that is running now (it counts itself); ``at_most`` > 0 caps them.

    ``at_most`` is ``imaging.encode_threads``.
    """
    threads = threads_for(count(slots_dir), cores())
    return min(threads, at_most) if at_most > 0 else threads


@contextmanager
def _slot(slots_dir: Path) -> Iterator[None]:
    try:
        slots_dir.mkdir(parents=True, exist_ok=True)
    except OSError:  # the data dir is in trouble: run uncounted rather than fail the image here
        yield
        return
    for n in range(MAX_SLOTS):
        try:
            fd = os.open(slots_dir / f"{PREFIX}{n}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            break
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # held by another job, or probed by a counter right now: the next one
            os.close(fd)
            continue
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        return
    yield
