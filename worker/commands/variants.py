"""``darkroom variants``: an image's variants as a table, JSON, or ready ``<picture>`` markup."""

from __future__ import annotations

import json
from typing import Any, NoReturn

import click

from worker.context import Ctx, pass_ctx


@click.command()
@click.argument("image_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object: the image's id, status, size, alt, dominant colour and its variants.")
@click.option("--html", "as_html", is_flag=True,
              help="A <picture> element with AVIF and WebP sources and a lazy <img> fallback.")
@click.option("--sizes", default=None, metavar="SIZES",
              help="The sizes attribute of the sources with --html (default: 100vw).")
@pass_ctx
def variants(ctx: Ctx, image_id: str, as_json: bool, as_html: bool, sizes: str | None) -> None:
    """Print the variants of image ID, with their URLs under paths.media_url.

    \b
    Example:
      darkroom variants 0190c8e2-7d1a-7c3e-9f0a-2b4c6d8e0f12
      darkroom variants 0190c8e2-7d1a-7c3e-9f0a-2b4c6d8e0f12 --json | jq '.variants[].url'
      darkroom variants upload-123 --html --sizes '(min-width: 800px) 50vw, 100vw'
    """
    from db import images
    from worker import markup

    if as_json and as_html:
        _fail("--json and --html: choose one")
    if sizes is not None and not as_html:
        _fail("--sizes goes with --html")
    app = ctx.app
    app.migrate()
    image = images.get(app.engine, image_id)
    if image is None:
        _fail(f"no image with id {image_id!r}")
    rows = images.variants_of(app.engine, image_id)
    try:
        markup.ready(image, rows)
    except markup.ImageNotReady as exc:
        _fail(str(exc))
    media_url = app.settings.paths.media_url
    if as_html:
        click.echo(markup.picture(image, rows, media_url, sizes=sizes or markup.DEFAULT_SIZES))
        return
    listed = [{"format": v.format, "width": v.width, "height": v.height, "size": v.size, "path": v.path,
               "url": markup.variant_url(media_url, v.path)} for v in rows]
    if as_json:
        out: dict[str, Any] = {
            "id": image.id, "status": image.status, "recipe": image.recipe or "default",
            "width": image.width, "height": image.height, "alt": markup.alt_text(image.metadata_),
            "dominant_color": image.dominant_color, "placeholder": image.placeholder, "variants": listed}
        click.echo(json.dumps(out, indent=2))
        return
    click.echo(f"{image.id}  {image.filename}  {image.width}x{image.height}  recipe {image.recipe or 'default'}")
    click.echo(f"{'format':<6}  {'width':>5}  {'height':>6}  {'bytes':>9}  url")
    for v in listed:
        click.echo(f"{v['format']:<6}  {v['width']:>5}  {v['height'] if v['height'] is not None else '-':>6}  "
                   f"{v['size']:>9}  {v['url']}")


def _fail(message: str) -> NoReturn:
    click.echo(f"darkroom: {message}", err=True)
    raise SystemExit(1)
