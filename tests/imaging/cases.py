"""The generated case set: one small file per legitimate or hostile case, made with Pillow.

``write_legit(dir)`` and ``write_hostile(dir)`` return ``{name: path}``. The
hostile cases are byte-level forgeries of real defects (a patched SOF header,
a flipped IDAT byte, a cut file, ...), so they exercise the same code paths a
real attacker's file would, without allocating what they claim.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from tests.imaging.icc import cmyk_press, display_p3

UPRIGHT = (120, 80)  # landscape when upright; orientations 5-8 store it as portrait
MARK = (220, 20, 20)
BASE = (235, 235, 235)
CMYK_INK = (0, 255, 255, 0)  # 0 % C, 100 % M, 100 % Y, 0 % K
P3_COLOUR = (200, 80, 60)

# EXIF orientation -> the operation that turns the upright picture into the stored pixels
# (the inverse of what a viewer applies).
_STORE = {
    1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def upright_marked() -> Image.Image:
    """A light picture with a red block in the top-left corner and a grey bar at the bottom."""
    im = Image.new("RGB", UPRIGHT, BASE)
    im.paste(MARK, (0, 0, 30, 20))
    im.paste((90, 90, 90), (0, 70, 120, 80))
    return im


def _exif(orientation: int | None = None, gps: bool = False, taken: str | None = None) -> bytes:
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    exif[0x010F] = "TestCam"
    if taken:
        exif.get_ifd(0x8769)[0x9003] = taken
        exif.get_ifd(0x8769)[0x9011] = "+02:00"
    if gps:
        exif.get_ifd(0x8825).update({1: "N", 2: (48.0, 51.0, 29.5), 3: "W", 4: (2.0, 17.0, 40.2), 5: b"\x00",
                                     6: 35.0})
    return exif.tobytes()


def _png16(arr: np.ndarray, color_type: int) -> bytes:
    """A 16-bit PNG written by hand (Pillow cannot write 48-bit RGB)."""
    h, w = arr.shape[:2]
    raw = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def _strip_app14(jpeg: bytes) -> bytes:
    """Remove the Adobe APP14 segment (the pixel data stays Adobe-inverted)."""
    at = jpeg.find(b"\xff\xee")
    size = struct.unpack(">H", jpeg[at + 2:at + 4])[0]
    return jpeg[:at] + jpeg[at + 2 + size:]


def oriented_animation(orientation: int) -> bytes:
    """A 2-frame animated WebP stored as ``orientation`` demands, with that EXIF orientation."""
    op = _STORE[orientation]
    stored = []
    for i in range(2):
        up = upright_marked()
        up.paste((40 + 120 * i, 160, 40), (50, 30, 70, 50))  # frames differ in the middle (else WebP merges them)
        stored.append(up if op is None else up.transpose(op))
    buf = io.BytesIO()
    stored[0].save(buf, "WEBP", save_all=True, append_images=stored[1:], duration=[100, 100], lossless=True,
                   exif=_exif(orientation))
    return buf.getvalue()


def write_legit(d: Path) -> dict[str, Path]:
    import pillow_heif

    pillow_heif.register_heif_opener()
    d.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}

    def save(name: str, im: Image.Image, fmt: str, **kw: object) -> None:
        out[name] = d / name
        im.save(out[name], fmt, **kw)

    up = upright_marked()
    for o, op in _STORE.items():
        stored = up if op is None else up.transpose(op)
        save(f"orient_{o}.jpg", stored, "JPEG", quality=95, exif=_exif(o))
    rgba = Image.new("RGBA", (100, 100), (30, 120, 200, 255))
    rgba.paste((0, 0, 0, 0), (50, 0, 100, 100))  # right half fully transparent
    save("alpha.png", rgba, "PNG")
    save("cmyk_adobe.jpg", Image.new("CMYK", (64, 64), CMYK_INK), "JPEG", quality=95, icc_profile=cmyk_press())
    # The same file with its Adobe APP14 marker stripped: Pillow and libvips both still read it as
    # Adobe-inverted CMYK, and so must we (its colours must come out as the marked file's).
    buf = io.BytesIO()
    Image.new("CMYK", (64, 64), CMYK_INK).save(buf, "JPEG", quality=95, icc_profile=cmyk_press())
    out["cmyk_no_app14.jpg"] = d / "cmyk_no_app14.jpg"
    out["cmyk_no_app14.jpg"].write_bytes(_strip_app14(buf.getvalue()))
    save("p3.png", Image.new("RGB", (64, 64), P3_COLOUR), "PNG", icc_profile=display_p3())
    grad = (np.linspace(0, 65535, 256, dtype=np.uint32)[None, :].repeat(16, 0)).astype(np.uint16)
    out["gray16.png"] = d / "gray16.png"
    out["gray16.png"].write_bytes(_png16(grad, 0))
    rgb48 = np.stack([grad, grad // 2, np.full_like(grad, 40000)], axis=-1)
    out["rgb48.png"] = d / "rgb48.png"
    out["rgb48.png"].write_bytes(_png16(rgb48, 2))
    save("bilevel.png", up.convert("1"), "PNG")
    save("gray.jpg", up.convert("L"), "JPEG")
    la = Image.new("LA", (80, 60), (128, 255))
    la.paste((0, 0), (40, 0, 80, 60))
    save("gray_alpha.png", la, "PNG")
    pal = up.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    save("palette.png", pal, "PNG")
    pal_t = up.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    save("palette_transparent.gif", pal_t, "GIF", transparency=pal_t.getpixel((119, 0)))
    save("photo.webp", up, "WEBP", quality=90)
    save("photo.tiff", up, "TIFF")
    save("photo.bmp", up, "BMP")
    save("photo.avif", up, "AVIF", quality=90)
    save("photo.heic", up, "HEIF", quality=90)
    save("gps_exif.jpg", up, "JPEG", exif=_exif(1, gps=True, taken="2023:07:14 18:02:09"),
         xmp=b"<x:xmpmeta xmlns:x='adobe:ns:meta/'>secret</x:xmpmeta>")
    frames = [Image.new("RGB", (60, 40), c) for c in ((250, 0, 0), (0, 250, 0), (0, 0, 250))]
    save("animated.gif", frames[0], "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0)
    save("animated.webp", frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=80, loop=0)
    save("tiny.png", Image.new("RGB", (20, 10), (10, 200, 10)), "PNG")
    return out


def write_hostile(d: Path, good_jpeg: bytes) -> dict[str, Path]:
    """``good_jpeg``: a valid JPEG to cut and patch."""
    d.mkdir(parents=True, exist_ok=True)
    rnd = random.Random(3)
    files: dict[str, bytes] = {}
    # A header promising 20,000 x 20,000 pixels (400 MP) on a 100-byte file: the classic bomb.
    png = io.BytesIO()
    Image.new("L", (8, 8)).save(png, "PNG")
    body = bytearray(png.getvalue())
    body[16:24] = struct.pack(">II", 20_000, 20_000)
    body[29:33] = struct.pack(">I", zlib.crc32(bytes(body[12:29])))
    files["bomb.png"] = bytes(body)
    # A 65,000 x 65,000 JPEG: patch the SOF0 frame header of a small valid JPEG.
    sof = good_jpeg.find(b"\xff\xc0")
    files["huge_header.jpg"] = good_jpeg[:sof + 5] + struct.pack(">HH", 65_000, 65_000) + good_jpeg[sof + 9:]
    # 2,000 one-pixel frames, written block by block (each: graphic control extension + image).
    frame = b"\x21\xf9\x04\x04\x02\x00\x00\x00" + b"\x2c" + struct.pack("<4H", 0, 0, 1, 1) + b"\x00\x02\x02\x44\x01\x00"
    files["frames_2000.gif"] = (b"GIF89a" + struct.pack("<2H", 1, 1) + b"\x80\x00\x00" + b"\x00\x00\x00\xff\xff\xff"
                                + frame * 2000 + b"\x3b")
    files["truncated.jpg"] = good_jpeg[: len(good_jpeg) // 2]
    png = io.BytesIO()
    upright_marked().save(png, "PNG")
    files["truncated.png"] = png.getvalue()[: len(png.getvalue()) // 2]
    broken = bytearray(png.getvalue())
    idat = broken.find(b"IDAT")
    broken[idat + 20] ^= 0xFF
    files["broken_chunk.png"] = bytes(broken)
    files["random.jpg"] = bytes(rnd.getrandbits(8) for _ in range(4096))
    files["page.jpg"] = b"<!DOCTYPE html>\n<html><head><title>Not an image</title></head><body>hi</body></html>\n"
    files["drawing.png"] = (b'<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" '
                            b'width="10" height="10"><rect width="10" height="10"/></svg>\n')
    files["document.jpg"] = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"
    files["clip.jpg"] = struct.pack(">I", 24) + b"ftypisom\x00\x00\x02\x00isomiso2" + bytes(64)
    files["notes.png"] = b"Meeting notes: remember to buy milk.\n" * 4
    files["empty.jpg"] = b""
    paths = {}
    for name, data in files.items():
        paths[name] = d / name
        paths[name].write_bytes(data)
    return paths
