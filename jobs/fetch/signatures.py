"""Decide an image's type from its first bytes, never from a header.

>>> sniff(b"\\x89PNG\\r\\n\\x1a\\n" + bytes(8))
'image/png'
>>> sniff(b"<!doctype html>") is None
True
"""

from __future__ import annotations

#: How many leading bytes ``sniff`` needs to decide (ISOBMFF brands included).
SNIFF_BYTES = 64

_EXTENSIONS = {
    "image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/webp": ".webp",
    "image/avif": ".avif", "image/heic": ".heic", "image/tiff": ".tiff", "image/bmp": ".bmp",
}
_AVIF_BRANDS = {b"avif", b"avis"}
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}


def sniff(head: bytes) -> str | None:
    """The MIME type of the image whose file starts with ``head``, or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    # BMP: "BM", then the header size at offset 14 is one of the known DIB sizes.
    if head[:2] == b"BM" and len(head) >= 18 and int.from_bytes(head[14:18], "little") in (12, 40, 52, 56, 64, 108, 124):
        return "image/bmp"
    return _sniff_isobmff(head)


def _sniff_isobmff(head: bytes) -> str | None:
    """AVIF and HEIC are ISO media files: an ``ftyp`` box with brands first."""
    if head[4:8] != b"ftyp" or len(head) < 16:
        return None
    box_size = int.from_bytes(head[:4], "big")
    end = min(len(head), box_size if box_size >= 16 else len(head))
    brands = {head[8:12]} | {head[i:i + 4] for i in range(16, end - 3, 4)}
    # AVIF files often carry "mif1" too, so the AVIF brands decide first.
    if brands & _AVIF_BRANDS:
        return "image/avif"
    if brands & _HEIF_BRANDS:
        return "image/heic"
    return None


def extension_for(mime_type: str) -> str:
    """The file extension Darkroom gives a sniffed type (``".jpg"`` for JPEG)."""
    return _EXTENSIONS.get(mime_type, ".bin")
