"""``darkroom search``: find images by words (full-text, semantic or hybrid)."""

from __future__ import annotations

import json
from datetime import date, datetime

import click

from worker.context import Ctx, pass_ctx


def parse_where(values: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    out = []
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r}: expected key=value", param_hint="--where")
        out.append((key.strip(), value))
    return tuple(out)


@click.command()
@click.argument("query")
@click.option("--limit", "-k", default=None, type=click.IntRange(1, 1000),
              help="How many hits to print (default: [search] default_limit, 10).")
@click.option("--mode", default="auto", show_default=True,
              type=click.Choice(["auto", "text", "vector", "hybrid"]),
              help="auto = hybrid when the embedder can embed words, else text.")
@click.option("--recipe", default=None, help="Only images of this recipe ('default' for none).")
@click.option("--status", default=None, type=click.Choice(["pending", "processing", "completed", "failed"]),
              help="Only images with this status (only completed images are searchable).")
@click.option("--since", default=None, help="Only images created at or after this date (2026-01-01).")
@click.option("--where", "where", multiple=True, metavar="KEY=VALUE",
              help="Only images whose metadata KEY equals VALUE (repeatable; a list matches any item).")
@click.option("--json", "as_json", is_flag=True,
              help='Print {"query", "mode", "hits": [{"id", "score", "filename", "metadata", "variants"}]}.')
@pass_ctx
def search(ctx: Ctx, query: str, limit: int | None, mode: str, recipe: str | None, status: str | None,
           since: str | None, where: tuple[str, ...], as_json: bool) -> None:
    """Find images by the words of their filename, caption, alt text, title, description and tags.

    Full-text search works with every embedder; with an embedder that embeds
    words into the image space (docs/search.md) the query is also searched
    by meaning and both lists are fused (hybrid).

    \b
    Example:
      darkroom search "red kite over the dunes" --limit 5
      darkroom search kites --recipe avatar --since 2026-01-01 --where user=42 --json
    """
    from db import images
    from jobs.embeddings.search import Filters, filters_from
    from jobs.embeddings.search import search as run

    app = ctx.app
    app.migrate()
    cfg = app.settings
    # A SearchError (bad filter, empty query) is a DarkroomError: one line, exit 1 (cli.py).
    filters = Filters(recipe=recipe, status=status, where=parse_where(where),
                      since=None if since is None else filters_from(since=since).since)
    result = run(app.engine, app.vector_store, app.embedder, cfg.search, query,
                 limit or cfg.search.default_limit, mode, filters)
    if as_json:
        hits = [{"id": h.id, "score": round(h.score, 6), "filename": h.filename, "metadata": h.metadata,
                 "variants": [{"width": v.width, "height": v.height, "format": v.format, "size": v.size,
                               "path": v.path} for v in images.variants_of(app.engine, h.id)]}
                for h in result.hits]
        click.echo(json.dumps({"query": result.query, "mode": result.mode, "hits": hits}, indent=2,
                              default=_json_default))
        return
    if not result.hits:
        click.echo(f"no images match {result.query!r} ({result.mode})")
        return
    click.echo(f"{'#':>3}  {'score':>8}  {'image id':<36}  filename   ({result.mode})")
    for i, h in enumerate(result.hits, 1):
        click.echo(f"{i:>3}  {h.score:8.4f}  {h.id:<36}  {h.filename}")


def _json_default(value: object) -> str:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return str(value)
