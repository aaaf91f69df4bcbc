"""Hostile and broken files are refused from the header, with a reason that names the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.imaging import ImageRejected, Limits, Recipe, SourceInfo, classify_lane, probe, render
from jobs.imaging.sniff import sniff

REASONS = {
    "bomb.png": "limits.max_pixels",
    "huge_header.jpg": "limits.max_side",
    "frames_2000.gif": "limits.max_frames",
    "truncated.jpg": "truncated",
    "truncated.png": "truncated",
    "broken_chunk.png": "CRC",
    "random.jpg": "unrecognised binary data",
    "page.jpg": "HTML page",
    "drawing.png": "SVG",
    "document.jpg": "PDF",
    "clip.jpg": "video",
    "notes.png": "plain text",
    "empty.jpg": "empty file",
}


@pytest.mark.parametrize("name", sorted(REASONS))
def test_hostile_file_is_refused_with_a_named_reason(hostile: dict[str, Path], recipe: Recipe, name: str) -> None:
    with pytest.raises(ImageRejected, match=REASONS[name]):
        render(hostile[name], recipe, Limits())


@pytest.mark.parametrize("name", ["bomb.png", "huge_header.jpg", "frames_2000.gif", "page.jpg", "random.jpg"])
def test_header_level_refusals_happen_in_probe(hostile: dict[str, Path], name: str) -> None:
    with pytest.raises(ImageRejected, match=REASONS[name]):
        probe(hostile[name], Limits())


def test_each_limit_is_enforced(legit: dict[str, Path]) -> None:
    path = legit["orient_1.jpg"]  # 120 x 80
    assert probe(path, Limits()).width == 120
    with pytest.raises(ImageRejected, match="limits.max_bytes"):
        probe(path, Limits(max_bytes=100))
    with pytest.raises(ImageRejected, match="limits.max_side"):
        probe(path, Limits(max_side=100))
    with pytest.raises(ImageRejected, match="limits.max_pixels"):
        probe(path, Limits(max_pixels=9_000))
    with pytest.raises(ImageRejected, match="limits.max_frames"):
        probe(legit["animated.gif"], Limits(max_frames=2))


def test_a_pixel_bomb_between_one_and_two_times_the_limit_is_refused(legit: dict[str, Path]) -> None:
    # Pillow only warns between 1x and 2x MAX_IMAGE_PIXELS; that warning must be an error.
    with pytest.raises(ImageRejected, match="limits.max_pixels"):
        probe(legit["orient_1.jpg"], Limits(max_pixels=120 * 80 * 2 // 3))


def test_the_pixel_limit_is_local_to_each_open(legit: dict[str, Path]) -> None:
    from PIL import Image

    before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(ImageRejected, match="limits.max_pixels"):
        probe(legit["orient_1.jpg"], Limits(max_pixels=9_000))
    assert probe(legit["photo.tiff"], Limits(max_pixels=500_000_000)).width > 0
    assert before == Image.MAX_IMAGE_PIXELS, "the process-wide Pillow limit (the embedders' too) is left alone"


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ImageRejected, match="cannot read"):
        probe(tmp_path / "gone.jpg", Limits())


def test_sniff_ignores_the_extension_and_names_the_kind() -> None:
    assert sniff(b"\xff\xd8\xff\xe0" + bytes(20)) == "JPEG"
    assert sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "WEBP"
    assert sniff(b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf") == "AVIF"
    assert sniff(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic") == "HEIF"
    for head, words in [(b"\x1aE\xdf\xa3\x01", "Matroska"), (b"PK\x03\x04", "ZIP"),
                        (b"RIFF\x00\x00\x00\x00AVI LIST", "AVI"), (b"\x00\x00\x00\x14ftypqt  ", "QuickTime"),
                        (b"<html><body>", "HTML page"), (b"\xef\xbb\xbf<svg xmlns='x'>", "SVG")]:
        with pytest.raises(ImageRejected, match=words):
            sniff(head)


def test_lane_by_pixel_count() -> None:
    small = SourceInfo("JPEG", "image/jpeg", 4000, 3000)
    panorama = SourceInfo("JPEG", "image/jpeg", 16000, 4000)
    assert classify_lane(small, 40_000_000) == "default"
    assert classify_lane(panorama, 40_000_000) == "large"
