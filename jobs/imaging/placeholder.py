"""Placeholders small enough to inline in HTML: a ThumbHash and a dominant colour.

ThumbHash (Evan Wallace's algorithm, ported here to numpy) encodes a blurred
version of the picture, with its aspect ratio and alpha, into ~25 bytes; the
row keeps it base64-encoded (~35 characters). The dominant colour is the most
populated bucket of a median-cut quantisation, ignoring transparent pixels.

>>> im = Image.new("RGB", (40, 30), (200, 30, 30))
>>> dominant_color(im)
'#c81e1e'
>>> [round(c * 255) for c in thumbhash_average(thumbhash(im))][:3]  # 6-bit DC: close, not exact
[196, 30, 28]
"""

from __future__ import annotations

import base64
import math
from typing import cast

import numpy as np
from PIL import Image

MAX_SIDE = 100  # ThumbHash input limit


def thumbhash(im: Image.Image) -> str:
    """Base64 ThumbHash of ``im`` (any size; it is thumbnailed to 100 px first)."""
    small = im.convert("RGBA")
    small.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.BOX)
    return base64.b64encode(_encode(small)).decode("ascii")


def _encode(im: Image.Image) -> bytes:
    w, h = im.size
    rgba = np.asarray(im, dtype=np.float64).reshape(h, w, 4) / 255.0
    alpha = rgba[..., 3]
    total_a = float(alpha.sum())
    avg = (rgba[..., :3] * alpha[..., None]).sum(axis=(0, 1)) / total_a if total_a else np.zeros(3)
    has_alpha = total_a < w * h
    l_limit = 5 if has_alpha else 7
    lx = max(1, round(l_limit * w / max(w, h)))
    ly = max(1, round(l_limit * h / max(w, h)))
    # Composite over the average colour, then to LPQ (luminance, yellow-blue, red-green).
    rgb = avg * (1 - alpha[..., None]) + alpha[..., None] * rgba[..., :3]
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    channels = [(r + g + b) / 3, (r + g) / 2 - b, r - g]

    def encode_channel(ch: np.ndarray, nx: int, ny: int) -> tuple[float, list[float], float]:
        dc, ac, scale = 0.0, [], 0.0
        for cy in range(ny):
            fy = np.cos(math.pi / h * cy * (np.arange(h) + 0.5))
            cx = 0
            while cx * ny < nx * (ny - cy):
                fx = np.cos(math.pi / w * cx * (np.arange(w) + 0.5))
                f = float(fy @ ch @ fx) / (w * h)
                if cx or cy:
                    ac.append(f)
                    scale = max(scale, abs(f))
                else:
                    dc = f
                cx += 1
        if scale:
            ac = [0.5 + 0.5 / scale * x for x in ac]
        return dc, ac, scale

    l_dc, l_ac, l_scale = encode_channel(channels[0], max(3, lx), max(3, ly))
    p_dc, p_ac, p_scale = encode_channel(channels[1], 3, 3)
    q_dc, q_ac, q_scale = encode_channel(channels[2], 3, 3)
    acs = [l_ac, p_ac, q_ac]
    is_landscape = w > h
    header24 = (round(63 * l_dc) | (round(31.5 + 31.5 * p_dc) << 6) | (round(31.5 + 31.5 * q_dc) << 12)
                | (round(31 * l_scale) << 18) | (int(has_alpha) << 23))
    header16 = ((ly if is_landscape else lx) | (round(63 * p_scale) << 3) | (round(63 * q_scale) << 9)
                | (int(is_landscape) << 15))
    out = [header24 & 255, (header24 >> 8) & 255, header24 >> 16, header16 & 255, header16 >> 8]
    if has_alpha:
        a_dc, a_ac, a_scale = encode_channel(alpha, 5, 5)
        out.append(round(15 * a_dc) | (round(15 * a_scale) << 4))
        acs.append(a_ac)
    start = len(out)
    index = 0
    for ac in acs:
        for f in ac:
            pos = start + (index >> 1)
            while len(out) <= pos:
                out.append(0)
            out[pos] |= round(15 * f) << ((index & 1) << 2)
            index += 1
    return bytes(out)


def thumbhash_average(hash_b64: str) -> tuple[float, float, float, float]:
    """The average RGBA (0-1) a ThumbHash encodes (its DC term), for checks and CSS fallbacks."""
    data = base64.b64decode(hash_b64)
    header = data[0] | (data[1] << 8) | (data[2] << 16)
    lum = (header & 63) / 63
    p = ((header >> 6) & 63) / 31.5 - 1
    q = ((header >> 12) & 63) / 31.5 - 1
    a = (data[5] & 15) / 15 if header >> 23 else 1.0
    b = lum - 2 / 3 * p
    r = (3 * lum - b + q) / 2
    g = r - q
    return (min(1.0, max(0.0, r)), min(1.0, max(0.0, g)), min(1.0, max(0.0, b)), a)


