from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from worker.context import Ctx, pass_ctx


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--url", "urls", multiple=True, metavar="URL",
              help="An http(s) URL for the worker to fetch (repeatable), under the [fetch] limits.")
@click.option("--metadata", "metadata_json", default=None, help="JSON object stored on each row.")
@click.option("--recipe", default=None, metavar="NAME",
              help="The recipe for these images: a [recipes.NAME] of the config (default: [variants]).")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@pass_ctx
def enqueue(ctx: Ctx, paths: tuple[Path, ...], urls: tuple[str, ...], metadata_json: str | None,
            recipe: str | None, as_json: bool) -> None:
    """Copy images into the media store, record them as pending, and queue them.

    PATHS are files or directories (every image file below a directory).
    Files whose content is already in Darkroom are skipped and reported, so
    an interrupted import can simply be run again (the same content with
    another --recipe is another image). URLs are recorded at once and
    fetched by the worker.

    \b
    Example:
      darkroom enqueue photos/*.jpg
      darkroom enqueue uploads/ --metadata '{"album": "summer"}'
      darkroom enqueue --url https://example.com/cat.jpg --url https://example.com/dog.png
      darkroom enqueue --recipe avatar uploads/avatars/
    """
    if not paths and not urls:
        raise click.UsageError("give at least one file, directory or --url")
    from jobs.bulk import import_files
    from jobs.intake import iter_image_files
    from worker.app import lane_rule

    metadata = _parse_metadata(metadata_json)
    if recipe is not None:
        from jobs.imaging.recipes import pick
        from worker.app import recipes_from

        pick(recipes_from(ctx.settings), recipe)  # UnknownRecipe: one line naming the known ones, exit 1
    for url in urls:
        if not url.lower().startswith(("http://", "https://")):
            raise click.BadParameter(f"{url!r}: expected an http:// or https:// URL", param_hint="--url")
    files: list[Path] = []
    for p in paths:
        files.extend(iter_image_files(p) if p.is_dir() else [p])
    app = ctx.app
    app.migrate()
    with click.progressbar(length=len(files), label="enqueueing", file=sys.stderr, show_pos=True,
                           show_eta=True, hidden=len(files) < 10) as bar:
        report = import_files(app.engine, app.tasks, ctx.settings.paths.media_dir, files, metadata,
                              lane_by=lane_rule(ctx.settings), on_file=lambda _p: bar.update(1), recipe=recipe)
    url_ids: list[tuple[str, str]] = []
    if urls:
        from worker.api import Darkroom

        api = Darkroom(app)
        url_ids = [(url, api.submit(url, metadata=metadata, recipe=recipe)) for url in urls]
    _print(report, url_ids, as_json)
    if report.failed:
        raise SystemExit(1)


def _parse_metadata(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint="--metadata") from None
    if not isinstance(value, dict):
        raise click.BadParameter("expected a JSON object, e.g. '{\"album\": \"summer\"}'", param_hint="--metadata")
    return value


def _print(report: Any, url_ids: list[tuple[str, str]], as_json: bool) -> None:
    ids = [i for _, i in report.created] + [i for _, i in url_ids]
    if as_json:
        click.echo(json.dumps({
            "enqueued": ids,
            "created": [{"path": str(f), "id": i} for f, i in report.created]
            + [{"url": url, "id": i} for url, i in url_ids],
            "duplicates": [{"path": str(d.path), "duplicate_of": d.duplicate_of} for d in report.duplicates],
            "failed": [{"path": str(p), "error": e} for p, e in report.failed],
            "waiting_for_queue": list(report.unqueued),
        }))
        return
    for f, i in report.created:
        click.echo(f"{i}  {f}")
    for url, i in url_ids:
        click.echo(f"{i}  {url}")
    for d in report.duplicates:
        click.echo(f"duplicate  {d.path}  (same content as {d.duplicate_of})")
    for p, e in report.failed:
        click.echo(f"failed  {p}: {e}", err=True)
    click.echo(f"enqueued {len(ids)} image(s), skipped {len(report.duplicates)} duplicate(s)"
               + (f", {len(report.failed)} failed" if report.failed else "")
               + (f"; {len(report.unqueued)} recorded and waiting for the queue (a worker's reconciler "
                  "queues them when it is back)" if report.unqueued else ""), err=True)
