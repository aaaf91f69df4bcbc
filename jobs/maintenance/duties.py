"""The maintenance duties as huey periodic tasks (their settings: :mod:`jobs.maintenance.settings`).

Each duty (sweep, optimize, checkpoint, backup, check) is a plain function
:func:`run` dispatches to, always through :func:`db.maintenance.runs.run_duty`
(one run at a time across workers, every run recorded). :func:`register`
adds one periodic task per duty, each with its crontab from the
``[maintenance]`` section; :func:`catch_up` runs at worker start and enqueues
each duty whose last run is older than its longest crontab gap, so a duty
missed during downtime runs once, not once per missed period.

Several consumers with periodic tasks on all fire the same crontab; the
lease stops overlapping runs and ``min_interval_s`` (half the crontab's
shortest gap) stops a second run of the same period.
"""

from __future__ import annotations

import functools
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from db.errors import unreachable_from
from db.maintenance import runs
from jobs.maintenance.settings import DAY_S, DUTIES, MaintenanceSettings, parse_cron
from jobs.outage import quiet_when_database_down

if TYPE_CHECKING:
    from huey import Huey

    from jobs.maintenance.files import DeleteEmbeddings

# The duties' own modules (db.maintenance.backup, check, checkpoint, optimize, ttl and
# jobs.maintenance.files) are imported by the duty that runs: registering the schedule,
# `status` and the worker's start do not need them.

log = logging.getLogger(__name__)

@functools.lru_cache(maxsize=64)
def cron_gaps(text: str, start: datetime | None = None, days: int = 8) -> tuple[float, float]:
    """Shortest and longest gap in seconds between firings over ``days`` days."""
    test = parse_cron(text)
    t = (start or datetime(2024, 1, 1)).replace(second=0, microsecond=0)
    fired = [i for i in range(days * 1_440) if test(t + timedelta(minutes=i))]
    if len(fired) < 2:
        if days < 62:  # monthly or rarer: look at two months
            return cron_gaps(text, start, 62)
        return float(days * DAY_S), float(days * DAY_S)
    gaps = [(b - a) * 60.0 for a, b in itertools.pairwise(fired)]
    return min(gaps), max(gaps)


@dataclass(frozen=True)
class DutyEnv:
    """What the duties need besides the engine (all from the settings)."""

    settings: MaintenanceSettings
    media_dir: Path
    queue_db: Path | None = None
    delete_embeddings: DeleteEmbeddings | None = None
    # Compacts the vector tables and prunes old versions; returns its figures.
    optimize_vectors: Callable[[], dict[str, Any]] | None = None
    # False on PostgreSQL: there is no file to copy online (pg_dump or the
    # provider's snapshots do it), so the nightly backup is not scheduled
    # instead of failing every night; `darkroom maintenance backup` says why.
    sqlite_database: bool = True


def validate(engine: Engine, cfg: MaintenanceSettings) -> None:
    """At worker start: a bad TTL rule raises ``TtlRuleError`` naming it."""
    from db.maintenance.ttl import check_rules

    check_rules(engine, cfg.ttl)


