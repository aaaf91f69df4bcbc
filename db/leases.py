"""Named leases in the ``leases`` table: mutual exclusion across processes and hosts.

A lease is taken by compare-and-set (``UPDATE ... WHERE owner IS NULL OR
expires_at < now``, or the first ``INSERT`` of its row), so it works the same
on SQLite and PostgreSQL, with any number of ``darkroom worker`` processes.

:func:`run_once_per_period` is the periodic guard: huey enqueues a periodic
task in *every* consumer that has periodic tasks on, and every daemon runs
its own reconciler thread; wrapped in this guard, the first one to arrive in
a period runs and the others are no-ops. Periods are aligned windows of
``period_s`` seconds since the epoch (so two schedulers that fire a few
seconds apart for the same crontab agree on "this period"), and a period
counts as done only when a run *finished* in it: if the process running it is
killed, its lease expires after ``lease_s`` and another scheduler may run it.

``db/maintenance/runs.py`` (the maintenance duties) uses the same
:func:`acquire` / :func:`release`.

>>> run_once_per_period(engine, "reconcile", 30.0, lambda: {"requeued": 0})  # doctest: +SKIP
True
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from db.engine import read_sessions, rowcount, write_session
from db.models import Lease, MaintenanceRun

log = logging.getLogger(__name__)


def make_owner() -> str:
    """A lease owner id unique to this process and call: host:pid:random."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def acquire(engine: Engine, name: str, owner: str, lease_s: float, now: float | None = None) -> bool:
    """Take lease ``name`` for ``lease_s`` seconds; False when someone else holds it.

    >>> acquire(engine, "backup", make_owner(), 600)  # doctest: +SKIP
    True
    """
    now = time.time() if now is None else now
    with write_session(engine) as s:
        took = rowcount(s.execute(
            update(Lease)
            .where(Lease.name == name)
            .where(Lease.owner.is_(None) | Lease.expires_at.is_(None)
                   | (Lease.expires_at < now) | (Lease.owner == owner))
            .values(owner=owner, expires_at=now + lease_s)
        ))
    if took:
        return True
    return insert_new(engine, name, owner, now + lease_s)  # False: held, or inserted first by another


def insert_new(engine: Engine, name: str, owner: str, expires_at: float) -> bool:
    """Create lease ``name`` held by ``owner``; False if a row of that name exists already.

    Its own transaction: on PostgreSQL a failed INSERT poisons the transaction
    it runs in.
    """
    try:
        with write_session(engine) as s:
            s.execute(insert(Lease).values(name=name, owner=owner, expires_at=expires_at))
    except IntegrityError:
        return False
    return True


def release(engine: Engine, name: str, owner: str, ran_at: float | None = None) -> bool:
    """Give lease ``name`` back if we hold it; ``ran_at`` becomes its ``last_run_at``."""
    values: dict[str, Any] = {"owner": None, "expires_at": None}
    if ran_at is not None:
        values["last_run_at"] = ran_at
    with write_session(engine) as s:
        return rowcount(s.execute(
            update(Lease).where(Lease.name == name, Lease.owner == owner).values(**values)
        )) == 1


def last_run_at(engine: Engine, name: str) -> float | None:
    with read_sessions(engine)() as s:
        return s.scalar(select(Lease.last_run_at).where(Lease.name == name))


def period_start(now: float, period_s: float) -> float:
    """Start of the aligned window of ``period_s`` seconds that contains ``now``.

    >>> period_start(95.0, 30.0)
    90.0
    """
    return math.floor(now / period_s) * period_s


def run_once_per_period(engine: Engine, name: str, period_s: float,
                        fn: Callable[[], Mapping[str, Any] | None], *,
                        owner: str | None = None, lease_s: float | None = None,
                        record: bool | Callable[[Mapping[str, Any]], bool] = True) -> bool:
    """Run ``fn`` unless a run of ``name`` already finished in this period.

    Returns True when ``fn`` ran here. ``lease_s`` (default ``period_s``)
    bounds how long a run killed mid-way blocks the others. ``record`` says
    whether the run is written to ``maintenance_runs`` (name, start, end,
    outcome ``ok``/``failed``, the figures ``fn`` returned): always, never,
    or when a predicate of the figures is true (a frequent task records only
    the runs that did something; ``leases.last_run_at`` still says when it
    last ran). Exceptions from ``fn`` are always recorded, and re-raised.

    >>> run_once_per_period(engine, "sweep", 3600, lambda: {"deleted": 12})  # doctest: +SKIP
    True
    """
    owner = owner or make_owner()
    if not acquire(engine, name, owner, lease_s if lease_s is not None else period_s):
        log.debug("%s: skipped, another process holds its lease", name)
        return False
    started = time.time()
    ran_at: float | None = None
    try:
        last = last_run_at(engine, name)
        window = period_start(started, period_s)
        if last is not None and last >= window:
            log.debug("%s: skipped, already ran in this period", name)
            return False
        log.debug("%s: running for period %d", name, round(window / period_s))
        try:
            figures = dict(fn() or {})
        except Exception as exc:
            ran_at = started  # a failed run still uses up its period: no hot retry loop
            if record:
                _record(engine, name, started, "failed", {}, f"{type(exc).__name__}: {exc}")
            raise
        ran_at = started
        if record is True or (callable(record) and record(figures)):
            _record(engine, name, started, "ok", figures, None)
        return True
    finally:
        release(engine, name, owner, ran_at)


def _record(engine: Engine, name: str, started: float, outcome: str, figures: Mapping[str, Any],
            error: str | None) -> None:
    with write_session(engine) as s:
        s.add(MaintenanceRun(name=name, started_at=started, finished_at=time.time(), outcome=outcome,
                             figures=json.dumps(dict(figures), default=str, sort_keys=True),
                             error=error, host=socket.gethostname()))
