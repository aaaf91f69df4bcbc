"""Say what a file is from its first bytes, never from its name.

The extension of an upload is a claim made by whoever sent it; the magic
bytes are evidence. :func:`sniff` returns the Pillow format to open the file
with, or raises :class:`ImageRejected` with a message naming what was
actually received (an HTML page, a PDF, a video, plain text, ...).

>>> sniff(b"\\x89PNG\\r\\n\\x1a\\n" + bytes(24))
'PNG'
"""

from __future__ import annotations

import struct

from jobs.imaging.types import ImageRejected

HEAD_BYTES = 512  # enough for every signature below, including XML prologues before <svg
MAGIC_BYTES = 64  # enough to tell the accepted formats apart (ISO-BMFF brands included)

# The one table of accepted formats: Pillow format -> (MIME type, extension Darkroom stores it under).
# The fetcher (jobs/fetch/signatures.py) and the decoder read it; nothing else sniffs.
FORMATS: dict[str, tuple[str, str]] = {
    "JPEG": ("image/jpeg", ".jpg"), "PNG": ("image/png", ".png"), "GIF": ("image/gif", ".gif"),
    "WEBP": ("image/webp", ".webp"), "TIFF": ("image/tiff", ".tiff"), "BMP": ("image/bmp", ".bmp"),
    "AVIF": ("image/avif", ".avif"), "HEIF": ("image/heic", ".heic"),
}
ACCEPTED = tuple(FORMATS)

# ISO-BMFF "ftyp" brands. The major brand decides when it names a codec; the
# generic still-image brands (mif1, msf1, mif2, miaf) defer to the compatible
# brands, where AVIF's own brand wins over HEIF's (AVIF files carry mif1 too).
_AVIF_BRANDS = {b"avif", b"avis"}
_HEVC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"}
_GENERIC_BRANDS = {b"mif1", b"msf1", b"mif2", b"miaf"}
# BMP: "BM", then the DIB header's size at offset 14 is one of the known ones (OS/2 12 .. BITMAPV5 124).
_DIB_SIZES = (12, 40, 52, 56, 64, 108, 124)


def identify(head: bytes) -> str | None:
    """The Pillow format of the accepted image whose file starts with ``head``, or None.

    >>> identify(b"\\x00\\x00\\x00\\x1cftypmif1\\x00\\x00\\x00\\x00mif1avifmiaf")
    'AVIF'
    >>> identify(b"<!doctype html>") is None
    True
    """
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if head[:2] == b"BM" and len(head) >= 26 and int.from_bytes(head[14:18], "little") in _DIB_SIZES:
        return "BMP"
    if head[4:8] == b"ftyp" and len(head) >= 16:
        return _bmff(head)
    return None


def _bmff(head: bytes) -> str | None:
    size = int.from_bytes(head[:4], "big")
    end = min(len(head), size if size >= 16 else len(head))  # size 0: the box runs to the end of the file
    major = head[8:12]
    compatible = {head[i:i + 4] for i in range(16, end - 3, 4)}
    if major in _AVIF_BRANDS:
        return "AVIF"
    if major in _HEVC_BRANDS:
        return "HEIF"
    if major in _GENERIC_BRANDS or compatible & (_AVIF_BRANDS | _HEVC_BRANDS):
        if compatible & _AVIF_BRANDS:
            return "AVIF"
        if compatible & (_HEVC_BRANDS | _GENERIC_BRANDS) or major in _GENERIC_BRANDS:
            return "HEIF"
    return None


def sniff(head: bytes) -> str:
    """The Pillow format name for ``head`` (a file's first bytes), or raise ImageRejected."""
    fmt = identify(head)
    if fmt is not None:
        return fmt
    if head[4:8] == b"ftyp":
        major = head[8:12].decode("latin-1").strip()
        if head[8:12] == b"qt  ":
            raise ImageRejected("not an image Darkroom accepts: received a QuickTime video (ftyp 'qt  ')")
        raise ImageRejected("not an image Darkroom accepts: received a video or audio file "
                            f"(MP4/ISO media, brand {major!r})")
    raise ImageRejected(f"not an image Darkroom accepts: received {describe(head)}")


