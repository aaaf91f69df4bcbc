from __future__ import annotations

import click

from worker.context import Ctx, pass_ctx


@click.command()
@pass_ctx
def migrate(ctx: Ctx) -> None:
    """Create or upgrade the shared database (also done at worker start).

    \b
    Example:
      darkroom migrate
      DARKROOM_DATABASE__URL=postgresql+psycopg://db/app darkroom migrate
    """
    app = ctx.app
    app.migrate()
    from db.migrate import current_revision

    click.echo(f"database at revision {current_revision(app.engine)}: {_safe(ctx.settings.database.url)}")


def _safe(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
