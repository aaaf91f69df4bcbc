from __future__ import annotations

from pathlib import Path

import click

from worker.context import Ctx, pass_ctx


def make_samples(dest: Path) -> list[Path]:
    """A few generated photos: a landscape JPEG, an RGBA PNG, a small portrait."""
    from PIL import Image, ImageDraw

    dest.mkdir(parents=True, exist_ok=True)
    out = []
    import numpy as np

    w, h = 2400, 1600
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    rgb = np.stack([127 + 127 * np.sin(x / 170), 127 + 127 * np.sin(y / 130), (x * y / 97) % 255], axis=-1)
    rng = np.random.default_rng(7)  # film grain, so it compresses like a photo
    rgb += rng.normal(0, 6, rgb.shape)
    im = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")
    ImageDraw.Draw(im).ellipse((800, 400, 1600, 1200), fill=(250, 200, 40))
    out.append(dest / "landscape.jpg")
    im.save(out[-1], quality=90)
    logo = Image.new("RGBA", (900, 900), (0, 0, 0, 0))
    ImageDraw.Draw(logo).regular_polygon((450, 450, 400), 6, fill=(40, 120, 220, 230))
    out.append(dest / "logo.png")
    logo.save(out[-1])
    small = Image.new("RGB", (200, 300), (30, 160, 90))
    ImageDraw.Draw(small).rectangle((20, 20, 120, 80), fill=(255, 255, 255))
    out.append(dest / "small-portrait.jpg")
    small.save(out[-1])
    return out


@click.command()
@click.option("--workers", type=click.IntRange(1, 64), default=None, help="Worker processes.")
@pass_ctx
def demo(ctx: Ctx, workers: int | None) -> None:
    """Make sample images, process them on the configured defaults, show the result.

    \b
    Example:
      darkroom demo
      darkroom --config /tmp/try/config.toml demo
    """
    from db import images
    from jobs.intake import submit_file
    from worker import daemon
    from worker.status.report import gather, render_text

    app = ctx.app
    settings = ctx.settings
    app.migrate()
    samples = make_samples(settings.paths.data_dir / "demo-input")
    ids = [submit_file(app.engine, app.tasks, settings.paths.media_dir, p).image_id for p in samples]
    click.echo(f"enqueued {len(ids)} sample images; processing...")
    daemon.drain(app, workers or settings.queue.workers)
    for image_id, src in zip(ids, samples):
        row = images.get(app.engine, image_id)
        assert row is not None
        click.echo(f"\n{src.name}: {row.status} {row.width}x{row.height} ({row.mime_type})"
                   + (f" error: {row.error}" if row.error else ""))
        for v in images.variants_of(app.engine, image_id):
            click.echo(f"  {v.format:<5} {v.width:>5} px  {v.size:>8} bytes  {settings.paths.media_dir / v.path}")
    click.echo("\n" + render_text(gather(app)))
