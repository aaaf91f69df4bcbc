"""Run records and duty leases: at most one run of a duty at a time.

Every maintenance duty runs through :func:`run_duty`. It takes the duty's row
in ``leases`` by compare-and-set (:func:`db.leases.acquire`), so with several workers - even
on several hosts sharing PostgreSQL - only one runs it; the others return a
``skipped`` result and record nothing. The run is written to
``maintenance_runs`` (name, start, end, outcome, figures, error, host) and
the lease is released with ``last_run_at`` set, which is what :func:`due`
reads to run a duty missed during downtime exactly once at start.

Outcomes: ``ok``; ``warning`` (the duty returned ``{"warnings": [...]}``);
``failed`` (it raised; the error is stored and re-raised); ``skipped`` (not
recorded: another worker held the lease, or the duty already ran within
``min_interval_s``).
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, Select, func, select, update

from db.engine import READONLY, write_session

# The lease primitives are shared with the reconciler and every periodic guard.
from db.leases import acquire as acquire
from db.leases import last_run_at as last_run_at
from db.leases import make_owner as make_owner
from db.leases import release as release
from db.maintenance.errors import DutyFailed
from db.models import Lease, MaintenanceRun

log = logging.getLogger(__name__)

Figures = dict[str, Any]
DEFAULT_LEASE_S = 3_600.0


@dataclass(frozen=True)
class RunResult:
    name: str
    outcome: str  # ok | warning | failed | skipped
    figures: Figures = field(default_factory=dict)
    run_id: int | None = None
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None


def _reads(engine: Engine) -> Engine:
    # Deferred transactions on SQLite: reading run records never takes the write lock.
    return engine.execution_options(**{READONLY: True})


def due(engine: Engine, name: str, period_s: float, now: float | None = None) -> bool:
    """True when duty ``name`` has never run or last ran ``period_s`` or more ago.

    A worker calls this at start for each duty and runs the due ones once:
    a week of downtime gives one backup, not one per missed night.

    >>> due(engine, "backup", 86_400)  # doctest: +SKIP
    True
    """
    now = time.time() if now is None else now
    last = last_run_at(engine, name)
    return last is None or now - last >= period_s


def run_duty(engine: Engine, name: str, fn: Callable[[], Mapping[str, Any] | None],
             lease_s: float = DEFAULT_LEASE_S, *, min_interval_s: float = 0.0,
             owner: str | None = None) -> RunResult:
    """Run ``fn`` as duty ``name`` under its lease and record the run.

    ``fn`` returns the figures to record (JSON-serialisable). ``min_interval_s``
    lets several schedulers that all fired the same crontab agree that one
    run per period is enough. Errors are recorded and re-raised, not logged:
    whoever catches them reports them once (the CLI's one line, the periodic
    task's log line).

    >>> run_duty(engine, "optimize", lambda: {"analyzed": True}, lease_s=600).outcome  # doctest: +SKIP
    'ok'
    """
    owner = owner or make_owner()
    if not acquire(engine, name, owner, lease_s):
        log.info("maintenance %s skipped: another worker holds its lease", name)
        return RunResult(name, "skipped", {"reason": "lease held by another worker"})
    started = time.time()
    ran_at: float | None = None
    try:
        last = last_run_at(engine, name)
        if min_interval_s > 0 and last is not None and started - last < min_interval_s:
            log.info("maintenance %s skipped: already ran %.0f s ago", name, started - last)
            return RunResult(name, "skipped", {"reason": "already ran this period"})
        ran_at = started
        run_id = _record_start(engine, name, started)
        figures: Figures = {}
        try:
            figures = dict(fn() or {})
        except Exception as exc:
            if isinstance(exc, DutyFailed):
                figures = exc.figures
            finished = time.time()
            _record_end(engine, run_id, finished, "failed", figures, f"{type(exc).__name__}: {exc}")
            raise
        outcome = "warning" if figures.get("warnings") else "ok"
        finished = time.time()
        _record_end(engine, run_id, finished, outcome, figures, None)
        log.info("maintenance %s %s in %.2f s: %s", name, outcome, finished - started, figures)
        return RunResult(name, outcome, figures, run_id, started, finished)
    finally:
        release(engine, name, owner, ran_at)


def _record_start(engine: Engine, name: str, started: float) -> int:
    with write_session(engine) as s:
        run = MaintenanceRun(name=name, started_at=started, outcome="running", host=socket.gethostname())
        s.add(run)
        s.flush()
        return run.id


def _record_end(engine: Engine, run_id: int, finished: float, outcome: str, figures: Figures,
                error: str | None) -> None:
    with write_session(engine) as s:
        s.execute(update(MaintenanceRun).where(MaintenanceRun.id == run_id).values(
            finished_at=finished, outcome=outcome, error=error,
            figures=json.dumps(figures, default=str, sort_keys=True)))


def latest_run_ids() -> Select[Any]:
    """The id of the latest recorded run of each duty: the highest id, the order in which
    the shared database recorded the starts, whatever the clocks of the hosts that ran them
    say. Every reader of "the last run" (``maintenance runs``, ``status``, ``/metrics``) uses this.
    """
    return select(func.max(MaintenanceRun.id)).group_by(MaintenanceRun.name)


def last_runs(engine: Engine) -> list[dict[str, Any]]:
    """The latest recorded run of each duty, for ``darkroom status``.

    >>> [r["name"] for r in last_runs(engine)]  # doctest: +SKIP
    ['backup', 'checkpoint', 'optimize']
    """
    runs = MaintenanceRun.__table__
    query = (select(runs, Lease.owner, Lease.expires_at)
             .where(runs.c.id.in_(latest_run_ids()))
             .outerjoin(Lease, Lease.name == runs.c.name)
             .order_by(runs.c.name))
    now = time.time()
    out: list[dict[str, Any]] = []
    with _reads(engine).connect() as conn:
        for row in conn.execute(query).mappings():
            held = row["owner"] is not None and (row["expires_at"] or 0) > now
            out.append({
                "name": row["name"],
                "started_at": row["started_at"],
                "finished_at": row["finished_at"],
                "outcome": row["outcome"],
                "figures": json.loads(row["figures"]) if row["figures"] else {},
                "error": row["error"],
                "host": row["host"],
                "running_now": held,
            })
    return out
