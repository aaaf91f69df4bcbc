from __future__ import annotations

import json

import click

from worker.cli import Ctx, pass_ctx


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object (stable keys, see docs/status.md).")
@pass_ctx
def status(ctx: Ctx, as_json: bool) -> None:
    """Show counts per status, queue depth and failures grouped by error.

    \b
    Example:
      darkroom status
      darkroom status --json | jq .images.failed
    """
    from worker.report import gather, render_text

    app = ctx.app
    app.migrate()
    report = gather(app)
    click.echo(json.dumps(report, indent=2) if as_json else render_text(report))
