"""Plain functions of the fetcher: sniffing, Retry-After, backoff, limits."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from jobs.fetch import FetchLimits, extension_for, parse_allow, parse_retry_after, sniff

from .conftest import image_bytes


@pytest.mark.parametrize("fmt, mime", [
    ("JPEG", "image/jpeg"), ("PNG", "image/png"), ("GIF", "image/gif"), ("WEBP", "image/webp"),
    ("AVIF", "image/avif"), ("TIFF", "image/tiff"), ("BMP", "image/bmp"),
])
def test_sniffs_real_images_made_by_pillow(fmt: str, mime: str) -> None:
    assert sniff(image_bytes(fmt, (16, 16))[:64]) == mime


def test_sniffs_heic_made_by_pillow_heif() -> None:
    import io

    import pillow_heif
    from PIL import Image

    pillow_heif.register_heif_opener()
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (1, 2, 3)).save(buf, "HEIF")
    assert sniff(buf.getvalue()[:64]) == "image/heic"


@pytest.mark.parametrize("head", [
    b"", b"<!DOCTYPE html>", b"%PDF-1.7\n", b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom",
    b"BMfoo", b"RIFF\x00\x00\x00\x00WAVEfmt ",
])
def test_non_images_are_not_sniffed_as_images(head: bytes) -> None:
    assert sniff(head) is None


def test_extensions() -> None:
    assert [extension_for(m) for m in ("image/jpeg", "image/avif", "image/heic")] == [".jpg", ".avif", ".heic"]


@pytest.mark.parametrize("value, expected", [
    ("0", 0.0), (" 42 ", 42.0), ("-5", None), ("1.5", None), ("", None), (None, None),
    ("Wed, 21 Oct 2015 07:28:10 GMT", 10.0), ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),  # past: now
    ("Wednesday, 21-Oct-15 07:28:10 GMT", 10.0),  # RFC 850 form still accepted
])
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)
    assert parse_retry_after(value, now=now) == expected


def test_limits_check_names_the_bad_field() -> None:
    FetchLimits().check()
    FetchLimits(allow=("10.0.0.0/8", "::1", "*.internal", "img.example.com")).check()
    for bad, field in [(FetchLimits(max_bytes=0), "max_bytes"), (FetchLimits(read_timeout_s=0), "read_timeout_s"),
                       (FetchLimits(max_redirects=-1), "max_redirects"), (FetchLimits(allow=("10.0.0.0/33",)), "allow"),
                       (FetchLimits(allow=("not a host!",)), "allow"),
                       (FetchLimits(accept_types=("text/html",)), "accept_types"),
                       (FetchLimits(user_agent=" "), "user_agent")]:
        with pytest.raises(ValueError, match=f"^{field}: expected"):
            bad.check()


def test_allow_list_matching() -> None:
    allow = parse_allow(["*.internal", "Images.Example.com."])
    assert allow.allows_host("a.b.internal") and allow.allows_host("images.example.com")
    assert not allow.allows_host("internal") and not allow.allows_host("evilinternal")
    assert not allow.allows_host("images.example.com.evil")