# Known-but-refused kinds, checked in order; the label is shown to the user.
_REFUSED: tuple[tuple[bytes, int, str], ...] = (
    (b"%PDF-", 0, "a PDF document"),
    (b"%!PS", 0, "a PostScript document"),
    (b"\x1aE\xdf\xa3", 0, "a Matroska/WebM video"),
    (b"OggS", 0, "an Ogg audio/video file"),
    (b"ID3", 0, "an MP3 audio file"),
    (b"fLaC", 0, "a FLAC audio file"),
    (b"PK\x03\x04", 0, "a ZIP archive (or an Office document)"),
    (b"\x1f\x8b", 0, "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", 0, "a 7-Zip archive"),
    (b"Rar!", 0, "a RAR archive"),
    (b"\x7fELF", 0, "an ELF executable"),
    (b"MZ", 0, "a Windows executable"),
    (b"\x00\x00\x01\x00", 0, "a Windows icon (ICO), which is not an accepted input"),
    (b"8BPS", 0, "a Photoshop document (PSD), which is not an accepted input"),
    (b"\x00\x00\x00\x0cjP  ", 0, "a JPEG 2000 image, which is not an accepted input"),
    (b"\xff\x0a", 0, "a JPEG XL image, which is not an accepted input"),
    (b"\x00\x00\x00\x0cJXL ", 0, "a JPEG XL image, which is not an accepted input"),
)


def describe(head: bytes) -> str:
    """A human-readable name for what ``head`` looks like (for refusal messages).

    >>> describe(b"<!DOCTYPE html><html>")
    'an HTML page'
    """
    for magic, offset, label in _REFUSED:
        if head[offset:offset + len(magic)] == magic:
            return label
    if head[:4] == b"RIFF":
        kind = head[8:12].decode("latin-1", "replace")
        return {"AVI ": "an AVI video", "WAVE": "a WAV audio file"}.get(kind, f"a RIFF {kind!r} file")
    if not head:
        return "an empty file"
    text = _as_text(head)
    if text is not None:
        low = text.lstrip("\ufeff \t\r\n").lower()
        if "<svg" in low[:HEAD_BYTES] and (low.startswith(("<?xml", "<svg", "<!--", "<!doctype svg"))):
            return "an SVG drawing (vector images are not accepted)"
        if low.startswith(("<!doctype html", "<html", "<head", "<body")) or "<html" in low[:200]:
            return "an HTML page"
        if low.startswith("<?xml"):
            return "an XML document"
        if low.startswith(("{", "[")):
            return "JSON or other text"
        return f"plain text (starting {text[:24]!r})"
    return f"unrecognised binary data (first bytes {head[:12].hex(' ')})"


def _as_text(head: bytes) -> str | None:
    """Decode as UTF-8 text if it looks like text (the last character may be cut)."""
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:
            return None
        text = head[:exc.start].decode("utf-8-sig")
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
    return text if text and printable / len(text) > 0.95 else None


def header_size(head: bytes, fmt: str) -> tuple[int, int] | None:
    """Width and height straight from the first bytes (PNG, GIF, BMP; JPEG if its SOF is in ``head``).

    Pure bytes, no Pillow: the intake reads the lane from the copy buffer with it.

    >>> ihdr = b"IHDR" + (640).to_bytes(4, "big") + (480).to_bytes(4, "big")
    >>> header_size(b"\\x89PNG\\r\\n\\x1a\\n" + bytes(4) + ihdr, "PNG")
    (640, 480)
    """
    try:
        if fmt == "PNG":
            return struct.unpack(">II", head[16:24])
        if fmt == "GIF":
            return struct.unpack("<HH", head[6:10])
        if fmt == "BMP":
            w, h = struct.unpack("<ii", head[18:26])
            return w, abs(h)
        if fmt == "JPEG":
            at = 2
            while at + 9 < len(head) and head[at] == 0xFF:
                marker = head[at + 1]
                if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
                    h, w = struct.unpack(">HH", head[at + 5:at + 9])
                    return w, h
                at += 2 + struct.unpack(">H", head[at + 2:at + 4])[0]
    except struct.error:
        return None
    return None
