from __future__ import annotations

import dataclasses

import click

from worker.context import Ctx, pass_ctx


@click.command()
@click.option("--host", default=None, help="Address to bind (default: [serve] host, 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="Port (default: [serve] port, 8470; 0 = any free port).")
@pass_ctx
def serve(ctx: Ctx, host: str | None, port: int | None) -> None:
    """Serve the read-only status page: counts, failures, thumbnails, workers, maintenance.

    Also serves /status.json (as `status --json`) and /health (200 or 503).
    There are no write actions; it binds to 127.0.0.1 unless told otherwise.

    \b
    Example:
      darkroom serve                      # then open http://127.0.0.1:8470/
      darkroom serve --port 9000
    """
    from db.errors import PermanentError
    from worker.status.web.server import make_server

    cfg = ctx.settings.serve
    cfg = dataclasses.replace(cfg, host=cfg.host if host is None else host,
                              port=cfg.port if port is None else port)
    app = ctx.app
    app.migrate()
    try:
        server = make_server(app, cfg)
    except OSError as exc:
        raise PermanentError(f"cannot listen on {cfg.host}:{cfg.port}: {exc.strerror or exc}") from None
    click.echo(f"darkroom status page at {server.url} (read-only; Ctrl-C to stop)", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
