from __future__ import annotations

from typing import TYPE_CHECKING

import click

from worker.context import Ctx, pass_ctx

if TYPE_CHECKING:
    from jobs.embeddings.audit import AuditResult


@click.command()
@click.argument("ids", nargs=-1)
@click.option("--missing", is_flag=True,
              help="Images whose variant files or rows are missing, or built with an old recipe.")
@click.option("--all", "everything", is_flag=True, help="Every completed or failed image.")
@click.option("--recipe", default=None, metavar="NAME",
              help="Every completed or failed image of this recipe; with --missing, only its stale ones.")
@click.option("--vectors", is_flag=True,
              help="Audit the vector store: embed again every image whose row claims a vector the store lacks.")
@click.option("--dry-run", is_flag=True, help="Print how many images and why; change nothing.")
@pass_ctx
def reprocess(ctx: Ctx, ids: tuple[str, ...], missing: bool, everything: bool, recipe: str | None,
              vectors: bool, dry_run: bool) -> None:
    """Make variants again: for IDS, --missing ones, --all, or one --recipe; or vectors (--vectors).

    The images go back to pending with fresh attempts and are queued; a
    running `darkroom worker` makes their variants with their recipe as the
    config has it now. --missing checks each image against its own recipe
    and counts, per reason: old_recipe (that recipe in the config has
    changed since), missing_rows, missing_files. Variant files a recipe no
    longer makes are removed when the image is done again.

    --vectors compares, per model, the rows that claim a vector with the ids
    in LanceDB and embeds the missing ones now, in batches (a store that
    cannot be read is moved aside and refilled); the worker's embedding step
    does the same every embeddings.audit_interval_s.

    \b
    Example:
      darkroom reprocess --missing --dry-run
      darkroom reprocess --missing
      darkroom reprocess --recipe avatar --dry-run
      darkroom reprocess --all
      darkroom reprocess --vectors --dry-run
    """
    from db import images
    from db.models import Status
    from jobs import reprocess as finder
    from jobs.imaging.recipes import pick
    from worker.app import recipes_from

    if sum((bool(ids), missing, everything, recipe is not None and not missing, vectors)) != 1:
        raise click.UsageError("give exactly one of: IDS, --missing, --all, --recipe NAME, --vectors")
    book = recipes_from(ctx.settings)
    if recipe is not None:
        pick(book, recipe)  # UnknownRecipe: one line naming the known ones, exit 1
    app = ctx.app
    app.migrate()
    if vectors:
        _vectors(ctx, dry_run)
        return
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


def _vectors(ctx: Ctx, dry_run: bool) -> None:
    from jobs.embeddings import audit
    from jobs.embeddings.step import StepResult, run_step
    from worker.app import worker_id

    app, cfg = ctx.app, ctx.settings.embeddings
    if dry_run:
        checked = audit.audit(app.engine, app.vector_store if app.has_vector_store() else None, dry_run=True)
        _say(checked)
        click.echo(f"would embed {checked.total_missing} image(s) again (dry run: nothing changed)")
        return
    if not cfg.enabled:
        raise click.ClickException("embeddings are disabled ([embeddings] enabled = false)")
    owner = f"reprocess-{worker_id()}"

    def once(audit_now: bool) -> StepResult:
        return run_step(app.engine, app.vector_store, app.embedder, cfg, ctx.settings.paths.media_dir, owner,
                        search=ctx.settings.search, audit_now=audit_now)

    result = once(True)
    if result.outcome in ("skipped", "backoff"):
        raise click.ClickException("the embedding step is running elsewhere (lease 'embedding' is held); "
                                   "try again in a moment")
    _say(result.audited or audit.AuditResult())
    embedded = result.embedded
    while result.outcome == "done" and result.remaining and result.embedded:
        result = once(False)  # the rest, max_batches_per_run at a time
        embedded += result.embedded
    if result.outcome != "done":
        raise click.ClickException(f"embedding stopped ({result.outcome}) after {embedded} image(s); "
                                   "the worker continues with the rest")
    click.echo(f"embedded {embedded} image(s) again, {result.remaining} waiting")


def _say(checked: AuditResult) -> None:
    if checked.unreadable:
        click.echo(f"store: {checked.unreadable}" + (f" (moved to {checked.moved_to})" if checked.moved_to else ""))
    if not checked.claimed:
        click.echo("no row claims a vector")
    for model, n in checked.claimed.items():
        click.echo(f"{model}: {n} rows claim a vector, {checked.present.get(model, 0)} in the store, "
                   f"{checked.missing.get(model, 0)} missing")
