from __future__ import annotations

import click

from worker.context import Ctx, pass_ctx


@click.command()
@click.option("--drain", is_flag=True, help="Process until the queue is empty, then exit 0.")
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="Worker processes (default: queue.workers in the config).")
@click.option("--metrics-port", type=click.IntRange(1, 65535), default=None,
              help="Serve Prometheus metrics on this port (default: [metrics] port; off).")
@pass_ctx
def worker(ctx: Ctx, drain: bool, workers: int | None, metrics_port: int | None) -> None:
    """Run the worker daemon: huey consumer, scheduler and reconciler.

    Stops gracefully on SIGTERM or SIGINT: finishes the job in hand within
    jobs.grace_s, gives the rest back to pending, exits 0.

    \b
    Example:
      darkroom worker                 # daemon (Procfile, systemd)
      darkroom worker --drain         # one-shot: empty the queue, then exit
      darkroom worker --metrics-port 9464
    """
    from worker import daemon

    if metrics_port is not None:
        if drain:
            raise click.UsageError("--metrics-port is served by the daemon; it cannot be used with --drain")
        ctx.overrides["metrics.port"] = metrics_port  # a CLI flag overrides config and environment

    app = ctx.app
    if drain:
        code = daemon.drain(app, workers or ctx.settings.queue.workers)
    else:
        code = daemon.run_daemon(app, workers)
    raise SystemExit(code)
