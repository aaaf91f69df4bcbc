"""What the ``darkroom`` group hands to every command: lazily loaded settings and app.

Kept apart from :mod:`worker.cli` (which imports every command) so that a
command module can be imported on its own. Command modules import only
click and this module at their top (``darkroom --help`` imports them all);
the settings, the app and the work are imported when a command runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from worker.settings import Settings


class Ctx:
    """What the group hands to its commands: a lazily loaded Settings and App."""

    def __init__(self, config: str | None, overrides: dict[str, Any] | None = None) -> None:
        self.config = config
        self.overrides = overrides or {}
        self._settings: Settings | None = None
        self._app: Any = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from worker.settings import load  # not for `--help`

            self._settings = load(self.config, overrides=self.overrides)
        return self._settings

    @property
    def app(self) -> Any:
        if self._app is None:
            from worker import startup_gc
            from worker.app import build

            self._app = build(self.settings)
            startup_gc.resume()  # the imports are done, the work begins
        return self._app


pass_ctx = click.make_pass_decorator(Ctx)
