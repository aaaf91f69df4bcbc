from __future__ import annotations

import click

from worker.context import Ctx, pass_ctx


@click.command()
@click.argument("ids", nargs=-1)
@click.option("--failed", "all_failed", is_flag=True, help="Retry every failed image.")
@pass_ctx
def retry(ctx: Ctx, ids: tuple[str, ...], all_failed: bool) -> None:
    """Put failed images back to pending, with fresh attempts, and queue them.

    Give image IDS, or --failed for all of them. Images that are not failed
    are left alone and listed; an id no image has is an error (nothing changes).

    \b
    Example:
      darkroom retry --failed
      darkroom retry 01a2019e-3f74-7eff-aa9f-25c7ceef96f3
    """
    from db import images
    from db.models import Status

    if bool(ids) == all_failed:
        raise click.UsageError("give image IDS or --failed (not both)")
    app = ctx.app
    app.migrate()
    if ids:
        images.require_known(app.engine, ids)
    wanted = list(ids) if ids else images.ids_with_status(app.engine, [Status.FAILED.value])
    changed = images.reset_to_pending(app.engine, wanted, [Status.FAILED.value])
    app.tasks.enqueue_images(changed)
    for image_id in sorted(set(wanted) - set(changed)):
        click.echo(f"{image_id}: not failed, left alone", err=True)
    click.echo(f"retrying {len(changed)} image(s)")
