"""The ``darkroom`` command line.

Every command takes ``--config PATH`` (default ``./config.toml`` or
``DARKROOM_CONFIG``). Errors are translated once, here: a bad config exits 2
with the key, the value and what was expected.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from db.maintenance.errors import MaintenanceError
from worker import logs
from worker.context import Ctx
from worker.settings import ConfigError


class DarkroomGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            click.echo(f"darkroom: configuration error: {exc}", err=True)
            sys.exit(2)
        except MaintenanceError as exc:  # bad TTL rule, missing/unreadable database, failed check
            click.echo(f"darkroom: {exc}", err=True)
            sys.exit(1)
        except Exception as exc:
            down = unreachable_backend(exc, ctx.obj)
            if down is None:
                raise
            click.echo(f"darkroom: {down}", err=True)  # one line: backend, address, error
            sys.exit(1)


def unreachable_backend(exc: BaseException, obj: Any) -> Exception | None:
    """``exc`` as "PostgreSQL at db:5432 unreachable: connection refused", if it is a backend outage.

    Raised anywhere below a command (SQLAlchemy, redis-py, huey's SQLite
    storage), translated here once, not in every command.
    """
    from sqlalchemy.exc import InterfaceError, OperationalError

    from db.errors import BackendUnreachable, DatabaseUnreachable, describe_url, reason_of, unreachable_from
    from jobs.queue import unreachable_queue

    if isinstance(exc, BackendUnreachable):
        return exc
    try:
        settings = obj.settings
    except Exception:  # no settings, no address to name
        return None
    if isinstance(exc, (OperationalError, InterfaceError)):
        url = settings.database.url
        down = unreachable_from(exc, url)
        if down is None and "database is locked" not in str(exc):
            backend, address = describe_url(url)
            down = DatabaseUnreachable(backend, address, reason_of(exc))
        return down
    import redis.exceptions

    if isinstance(exc, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
        return unreachable_queue(exc, settings.queue.url)
    return None


@click.group(cls=DarkroomGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config", type=click.Path(dir_okay=False), default=None,
              help="Config file (default: ./config.toml, or $DARKROOM_CONFIG).")
@click.option("--log-level", default="INFO", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
@click.option("--log-format", default="text", show_default=True, type=click.Choice(["text", "json"]))
@click.version_option(package_name="darkroom")
@click.pass_context
def main(ctx: click.Context, config: str | None, log_level: str, log_format: str) -> None:
    """Darkroom: turn image uploads into WebP/AVIF variants in the background.

    \b
    Example:
      darkroom demo                      # try it on generated sample images
      darkroom --config /srv/darkroom/config.toml worker
    """
    logs.configure(log_level, log_format)
    ctx.obj = Ctx(config)


def register(*commands: Callable[..., Any]) -> None:
    for command in commands:
        main.add_command(command)  # type: ignore[arg-type]


def _register_all() -> None:
    from worker.commands import (demo, enqueue, health, maintenance, migrate, reprocess, retry,
                                 run, search, serve, similar, status)

    register(migrate.migrate, enqueue.enqueue, run.worker, status.status, demo.demo)
    register(maintenance.maintenance, similar.similar, retry.retry, reprocess.reprocess)
    register(health.health, serve.serve, search.search)


_register_all()
