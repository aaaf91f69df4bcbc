"""Bring any decoded frame to 8-bit sRGB, RGB or RGBA, with alpha kept.

- Embedded ICC profiles (CMYK, Adobe RGB, Display P3, grey, ...) are converted
  to sRGB with LittleCMS through :mod:`PIL.ImageCms` (perceptual intent).
  ``convert("RGB")`` from CMYK ignores the profile and over-saturates.
- 16-bit and 32-bit integer modes are scaled down (``>> 8``), never clipped:
  Pillow's ``convert("L")`` from ``I;16`` clips everything above 255 to white.
- CMYK JPEGs: Pillow reads 4-channel JPEGs as Adobe-inverted whether or not
  the Adobe APP14 marker is there, and libvips does the same; files without
  the marker are in practice Adobe files whose marker was stripped, so they
  are taken as Pillow hands them over (never inverted back).
- The result carries no ``info`` at all (no EXIF, XMP, stale ICC profile):
  encoders are handed the sRGB profile explicitly.

>>> to_srgb(Image.new("I;16", (2, 2), 65535)).getpixel((0, 0))
(255, 255, 255)
"""

from __future__ import annotations

import io
import logging
from functools import lru_cache

import numpy as np
from PIL import Image, ImageCms

log = logging.getLogger(__name__)

INTENT = ImageCms.Intent.PERCEPTUAL
_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}


@lru_cache(maxsize=1)
def srgb_profile() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@lru_cache(maxsize=1)
def srgb_icc_bytes() -> bytes:
    """The sRGB profile embedded in every variant (LittleCMS's built-in, 588 bytes)."""
    return srgb_profile().tobytes()


def has_alpha(im: Image.Image) -> bool:
    return im.mode in _ALPHA_MODES or (im.mode in ("P", "L", "RGB") and "transparency" in im.info)


def to_srgb(im: Image.Image, icc: bytes | None = None) -> Image.Image:
    """Any Pillow mode (+ optional ICC profile) -> 8-bit sRGB ``RGB`` or ``RGBA`` with empty ``info``."""
    icc = icc if icc is not None else im.info.get("icc_profile")
    im = _to_8bit(im)
    alpha = has_alpha(im)
    if icc:
        converted = _apply_profile(im, icc, alpha)
        if converted is not None:
            im = converted
    target = "RGBA" if alpha else "RGB"
    if im.mode != target:
        im = im.convert(target)
    if alpha and im.getchannel("A").getextrema()[0] == 255:
        im = im.convert("RGB")  # an alpha channel that is opaque everywhere only costs bytes
    im.info = {}
    return im


def _to_8bit(im: Image.Image) -> Image.Image:
    if im.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        arr = np.asarray(im)
        top = int(arr.max()) if arr.size else 0
        if im.mode != "I" or top > 255:
            # 16-bit data (or 32-bit holding 16-bit values): keep the high byte; wider ranges are rescaled.
            shift = 8 if top <= 65535 else max(0, top.bit_length() - 8)
            arr = (arr.astype(np.uint32) >> shift).clip(0, 255)
        out = Image.fromarray(arr.astype(np.uint8), "L")
        out.info = dict(im.info)
        return out
    if im.mode == "F":
        arr = np.asarray(im, dtype=np.float32)
        peak = float(np.nanmax(arr)) if arr.size else 0.0
        scale = 255.0 if peak <= 1.0 else (255.0 / peak if peak > 255.0 else 1.0)
        out = Image.fromarray(np.nan_to_num(arr * scale).clip(0, 255).round().astype(np.uint8), "L")
        out.info = dict(im.info)
        return out
    if im.mode == "1":
        return im.convert("L")
    if im.mode in ("P", "PA"):
        return im.convert("RGBA" if has_alpha(im) else "RGB")
    if im.mode == "LA" or (im.mode == "L" and "transparency" in im.info):
        return im.convert("RGBA") if "icc_profile" not in im.info else im.convert("LA")
    if im.mode in ("RGBX", "YCbCr", "HSV"):
        return im.convert("RGB")
    if im.mode in ("RGBa", "La"):
        return im.convert("RGBA")
    return im


def _apply_profile(im: Image.Image, icc: bytes, alpha: bool) -> Image.Image | None:
    try:
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    except (OSError, ImageCms.PyCMSError) as exc:
        log.info("ignoring unreadable ICC profile: %s", exc)
        return None
    space = src.profile.xcolor_space.strip()
    if space in ("RGB", "CMYK", "GRAY", "LAB") and _is_srgb(src) and im.mode in ("RGB", "RGBA"):
        return im  # already sRGB: skip a needless transform
    mode_for = {"RGB": ("RGB", "RGBA"), "CMYK": ("CMYK", "CMYK"), "GRAY": ("L", "LA"), "LAB": ("LAB", "LAB")}
    if space not in mode_for:
        log.info("ignoring ICC profile for colour space %r", space)
        return None
    in_mode = mode_for[space][1 if alpha else 0]
    if im.mode != in_mode:
        if space == "GRAY" and im.mode in ("L", "LA"):
            in_mode = im.mode
        else:
            log.info("ICC profile is %s but pixels are %s: profile ignored", space, im.mode)
            return None
    gray_alpha = None
    if in_mode == "LA":  # LittleCMS has no grey+alpha transform in Pillow: convert grey, re-attach alpha
        gray_alpha = im.getchannel("A")
        im, in_mode = im.convert("L"), "L"
    out_mode = "RGBA" if in_mode in ("RGBA",) else "RGB"
    try:
        out = ImageCms.profileToProfile(im, src, srgb_profile(), renderingIntent=INTENT, outputMode=out_mode)
    except (OSError, ValueError, ImageCms.PyCMSError) as exc:
        log.info("ICC conversion failed, profile ignored: %s", exc)
        return None
    assert out is not None
    if in_mode == "RGBA":
        out.putalpha(im.getchannel("A"))  # LittleCMS does not promise to carry extra channels
    if gray_alpha is not None:
        out = out.convert("RGBA")
        out.putalpha(gray_alpha)
    return out


def _is_srgb(profile: ImageCms.ImageCmsProfile) -> bool:
    desc = (profile.profile.profile_description or "").lower()
    return "srgb" in desc and "linear" not in desc
