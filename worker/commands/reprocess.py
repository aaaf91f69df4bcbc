from __future__ import annotations

import click

from worker.context import Ctx, pass_ctx


@click.command()
@click.argument("ids", nargs=-1)
@click.option("--missing", is_flag=True,
              help="Images whose variant files or rows are missing, or built with an old recipe.")
@click.option("--all", "everything", is_flag=True, help="Every completed or failed image.")
@click.option("--recipe", default=None, metavar="NAME",
              help="Every completed or failed image of this recipe; with --missing, only its stale ones.")
@click.option("--dry-run", is_flag=True, help="Print how many images and why; change nothing.")
@pass_ctx
def reprocess(ctx: Ctx, ids: tuple[str, ...], missing: bool, everything: bool, recipe: str | None,
              dry_run: bool) -> None:
    """Make variants again: for IDS, --missing ones, --all, or one --recipe.

    The images go back to pending with fresh attempts and are queued; a
    running `darkroom worker` makes their variants with their recipe as the
    config has it now. --missing checks each image against its own recipe
    and counts, per reason: old_recipe (that recipe in the config has
    changed since), missing_rows, missing_files. Variant files a recipe no
    longer makes are removed when the image is done again.

    \b
    Example:
      darkroom reprocess --missing --dry-run
      darkroom reprocess --missing
      darkroom reprocess --recipe avatar --dry-run
      darkroom reprocess --all
    """
    from db import images
    from db.models import Status
    from jobs import reprocess as finder
    from jobs.imaging.recipes import pick
    from worker.app import recipes_from

    if sum((bool(ids), missing, everything, recipe is not None and not missing)) != 1:
        raise click.UsageError("give exactly one of: IDS, --missing, --all, --recipe NAME")
    book = recipes_from(ctx.settings)
    if recipe is not None:
        pick(book, recipe)  # UnknownRecipe: one line naming the known ones, exit 1
    app = ctx.app
    app.migrate()
    done = [Status.COMPLETED.value, Status.FAILED.value]
    if recipe is not None and not missing:
        wanted = finder.ids_of_recipe(app.engine, recipe, done)
        click.echo(f"recipe {recipe}: {len(wanted)} completed or failed image(s)")
    elif missing:
        stale = list(finder.find_stale(app.engine, ctx.settings.paths.media_dir, book, only=recipe))
        wanted = [s.image_id for s in stale]
        for reason, n in finder.counts(stale).items():
            click.echo(f"{reason:<14} {n}")
    else:
        if ids:
            images.require_known(app.engine, ids)  # an unknown id is an error: nothing changes
        wanted = list(ids) if ids else images.ids_with_status(app.engine, done)
    if dry_run:
        click.echo(f"would reprocess {len(wanted)} image(s) (dry run: nothing changed)")
        return
    changed = images.reset_to_pending(app.engine, wanted, done)
    app.tasks.enqueue_images(changed)
    for image_id in sorted(set(wanted) - set(changed)):
        click.echo(f"{image_id}: not completed or failed (pending or processing), left alone", err=True)
    click.echo(f"reprocessing {len(changed)} image(s)")
