from __future__ import annotations

import json
import sys
import time

import click

from worker.context import Ctx, pass_ctx

CLEAR = "\x1b[H\x1b[2J"  # cursor home + clear screen: redraw in place


@click.command()
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object (stable keys, see docs/status.md); with --watch, one per line.")
@click.option("--watch", is_flag=True, help="Refresh in place until Ctrl-C.")
@click.option("--interval", type=click.FloatRange(0.2, 3600), default=2.0, show_default=True,
              help="Seconds between refreshes with --watch.")
@pass_ctx
def status(ctx: Ctx, as_json: bool, watch: bool, interval: float) -> None:
    """Show counts, queue depth, throughput, failures, live workers, maintenance and sizes.

    \b
    Example:
      darkroom status
      darkroom status --watch
      darkroom status --json | jq .images.failed
    """
    from worker.status.report import gather, render_text

    app = ctx.app
    app.migrate()

    def show() -> dict:
        report = gather(app)
        if as_json:
            click.echo(json.dumps(report, indent=None if watch else 2))
        else:
            text = render_text(report)
            if watch and sys.stdout.isatty():
                stamp = time.strftime("%H:%M:%S")
                click.echo(f"{CLEAR}darkroom status  {stamp}  (every {interval:g}s, Ctrl-C to stop)\n\n{text}")
            else:
                click.echo(text + ("\n" if watch else ""))
        return report

    report = show()
    if not watch:
        error = report.get("queue", {}).get("error")
        if error:  # the report is printed; the exit status and one line say what is down
            click.echo(f"darkroom: {error}", err=True)
            raise SystemExit(1)
        return
    try:
        while True:
            time.sleep(interval)
            show()
    except KeyboardInterrupt:
        pass
