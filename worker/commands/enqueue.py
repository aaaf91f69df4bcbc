from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from jobs.intake import iter_image_files, submit_file
from worker.app import lane_rule
from worker.cli import Ctx, pass_ctx


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--metadata", "metadata_json", default=None, help="JSON object stored on each row.")
@click.option("--json", "as_json", is_flag=True, help="Print the new ids as JSON.")
@pass_ctx
def enqueue(ctx: Ctx, paths: tuple[Path, ...], metadata_json: str | None, as_json: bool) -> None:
    """Copy images into the media store, record them as pending, and queue them.

    PATHS are files or directories (every image file below a directory).

    \b
    Example:
      darkroom enqueue photos/*.jpg
      darkroom enqueue uploads/ --metadata '{"album": "summer"}'
    """
    if not paths:
        raise click.UsageError("give at least one file or directory")
    metadata = None
    if metadata_json:
        try:
            metadata = json.loads(metadata_json)
        except json.JSONDecodeError as exc:
            raise click.BadParameter(f"not valid JSON: {exc}", param_hint="--metadata") from None
    files: list[Path] = []
    for p in paths:
        files.extend(iter_image_files(p) if p.is_dir() else [p])
    app = ctx.app
    app.migrate()
    media_dir = ctx.settings.paths.media_dir
    ids: list[str] = []
    with click.progressbar(files, label="enqueueing", file=sys.stderr,
                           show_pos=True, hidden=len(files) < 10) as bar:
        for f in bar:
            ids.append(submit_file(app.engine, app.tasks, media_dir, f, metadata,
                                   lane_by=lane_rule(ctx.settings)).image_id)
    if as_json:
        click.echo(json.dumps({"enqueued": ids}))
    else:
        for f, i in zip(files, ids):
            click.echo(f"{i}  {f}")
        click.echo(f"enqueued {len(ids)} image(s)", err=True)
