from __future__ import annotations

import json

import click

from worker.context import Ctx, pass_ctx


@click.command()
@click.option("--local", is_flag=True, help="Require a live worker on this host (per-machine probes).")
@click.option("--json", "as_json", is_flag=True, help='{"ok": bool, "problems": [...], "facts": [...]}')
@click.option("--quiet", "-q", is_flag=True, help="Print nothing; the exit status says it all.")
@pass_ctx
def health(ctx: Ctx, local: bool, as_json: bool, quiet: bool) -> None:
    """Exit 0 if the database and queue answer, a worker heartbeat is fresh and no duty is overdue.

    Otherwise exit 1 and print each reason. Usable as a systemd, container or
    load-balancer probe. It never creates the database or the queue.

    \b
    Example:
      darkroom health && echo healthy
      darkroom health --local --quiet     # container HEALTHCHECK
    """
    from worker.status.health import check

    result = check(ctx.settings, local=local)
    if as_json:
        click.echo(json.dumps({"ok": result.ok, "problems": list(result.problems),
                               "facts": list(result.facts)}))
    elif not quiet:
        if result.ok:
            click.echo("ok: " + "; ".join(result.facts))
        for problem in result.problems:
            click.echo(f"unhealthy: {problem}", err=True)
    raise SystemExit(0 if result.ok else 1)
