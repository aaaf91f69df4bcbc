"""A corpus of photo-like test images, synthesised with numpy + Pillow (no downloads).

Real photos are smooth gradients, textured surfaces with a 1/f spectrum,
sharp object edges and sensor grain; the generator layers exactly those, so
encoders see realistic entropy (a flat or pure-noise image would flatter or
punish them). The set mirrors the issue's: mostly 12 MP JPEGs, one 20 MP
JPEG, an RGBA PNG, a CMYK JPEG with an ICC profile, a 16-bit PNG and an
EXIF-6 portrait, 21 files in all.

    python bench/imaging/corpus.py OUTDIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.imaging.icc import cmyk_press


def pink_noise(rng: np.random.Generator, h: int, w: int, beta: float = 1.8) -> np.ndarray:
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f = np.sqrt(fx * fx + fy * fy)
    f[0, 0] = 1.0
    spectrum = (rng.standard_normal((h, w // 2 + 1)) + 1j * rng.standard_normal((h, w // 2 + 1))) / f ** (beta / 2)
    spectrum[0, 0] = 0
    field = np.fft.irfft2(spectrum, s=(h, w))
    return (field - field.mean()) / (field.std() + 1e-9)


def photo(seed: int, size: tuple[int, int]) -> Image.Image:
    """An RGB photo-like scene: sky gradient, textured ground, objects with edges, grain."""
    rng = np.random.default_rng(seed)
    w, h = size
    lw, lh = w // 4, h // 4  # texture synthesised at 1/4 scale, then upsampled (like optics blur)
    horizon = rng.uniform(0.3, 0.6)
    y = np.linspace(0, 1, lh)[:, None]
    sky_top, sky_low = rng.uniform([40, 90, 160], [110, 160, 230]), rng.uniform([170, 190, 210], [230, 230, 245])
    ground = rng.uniform([50, 60, 20], [150, 130, 90])
    sky = sky_top + (sky_low - sky_top) * (y / horizon).clip(0, 1)[..., None]
    tex = np.stack([pink_noise(rng, lh, lw) for _ in range(3)], -1)
    land = ground + 35 * tex + 25 * pink_noise(rng, lh, lw, 2.4)[..., None]
    clouds = 18 * pink_noise(rng, lh, lw, 2.6)[..., None]
    edge = horizon + 0.05 * pink_noise(rng, 1, lw, 2.0)[0]
    mask = (y > edge[None, :])[..., None]
    img = np.where(mask, land, sky + clouds)
    im = Image.fromarray(img.clip(0, 255).astype(np.uint8)).resize((w, h), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(im)
    for _ in range(rng.integers(6, 14)):  # objects: buildings, poles, rocks with hard edges
        x0, y0 = rng.uniform(0, w), rng.uniform(h * 0.2, h)
        ww, hh = rng.uniform(w * 0.02, w * 0.2), rng.uniform(h * 0.05, h * 0.4)
        colour = tuple(int(c) for c in rng.uniform(20, 230, 3))
        if rng.random() < 0.5:
            draw.rectangle((x0, y0 - hh, x0 + ww, y0), fill=colour)
            for wx in np.arange(x0 + ww * 0.1, x0 + ww * 0.9, max(8.0, ww / 8)):  # windows: fine detail
                draw.rectangle((wx, y0 - hh * 0.9, wx + max(3.0, ww / 20), y0 - hh * 0.8), fill=(240, 230, 180))
        else:
            draw.ellipse((x0, y0 - hh, x0 + ww, y0), fill=colour)
    im = im.filter(ImageFilter.GaussianBlur(0.7))
    arr = np.asarray(im).astype(np.int16)
    grain = rng.normal(0, 3.0, (h, w, 1)).astype(np.int16)  # luminance grain like a phone sensor
    return Image.fromarray((arr + grain).clip(0, 255).astype(np.uint8))


def exif_orientation(value: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = value
    exif.get_ifd(0x8769)[0x9003] = "2024:05:01 10:00:00"
    return exif.tobytes()


def build(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []

    def keep(name: str) -> Path | None:
        p = out / name
        files.append(p)
        return None if p.exists() else p

    for i in range(16):
        if p := keep(f"photo_{i:02d}.jpg"):
            photo(i, (4032, 3024)).save(p, "JPEG", quality=90)
    if p := keep("photo_20mp.jpg"):
        photo(100, (5472, 3648)).save(p, "JPEG", quality=90)
    if p := keep("portrait_exif6.jpg"):  # stored landscape, shown portrait
        photo(101, (4032, 3024)).save(p, "JPEG", quality=90, exif=exif_orientation(6))
    if p := keep("cmyk_icc.jpg"):
        photo(102, (3000, 2000)).convert("CMYK").save(p, "JPEG", quality=90, icc_profile=cmyk_press())
    if p := keep("rgba.png"):
        im = photo(103, (2400, 1600)).convert("RGBA")
        alpha = Image.new("L", im.size, 0)
        ImageDraw.Draw(alpha).ellipse((200, 100, 2200, 1500), fill=255)
        im.putalpha(alpha.filter(ImageFilter.GaussianBlur(20)))
        im.save(p, "PNG", compress_level=1)
    if p := keep("deep16.png"):
        arr = np.asarray(photo(104, (3000, 2000)).convert("L")).astype(np.uint16) * 257
        Image.fromarray(arr).save(p, "PNG", compress_level=1)  # uint16 -> I;16
    return files


def big_jpeg(path: Path, side: int = 10_000) -> Path:
    """A 100 MP JPEG for the peak-RSS check (made in strips to keep the generator's memory low)."""
    if not path.exists():
        tile = photo(200, (2500, 2500))
        canvas = Image.new("RGB", (side, side))
        for x in range(0, side, 2500):
            for y in range(0, side, 2500):
                canvas.paste(tile, (x, y))
        canvas.save(path, "JPEG", quality=85)
    return path


if __name__ == "__main__":
    for f in build(Path(sys.argv[1] if len(sys.argv) > 1 else "bench/imaging/out/corpus")):
        print(f)
