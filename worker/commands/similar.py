"""``darkroom similar``: the images nearest to an image id or a file."""

from __future__ import annotations

import dataclasses
import json

import click

from worker.context import Ctx, pass_ctx


@click.command()
@click.argument("query")
@click.option("--limit", "-k", default=10, show_default=True, type=click.IntRange(1, 1000),
              help="How many neighbours to print.")
@click.option("--json", "as_json", is_flag=True, help="A JSON list of {image_id, distance, similarity, ...}.")
@pass_ctx
def similar(ctx: Ctx, query: str, limit: int, as_json: bool) -> None:
    """Print the images most similar to QUERY (an image id or an image file).

    Distance is cosine distance (0 = identical direction); with the default
    `local` embedder "similar" means the same picture resized, re-encoded,
    slightly cropped or brightened, not the same subject.

    \b
    Example:
      darkroom similar 0190c8e2-7d1a-7c3e-9f0a-2b4c6d8e0f12 --limit 5
      darkroom similar ~/Pictures/beach.jpg --json
    """
    from jobs.embeddings.similarity import similar as find

    app = ctx.app
    app.migrate()
    hits = find(app.engine, app.vector_store, app.embedder, query, limit)  # SimilarityError: one line (cli.py)
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(h) for h in hits], indent=2))
        return
    if not hits:
        click.echo("no embedded images yet")
        return
    click.echo(f"{'#':>3}  {'distance':>8}  {'image id':<36}  path")
    for i, h in enumerate(hits, 1):
        click.echo(f"{i:>3}  {h.distance:8.4f}  {h.image_id:<36}  {h.original_path or '(row gone)'}")
