"""An image's MIME type and stored extension from its first bytes, never from a header.

A view of the one signature table, :data:`jobs.imaging.sniff.FORMATS`: the
fetcher and the API decide with exactly the rules the decoder opens with.

>>> sniff(b"\\x89PNG\\r\\n\\x1a\\n" + bytes(24))
'image/png'
>>> sniff(b"<!doctype html>") is None
True
"""

from __future__ import annotations

from jobs.imaging.sniff import FORMATS, MAGIC_BYTES, identify

#: How many leading bytes ``sniff`` needs to decide (ISOBMFF brands included).
SNIFF_BYTES = MAGIC_BYTES

_EXTENSIONS = dict(FORMATS.values())


def sniff(head: bytes) -> str | None:
    """The MIME type of the accepted image whose file starts with ``head``, or None."""
    fmt = identify(head)
    return FORMATS[fmt][0] if fmt is not None else None


def extension_for(mime_type: str) -> str:
    """The file extension Darkroom gives a sniffed type (``".jpg"`` for JPEG)."""
    return _EXTENSIONS.get(mime_type, ".bin")
