"""Open an original safely: admission control from the header, then a lean decode.

Order matters for hostile files. Everything that can refuse a file cheaply
runs before a single pixel is decoded:

1. the byte size against ``Limits.max_bytes``;
2. the magic bytes (:mod:`jobs.imaging.sniff`), so an HTML page named
   ``.jpg`` is refused by what it is, and Pillow only tries the one plugin;
3. for PNG, ``verify()`` (chunk CRCs: a broken chunk otherwise decodes);
4. the header's size, side and frame count against the limits, checked
   here for each open: Pillow's process-wide ``Image.MAX_IMAGE_PIXELS`` is
   never changed (other code in the process, the embedders, reads it).

Decoding then asks libjpeg for a DCT-scaled "draft" no smaller than the
largest variant, so a 100 MP JPEG never exists at full size in memory.
"""

from __future__ import annotations

import logging
import math
import struct
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from jobs.imaging.sniff import HEAD_BYTES, header_size, sniff
from jobs.imaging.types import ImageRejected, Limits, SourceInfo

log = logging.getLogger(__name__)

_ORIENTATION_TAG = 0x0112
# Errors Pillow and its plugins raise on malformed data.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, IndexError, KeyError,
                  TypeError)

_heif_registered = False


def _register_heif() -> None:
    global _heif_registered
    if not _heif_registered:
        import pillow_heif

        pillow_heif.register_heif_opener()
        _heif_registered = True


@contextmanager
def open_checked(path: Path, limits: Limits) -> Iterator[tuple[Image.Image, SourceInfo]]:
    """Open ``path`` after every header-level check; yields the lazy image and its info.

    >>> with open_checked(Path("photo.jpg"), Limits()) as (im, info):  # doctest: +SKIP
    ...     info.width, info.height
    (4032, 3024)
    """
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImageRejected(f"cannot read the original: {exc.strerror or exc}") from None
    if size > limits.max_bytes:
        raise ImageRejected(f"file is {size:,} bytes, over the limit of {limits.max_bytes:,} bytes (limits.max_bytes)")
    with path.open("rb") as fh:
        head = fh.read(HEAD_BYTES)
    fmt = sniff(head)
    if fmt == "HEIF":
        _register_heif()
    # Our limit is checked here, per open (the header, then _admit); Pillow's process-wide
    # Image.MAX_IMAGE_PIXELS is left alone, since the embedders in this process open images too.
    # Pillow's warning (1x-2x its limit) is silenced inside this block only; past 2x it refuses on its own.
    _admit_size(header_size(head, fmt), limits)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im = Image.open(path, formats=[fmt])
        except Image.DecompressionBombError as exc:
            raise ImageRejected(f"decompression bomb refused: {exc} (Pillow's own limit, 2 x Image.MAX_IMAGE_PIXELS, "
                                f"is below limits.max_pixels = {limits.max_pixels:,})") from None
        except UnidentifiedImageError:
            raise ImageRejected(f"the file starts like {fmt} but its header is not readable (corrupt or truncated)") \
                from None
        except _DECODE_ERRORS as exc:
            raise ImageRejected(f"broken {fmt} header: {_defect(exc)}") from None
    try:
        info = _admit(im, fmt, size, limits)
        if fmt == "PNG":
            _verify_png(path)
        yield im, info
    finally:
        im.close()


def _admit_size(size: tuple[int, int] | None, limits: Limits) -> None:
    if size is None:
        return
    w, h = size
    if w < 1 or h < 1:
        raise ImageRejected(f"image header says {w}x{h} pixels, which is empty")
    if max(w, h) > limits.max_side:
        raise ImageRejected(f"image side of {max(w, h):,} px is over the limit of {limits.max_side:,} px "
                            f"(limits.max_side; header says {w}x{h})")
    if w * h > limits.max_pixels:
        raise ImageRejected(f"image is {w}x{h} = {w * h:,} pixels, over the limit of {limits.max_pixels:,} "
                            f"(limits.max_pixels; refused as a possible decompression bomb)")


def _admit(im: Image.Image, fmt: str, size: int, limits: Limits) -> SourceInfo:
    w, h = im.size
    _admit_size((w, h), limits)
    try:
        frames = int(getattr(im, "n_frames", 1))
    except _DECODE_ERRORS as exc:
        raise ImageRejected(f"broken {fmt} frame structure: {exc}") from None
    if frames > limits.max_frames:
        raise ImageRejected(f"image has {frames:,} frames, over the limit of {limits.max_frames:,} (limits.max_frames)")
    if frames * w * h > limits.max_pixels * 4 and frames > 1:
        # Animations are decoded frame by frame, but a huge canvas times many frames is still a bomb.
        raise ImageRejected(f"animation of {frames:,} frames at {w}x{h} is {frames * w * h:,} pixels in all, over "
                            f"4x limits.max_pixels")
    orientation = read_orientation(im)
    dw, dh = (h, w) if orientation in (5, 6, 7, 8) else (w, h)
    return SourceInfo(format=fmt, mime_type=Image.MIME.get(fmt, f"image/{fmt.lower()}"), width=dw, height=dh,
                      frames=frames, orientation=orientation, mode=im.mode, bytes=size)


def read_orientation(im: Image.Image) -> int:
    """EXIF orientation 1-8 (1 when absent or invalid). HEIF: pillow-heif already rotated; keep what it saw."""
    if im.format == "HEIF":
        value = im.info.get("original_orientation", 1)
        return value if isinstance(value, int) and 1 <= value <= 8 else 1
    try:
        value = im.getexif().get(_ORIENTATION_TAG, 1)
    except _DECODE_ERRORS:
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _verify_png(path: Path) -> None:
    """Check every chunk's CRC before decoding: Pillow decodes past a bad chunk otherwise."""
    try:
        with Image.open(path, formats=["PNG"]) as im:
            im.verify()
    except UnidentifiedImageError:
        raise ImageRejected("the file starts like PNG but its header is not readable (corrupt or truncated)") from None
    except _DECODE_ERRORS as exc:
        raise ImageRejected(f"broken PNG: {_defect(exc)}") from None


def _defect(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if "truncated" in text.lower() or isinstance(exc, EOFError):
        return f"the file is truncated ({text})"
    if "crc" in text.lower() or "checksum" in text.lower():
        return f"a chunk is corrupt (CRC mismatch: {text})"
    return text


def decode(im: Image.Image, info: SourceInfo, target_width: int) -> Image.Image:
    """Load the first frame, as small as the largest variant allows (JPEG draft).

    ``target_width`` is in display orientation; the draft keeps both sides at or
    above what that width needs, so quality is decided by the resampler, not here.
    """
    if info.format == "JPEG" and info.frames == 1 and target_width < info.width:
        scale = target_width / info.width
        sw, sh = im.size
        im.draft(im.mode if im.mode in ("RGB", "L", "CMYK") else None, (math.ceil(sw * scale), math.ceil(sh * scale)))
    try:
        im.seek(0)
        im.load()
    except _DECODE_ERRORS as exc:
        raise ImageRejected(f"broken {info.format} image data: {_defect(exc)}") from None
    except MemoryError:
        raise ImageRejected(f"{info.format} image needs more memory to decode than is available") from None
    return im
