"""The ``darkroom`` command line.

Every command takes ``--config PATH`` (default ``./config.toml`` or
``DARKROOM_CONFIG``). Errors are translated once, here, into one line on
stderr: any :class:`~db.errors.DarkroomError` (the tree is drawn in
``db/errors.py``) exits 1, and so does a bad command line (click's usage
errors: a missing argument, an unknown option, a bad value); a bad config
exits 2 with the key, the value and what was expected (the program did not
start). A database or redis error that means
"down" or "busy" is named as such first. Commands raise; they never print their own errors.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, NoReturn

import click

from worker import logs
from worker.context import Ctx


class DarkroomGroup(click.Group):
    """The ``darkroom`` group: commands loaded from :data:`COMMANDS` on first use, errors translated once."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in COMMANDS:
            module_name, attr = COMMANDS[cmd_name].split(":")
            command = getattr(importlib.import_module(module_name), attr)
            self.add_command(command, cmd_name)  # loaded once
        return command

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as exc:  # `darkroom --no-such-option`
            _usage_error(exc)

    def invoke(self, ctx: click.Context) -> Any:
        # Imported here, not at the top: `darkroom --help` never gets this far
        # and must not pay for SQLAlchemy (db.errors) or the settings.
        from worker import startup_gc

        startup_gc.pause()  # the command's imports; back on once its work starts (worker/startup_gc.py)
        try:
            return self._invoke(ctx)
        finally:
            startup_gc.resume()

    def _invoke(self, ctx: click.Context) -> Any:
        from db.errors import DarkroomError
        from jobs.imaging.recipes import UnknownRecipe
        from worker.settings import ConfigError

        try:
            return super().invoke(ctx)
        except click.UsageError as exc:  # a subcommand's missing argument, bad option or bad value
            _usage_error(exc)
        except ConfigError as exc:
            click.echo(f"darkroom: configuration error: {exc}", err=True)
            sys.exit(2)
        except (DarkroomError, UnknownRecipe) as exc:  # unknown ids or recipe, a bad TTL rule, a backend down...
            click.echo(f"darkroom: {_one_line(exc)}", err=True)
            sys.exit(1)
        except Exception as exc:
            down = unreachable_backend(exc, ctx.obj)
            if down is None:
                raise
            click.echo(f"darkroom: {_one_line(down)}", err=True)  # one line: backend, address, error
            sys.exit(1)


def _usage_error(exc: click.UsageError) -> NoReturn:
    """A bad command line: one line on stderr naming the help to read, exit 1 like every user error."""
    command = exc.ctx.command_path if exc.ctx is not None else "darkroom"
    click.echo(f"darkroom: {_one_line_text(exc.format_message())} (see: {command} --help)", err=True)
    sys.exit(1)


def _one_line_text(text: str) -> str:
    return " ".join(text.split())


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def unreachable_backend(exc: BaseException, obj: Any) -> Exception | None:
    """``exc`` as "PostgreSQL at db:5432 unreachable: connection refused" (or "... is busy: ..."), if it is one.

    Raised anywhere below a command (SQLAlchemy, redis-py, huey's SQLite
    storage), translated here once, not in every command.
    """
    from db.errors import BackendUnreachable, database_error
    from jobs.queue import unreachable_queue

    if isinstance(exc, BackendUnreachable):
        return exc
    try:
        settings = obj.settings
    except Exception:  # no settings, no address to name
        return None
    # A database error the engine did not name (a missing database, bad credentials): not answering us.
    named = database_error(exc, settings.database.url, refused_is_down=True)
    if named is not None:
        return named
    if "redis" not in sys.modules:  # never imported, so not a redis error (and importing it costs 0.1 s)
        return None
    import redis.exceptions

    if isinstance(exc, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
        return unreachable_queue(exc, settings.queue.url)
    return None


# Long-running commands log at INFO (a daemon's log is its record); one-shot
# commands print their result and log only warnings unless asked (-v).
DAEMONS = frozenset({"worker", "serve"})


@click.group(cls=DarkroomGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config", type=click.Path(dir_okay=False), default=None,
              help="Config file (default: ./config.toml, or $DARKROOM_CONFIG).")
@click.option("-v", "--verbose", count=True,
              help="Log more: -v INFO, -vv DEBUG (one-shot commands log WARNING and up by default).")
@click.option("--log-level", default=None,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
              help="Log level (default: INFO for `worker` and `serve`, WARNING for the others).")
@click.option("--log-format", default="text", show_default=True, type=click.Choice(["text", "json"]))
@click.version_option(package_name="darkroom")
@click.pass_context
def main(ctx: click.Context, config: str | None, verbose: int, log_level: str | None, log_format: str) -> None:
    """Darkroom: turn image uploads into WebP/AVIF variants in the background.

    Logs go to stderr: INFO for the daemon (`worker`, `serve`), WARNING for
    one-shot commands, whose results are on stdout (-v for INFO).

    \b
    Example:
      darkroom demo                      # try it on generated sample images
      darkroom --config /srv/darkroom/config.toml worker
      darkroom -v maintenance checkpoint
    """
    logs.configure(log_level or logs.default_level(verbose, daemon=ctx.invoked_subcommand in DAEMONS), log_format)
    ctx.obj = Ctx(config)


# Each command's module is imported when that command runs (or when --help lists them all):
# `darkroom worker` does not import the other twelve.
COMMANDS = {
    "migrate": "worker.commands.migrate:migrate",
    "enqueue": "worker.commands.enqueue:enqueue",
    "worker": "worker.commands.run:worker",
    "status": "worker.commands.status:status",
    "demo": "worker.commands.demo:demo",
    "maintenance": "worker.commands.maintenance:maintenance",
    "similar": "worker.commands.similar:similar",
    "retry": "worker.commands.retry:retry",
    "reprocess": "worker.commands.reprocess:reprocess",
    "health": "worker.commands.health:health",
    "serve": "worker.commands.serve:serve",
    "search": "worker.commands.search:search",
    "variants": "worker.commands.variants:variants",
}