def thumbhash_image(hash_b64: str) -> Image.Image:
    """The blurred picture a ThumbHash encodes, at most 32 px on its longer side (RGBA).

    The decoder of the reference implementation (``thumbHashToRGBA``), for
    pages that show the placeholder as an image.

    >>> thumbhash_image(thumbhash(Image.new("RGB", (40, 20), (200, 30, 30)))).size  # 7:4, approximately
    (32, 18)
    """
    data = base64.b64decode(hash_b64)
    if len(data) < 5:
        raise ValueError("not a ThumbHash: fewer than 5 bytes")
    header24 = data[0] | (data[1] << 8) | (data[2] << 16)
    header16 = data[3] | (data[4] << 8)
    l_dc = (header24 & 63) / 63
    p_dc = ((header24 >> 6) & 63) / 31.5 - 1
    q_dc = ((header24 >> 12) & 63) / 31.5 - 1
    l_scale = ((header24 >> 18) & 31) / 31
    has_alpha = bool(header24 >> 23)
    p_scale = ((header16 >> 3) & 63) / 63
    q_scale = ((header16 >> 9) & 63) / 63
    landscape = bool(header16 >> 15)
    long_side = 5 if has_alpha else 7
    raw_lx, raw_ly = (long_side, header16 & 7) if landscape else (header16 & 7, long_side)
    lx, ly = max(3, raw_lx), max(3, raw_ly)
    a_dc = (data[5] & 15) / 15 if has_alpha else 1.0
    a_scale = (data[5] >> 4) / 15 if has_alpha else 0.0
    start, index = (6 if has_alpha else 5), 0

    def channel(nx: int, ny: int, scale: float) -> list[tuple[int, int, float]]:
        nonlocal index
        out = []
        for cy in range(ny):
            cx = 0 if cy else 1
            while cx * ny < nx * (ny - cy):
                pos = start + (index >> 1)
                nibble = (data[pos] >> ((index & 1) << 2)) & 15 if pos < len(data) else 0
                out.append((cx, cy, (nibble / 7.5 - 1) * scale))
                index += 1
                cx += 1
        return out

    # Saturation boosted 1.25x, as the reference does, to make up for quantisation.
    l_ac, p_ac, q_ac = channel(lx, ly, l_scale), channel(3, 3, p_scale * 1.25), channel(3, 3, q_scale * 1.25)
    a_ac = channel(5, 5, a_scale) if has_alpha else []
    ratio = max(raw_lx, 1) / max(raw_ly, 1)  # the approximate aspect ratio
    w = round(32 if ratio > 1 else 32 * ratio) or 1
    h = round(32 / ratio if ratio > 1 else 32) or 1
    fx = np.cos(math.pi / w * (np.arange(w)[None, :] + 0.5) * np.arange(8)[:, None])  # (8, w)
    fy = np.cos(math.pi / h * (np.arange(h)[None, :] + 0.5) * np.arange(8)[:, None])  # (8, h)

    def decode(dc: float, ac: list[tuple[int, int, float]]) -> np.ndarray:
        out = np.full((h, w), dc)
        for cx, cy, f in ac:
            out += f * 2 * np.outer(fy[cy], fx[cx])
        return out

    lum, p, q, a = decode(l_dc, l_ac), decode(p_dc, p_ac), decode(q_dc, q_ac), decode(a_dc, a_ac)
    b = lum - 2 / 3 * p
    r = (3 * lum - b + q) / 2
    g = r - q
    rgba = np.clip(np.stack([r, g, b, a], axis=-1) * 255, 0, 255).astype(np.uint8)
    return Image.fromarray(rgba, "RGBA")


def dominant_color(im: Image.Image) -> str:
    """``#rrggbb`` of the largest colour cluster among the (non-transparent) pixels."""
    small = im.convert("RGBA")
    small.thumbnail((64, 64), Image.Resampling.BOX)
    arr = np.asarray(small).reshape(-1, 4)
    opaque = arr[arr[:, 3] >= 128][:, :3]
    if len(opaque) == 0:
        opaque = arr[:, :3]
    strip = Image.fromarray(np.ascontiguousarray(opaque.reshape(1, -1, 3)), "RGB")
    quant = strip.quantize(colors=6, method=Image.Quantize.MEDIANCUT)
    counts = sorted(quant.getcolors() or [], reverse=True)
    palette = quant.getpalette() or []
    idx = cast(int, counts[0][1]) if counts else 0  # a "P" image's pixels are palette indexes
    r, g, b = palette[idx * 3: idx * 3 + 3] or [0, 0, 0]
    return f"#{r:02x}{g:02x}{b:02x}"