def duty_body(name: str, engine: Engine, env: DutyEnv, *, full: bool = False,
              to: Path | None = None, by_hand: bool = False) -> Callable[[], dict[str, Any]]:
    """The plain function of duty ``name``; ``full`` forces ANALYZE / integrity_check / orphans / TRUNCATE.

    ``by_hand``: a person asked for this run, so thresholds meant for the
    schedule do not turn it into a no-op (a checkpoint checkpoints).
    """
    cfg = env.settings

    def do_sweep() -> dict[str, Any]:
        from db.maintenance.ttl import sweep
        from jobs.maintenance.files import image_file_remover, sweep_orphans

        figures: dict[str, Any] = {"ttl": sweep(
            engine, cfg.ttl, batch_size=cfg.batch_size, pause_s=cfg.batch_pause_s,
            on_delete=image_file_remover(env.media_dir, env.delete_embeddings))}
        if full or runs.due(engine, "sweep.orphans", cfg.orphans_every_s):
            figures["orphans"] = sweep_orphans(engine, env.media_dir, grace_s=cfg.orphan_grace_s,
                                               tmp_max_age_s=cfg.tmp_max_age_s)
            _mark(engine, "sweep.orphans")
        warnings = figures["ttl"].pop("warnings", []) + figures.get("orphans", {}).pop("warnings", [])
        if warnings:
            figures["warnings"] = warnings
        return figures

    def do_optimize() -> dict[str, Any]:
        from db.maintenance.optimize import optimize

        analyze = full or runs.due(engine, "optimize.analyze", cfg.analyze_every_s)
        figures = optimize(engine, analyze=analyze, free_pages_threshold=cfg.free_pages_threshold,
                           chunk_pages=cfg.vacuum_chunk_pages)
        if analyze:
            _mark(engine, "optimize.analyze")
        if env.optimize_vectors is not None:
            figures["vectors"] = env.optimize_vectors()
        return figures

    def do_checkpoint() -> dict[str, Any]:
        from db.maintenance.checkpoint import checkpoint

        return checkpoint(engine, env.queue_db, threshold_bytes=int(cfg.wal_threshold_mib * 2**20),
                          truncate_factor=cfg.wal_truncate_factor, busy_ms=cfg.checkpoint_busy_ms,
                          force="TRUNCATE" if full else "NOW" if by_hand else None)

    def do_backup() -> dict[str, Any]:
        from db.maintenance.backup import backup, backup_to

        if to is not None:
            return backup_to(engine, to)
        return backup(engine, cfg.backup_dir, keep=cfg.backup_keep)

    def do_check() -> dict[str, Any]:
        from db.maintenance.check import check

        return check(engine, full=full)

    bodies = {"sweep": do_sweep, "optimize": do_optimize, "checkpoint": do_checkpoint,
              "backup": do_backup, "check": do_check}
    return bodies[name]


def _mark(engine: Engine, name: str) -> None:
    """Stamp a sub-duty's ``last_run_at`` (ANALYZE, orphan walk) without a run record."""
    owner = runs.make_owner()
    if runs.acquire(engine, name, owner, lease_s=60):
        runs.release(engine, name, owner, ran_at=time.time())


def run(name: str, engine: Engine, env: DutyEnv, *, full: bool = False, to: Path | None = None,
        min_interval_s: float = 0.0, by_hand: bool = False) -> runs.RunResult:
    """Run duty ``name`` now, under its lease, recorded (``by_hand``: see :func:`duty_body`).

    >>> run("backup", engine, env).figures["path"]  # doctest: +SKIP
    'data/backups/app-20250101T033000123456Z.db'
    """
    if name not in DUTIES:
        raise ValueError(f"unknown maintenance duty {name!r}: expected one of {', '.join(DUTIES)}")
    return runs.run_duty(engine, name, duty_body(name, engine, env, full=full, to=to, by_hand=by_hand),
                         lease_s=env.settings.lease_s, min_interval_s=min_interval_s)


def register(huey: Huey, env: DutyEnv, engine_of: Callable[[], Engine]) -> dict[str, Any]:
    """Add one periodic task per duty to ``huey``; returns them by duty name.

    ``engine_of`` gives the calling process's engine (``context.current().engine``).
    """
    tasks: dict[str, Any] = {}
    if not env.settings.enabled:
        return tasks
    for name in DUTIES:
        if name == "backup" and not env.sqlite_database:
            continue
        tasks[name] = _periodic(huey, name, getattr(env.settings, f"{name}_cron"), env, engine_of)
    return tasks


def _periodic(huey: Huey, name: str, cron: str, env: DutyEnv, engine_of: Callable[[], Engine]) -> Any:
    @huey.periodic_task(parse_cron(cron), name=f"maintenance.{name}")
    @quiet_when_database_down(engine_of)
    def duty() -> None:
        # Half the shortest gap: a second consumer firing the same minute skips,
        # the next scheduled run does not.
        try:
            run(name, engine_of(), env, min_interval_s=cron_gaps(cron)[0] / 2)
        except Exception as exc:  # recorded by run_duty; one line here, not huey's traceback too
            if unreachable_from(exc, str(engine_of().url)) is not None:
                raise  # an outage: said once by the outage log (quiet_when_database_down)
            log.error("maintenance %s failed: %s", name, exc)

    return duty


def catch_up(engine: Engine, env: DutyEnv, tasks: dict[str, Any]) -> list[str]:
    """At worker start: enqueue, once, each duty whose scheduled run was missed."""
    missed = []
    for name, task in tasks.items():
        _, longest = cron_gaps(getattr(env.settings, f"{name}_cron"))
        if runs.due(engine, name, longest):
            task()  # enqueue now; the lease and min_interval keep it to one run
            missed.append(name)
    if missed:
        log.info("maintenance duties missed while down, running once now: %s", ", ".join(missed))
    return missed
