"""One magic-byte table: the fetcher's MIME sniff and the decoder's format sniff agree on every case."""

from __future__ import annotations

import pytest

from jobs.fetch import extension_for
from jobs.fetch import sniff as sniff_mime
from jobs.imaging.sniff import FORMATS, identify, sniff
from jobs.imaging.types import ImageRejected


def ftyp(major: bytes, *compatible: bytes, size: int | None = None) -> bytes:
    body = major + b"\x00\x00\x00\x00" + b"".join(compatible)
    return (size if size is not None else 8 + len(body)).to_bytes(4, "big") + b"ftyp" + body + bytes(16)


def bmp(dib_size: int) -> bytes:
    return b"BM" + bytes(12) + dib_size.to_bytes(4, "little") + bytes(16)


CASES = [
    (b"\xff\xd8\xff\xe0" + bytes(30), "JPEG"),
    (bmp(40), "BMP"), (bmp(124), "BMP"), (bmp(12), "BMP"),
    (b"BMW is a car, not a bitmap: plain text here", None),  # "BM" alone is not a BMP
    (bmp(41), None),
    (ftyp(b"avif", b"mif1", b"avif", b"miaf"), "AVIF"),
    (ftyp(b"mif1", b"mif1", b"avif", b"miaf"), "AVIF"),  # AVIF behind the generic mif1 major brand
    (ftyp(b"mif1", b"avif", size=0), "AVIF"),  # box size 0: to the end of the file
    (ftyp(b"avis", b"msf1"), "AVIF"),
    (ftyp(b"heic", b"mif1", b"heic"), "HEIF"),
    (ftyp(b"mif1", b"mif1", b"heic"), "HEIF"),
    (ftyp(b"mif2", b"mif2"), "HEIF"),
    (ftyp(b"isom", b"isom", b"mp41"), None),  # an MP4 video
    (ftyp(b"qt  "), None),
]


@pytest.mark.parametrize("head, fmt", CASES)
def test_both_sniffers_read_the_one_table(head: bytes, fmt: str | None) -> None:
    assert identify(head) == fmt
    assert sniff_mime(head) == (FORMATS[fmt][0] if fmt else None)
    if fmt is None:
        with pytest.raises(ImageRejected):
            sniff(head)
    else:
        assert sniff(head) == fmt
        assert extension_for(FORMATS[fmt][0]) == FORMATS[fmt][1]
