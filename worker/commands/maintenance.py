"""``darkroom maintenance ...``: run a maintenance duty now, recorded like a scheduled run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from worker.context import Ctx, pass_ctx


@click.group()
def maintenance() -> None:
    """Run a maintenance duty of the shared database now.

    Each run takes the duty's lease (a run already going on elsewhere makes
    this one a no-op), is recorded, and exits non-zero with a message when the
    database is missing or unreadable or the duty finds a problem.

    \b
    Example:
      darkroom maintenance sweep
      darkroom maintenance backup --to /srv/backups/app-before-upgrade.db
      darkroom maintenance runs
    """


def _run(ctx: Ctx, name: str, as_json: bool, **kwargs: Any) -> None:
    from db.maintenance.files import require_database
    from jobs.maintenance import duties

    app = ctx.app
    require_database(app.engine)
    result = duties.run(name, app.engine, app.duty_env, by_hand=True, **kwargs)
    if as_json:
        click.echo(json.dumps({"name": name, "outcome": result.outcome, "figures": result.figures},
                              indent=2, default=str))
        return
    took = f" in {result.finished_at - result.started_at:.2f} s" if result.finished_at and result.started_at else ""
    click.echo(f"{name}: {result.outcome}{took}")
    for line in _lines(result.figures):
        click.echo("  " + line)


def _lines(figures: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key, value in figures.items():
        if isinstance(value, dict):
            out += _lines(value, f"{prefix}{key}.")
        else:
            out.append(f"{prefix}{key}: {value}")
    return out


json_option = click.option("--json", "as_json", is_flag=True, help="Print the run's figures as JSON.")


@maintenance.command()
@click.option("--orphans", is_flag=True, help="Also walk the media dir for orphans now.")
@json_option
@pass_ctx
def sweep(ctx: Ctx, orphans: bool, as_json: bool) -> None:
    """Delete rows past their TTL (rules in [[maintenance.ttl]]) and their files.

    The orphan walk (files without rows, old temp files; rows without files
    are reported) runs every maintenance.orphans_every_s, or now with --orphans.

    \b
    Example:
      darkroom maintenance sweep
      darkroom maintenance sweep --orphans --json
    """
    _run(ctx, "sweep", as_json, full=orphans)


@maintenance.command()
@click.option("--analyze", is_flag=True, help="Run ANALYZE (VACUUM (ANALYZE) on PostgreSQL) now.")
@json_option
@pass_ctx
def optimize(ctx: Ctx, analyze: bool, as_json: bool) -> None:
    """PRAGMA optimize, ANALYZE when due, and incremental vacuum of free pages.

    \b
    Example:
      darkroom maintenance optimize --analyze
    """
    _run(ctx, "optimize", as_json, full=analyze)


@maintenance.command()
@click.option("--truncate", is_flag=True, help="TRUNCATE the WAL files whatever their size.")
@json_option
@pass_ctx
def checkpoint(ctx: Ctx, truncate: bool, as_json: bool) -> None:
    """Checkpoint the WAL of the shared and queue databases now, whatever their size.

    PASSIVE first, then TRUNCATE when no reader holds old frames (the
    maintenance.wal_threshold_mib threshold only applies to the schedule).

    \b
    Example:
      darkroom maintenance checkpoint
      darkroom maintenance checkpoint --truncate
    """
    _run(ctx, "checkpoint", as_json, full=truncate)


@maintenance.command()
@click.option("--to", "to", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="One-off backup to this file (no retention) instead of maintenance.backup_dir.")
@json_option
@pass_ctx
def backup(ctx: Ctx, to: Path | None, as_json: bool) -> None:
    """Online backup of the shared SQLite database, integrity-checked, with retention.

    \b
    Example:
      darkroom maintenance backup
      darkroom maintenance backup --to /srv/backups/app-before-upgrade.db
    """
    _run(ctx, "backup", as_json, to=to.resolve() if to else None)


@maintenance.command()
@click.option("--full", is_flag=True, help="integrity_check instead of quick_check.")
@json_option
@pass_ctx
def check(ctx: Ctx, full: bool, as_json: bool) -> None:
    """quick_check (or integrity_check with --full) and foreign_key_check.

    \b
    Example:
      darkroom maintenance check --full
    """
    _run(ctx, "check", as_json, full=full)


@maintenance.command()
@json_option
@pass_ctx
def runs(ctx: Ctx, as_json: bool) -> None:
    """Show the last run of each duty: when, how long, outcome and figures.

    \b
    Example:
      darkroom maintenance runs --json
    """
    import time

    from db.maintenance.files import require_database
    from db.maintenance.runs import last_runs

    engine = ctx.app.engine
    require_database(engine)
    rows = last_runs(engine)
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        click.echo("no maintenance runs recorded yet")
    now = time.time()
    for r in rows:
        took = f"{r['finished_at'] - r['started_at']:.2f} s" if r["finished_at"] else "running"
        click.echo(f"{r['name']:<11} {r['outcome']:<8} {now - r['started_at']:>8.0f} s ago  {took}"
                   + (f"  {r['error']}" if r["error"] else ""))
