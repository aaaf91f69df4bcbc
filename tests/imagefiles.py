"""Real image files made with Pillow for tests."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw


def photo(path: Path, size: tuple[int, int] = (800, 600), fmt: str | None = None,
          color: tuple[int, int, int] = (200, 80, 40)) -> Path:
    """A photo-like RGB image with a gradient and a shape (compresses like a photo)."""
    w, h = size
    im = Image.linear_gradient("L").resize((w, h)).convert("RGB")
    im = Image.blend(im, Image.new("RGB", (w, h), color), 0.5)
    ImageDraw.Draw(im).ellipse((w // 4, h // 4, 3 * w // 4, 3 * h // 4), fill=(30, 90, 200))
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, fmt)
    return path


def rgba_png(path: Path, size: tuple[int, int] = (700, 500)) -> Path:
    im = Image.new("RGBA", size, (0, 0, 0, 0))
    ImageDraw.Draw(im).rectangle((50, 50, size[0] - 50, size[1] - 50), fill=(10, 200, 90, 160))
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path)
    return path


def truncated_jpeg(path: Path) -> Path:
    full = photo(path.with_suffix(".full.jpg"), (640, 480))
    data = full.read_bytes()
    full.unlink()
    path.write_bytes(data[: len(data) // 3])
    return path
