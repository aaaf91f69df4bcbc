"""Every legitimate case renders right: orientation, colour, alpha, bit depth, metadata, placeholder."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from jobs.imaging import EncoderSpec, Limits, Recipe, Rendered, Variant, render
from jobs.imaging.placeholder import thumbhash_average
from tests.imaging.cases import BASE, CMYK_INK, MARK, P3_COLOUR, UPRIGHT, oriented_animation
from tests.imaging.icc import p3_to_srgb8, press_rgb

FORMATS = ("webp", "avif")


def opened(v: Variant) -> Image.Image:
    im = Image.open(io.BytesIO(v.data))
    im.load()
    return im


def largest(r: Rendered, fmt: str) -> Image.Image:
    return opened(max((v for v in r.variants if v.format == fmt), key=lambda v: v.width))


def centre(im: Image.Image) -> tuple[int, ...]:
    return tuple(np.asarray(im.convert("RGB"))[im.height // 2, im.width // 2])


def close(a: tuple[int, ...], b: tuple[int, ...], delta: int) -> bool:
    return max(abs(int(x) - int(y)) for x, y in zip(a, b)) <= delta


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_puts_the_mark_top_left(legit: dict[str, Path], recipe: Recipe, orientation: int) -> None:
    r = render(legit[f"orient_{orientation}.jpg"], recipe, Limits())
    assert r.orientation == orientation
    assert (r.source.width, r.source.height) == UPRIGHT
    for fmt in FORMATS:
        im = largest(r, fmt).convert("RGB")
        assert im.width > im.height, "upright picture is landscape"
        arr = np.asarray(im).astype(int)
        top_left = arr[: im.height // 6, : im.width // 6].mean(axis=(0, 1))
        top_right = arr[: im.height // 6, -im.width // 6:].mean(axis=(0, 1))
        bottom = arr[-2:, :].mean(axis=(0, 1))
        assert close(tuple(top_left.round().astype(int)), MARK, 30), (fmt, top_left)
        assert close(tuple(top_right.round().astype(int)), BASE, 30), (fmt, top_right)
        assert bottom.mean() < 140, "the grey bar stays at the bottom"
        assert 0x0112 not in opened(max((v for v in r.variants if v.format == fmt), key=lambda v: v.width)).getexif()


@pytest.mark.parametrize("orientation", [3, 5, 6, 7, 8])
def test_exif_orientation_turns_every_frame_of_an_animation(tmp_path: Path, recipe: Recipe, orientation: int
                                                             ) -> None:
    src = tmp_path / f"anim_{orientation}.webp"
    src.write_bytes(oriented_animation(orientation))
    r = render(src, dataclasses.replace(recipe, animated_webp=True), Limits())
    assert (r.source.width, r.source.height) == UPRIGHT
    webp = max((v for v in r.variants if v.format == "webp"), key=lambda v: v.width)
    im = Image.open(io.BytesIO(webp.data))
    assert getattr(im, "n_frames", 1) == 2
    for i in range(2):
        im.seek(i)
        arr = np.asarray(im.convert("RGB")).astype(int)
        h, w = arr.shape[:2]
        assert (w, h) == (webp.width, webp.height) and w > h
        assert close(tuple(arr[: h // 6, : w // 6].mean(axis=(0, 1)).round().astype(int)), MARK, 30), (i, orientation)
        assert close(tuple(arr[: h // 6, -w // 6:].mean(axis=(0, 1)).round().astype(int)), BASE, 30), (i, orientation)


def test_alpha_is_kept_in_both_formats(legit: dict[str, Path], recipe: Recipe) -> None:
    r = render(legit["alpha.png"], recipe, Limits())
    for fmt in FORMATS:
        im = largest(r, fmt)
        assert im.mode == "RGBA", fmt
        arr = np.asarray(im)
        assert arr[:, -5:, 3].max() <= 5, "right half stays transparent"
        assert arr[:, :5, 3].min() >= 250, "left half stays opaque"
        assert close(tuple(arr[10, 10, :3]), (30, 120, 200), 8)


@pytest.mark.parametrize("name", ["cmyk_adobe.jpg", "cmyk_no_app14.jpg"])
def test_cmyk_with_profile_matches_its_srgb_value(legit: dict[str, Path], recipe: Recipe, name: str) -> None:
    expected = tuple(round(v * 255) for v in press_rgb(*(c / 255 for c in CMYK_INK)))
    naive = (255, 0, 0)
    r = render(legit[name], recipe, Limits())
    for fmt in FORMATS:
        got = centre(largest(r, fmt))
        assert close(got, expected, 8), (fmt, got, expected)
        assert not close(got, naive, 20), "the embedded profile was ignored"


def test_display_p3_converted_to_srgb(legit: dict[str, Path], recipe: Recipe) -> None:
    expected = p3_to_srgb8(P3_COLOUR)
    assert not close(expected, P3_COLOUR, 5), "the test colour must differ between P3 and sRGB"
    r = render(legit["p3.png"], recipe, Limits())
    for fmt in FORMATS:
        assert close(centre(largest(r, fmt)), expected, 6), fmt


def test_16_bit_is_scaled_not_clipped(legit: dict[str, Path], recipe: Recipe) -> None:
    for name in ("gray16.png", "rgb48.png"):
        r = render(legit[name], recipe, Limits())
        arr = np.asarray(largest(r, "webp").convert("RGB")).astype(int)
        row = arr[arr.shape[0] // 2, :, 0]
        assert row[0] < 15 and row[-1] > 240
        mid = row[len(row) // 2]
        assert 100 < mid < 160, f"{name}: mid-grey became {mid} (clipped?)"
        assert np.all(np.diff(row) >= -6), "a smooth ramp stays monotonic"
    blue = np.asarray(largest(render(legit["rgb48.png"], recipe, Limits()), "webp").convert("RGB"))[..., 2]
    assert abs(int(np.median(blue)) - 40000 // 257) <= 6


@pytest.mark.parametrize("name", [
    "bilevel.png", "gray.jpg", "gray_alpha.png", "palette.png", "palette_transparent.gif", "photo.webp",
    "photo.tiff", "photo.bmp", "photo.avif", "photo.heic", "animated.gif", "animated.webp", "tiny.png",
])
def test_every_input_kind_renders_8_bit_srgb_variants(legit: dict[str, Path], recipe: Recipe, name: str) -> None:
    r = render(legit[name], recipe, Limits())
    assert {v.format for v in r.variants} == set(FORMATS)
    for v in r.variants:
        im = opened(v)
        assert im.mode in ("RGB", "RGBA"), (name, v.format, im.mode)
        assert (im.width, im.height) == (v.width, v.height)
        if v.format == "avif":
            assert avif_bit_depth(v.data) == 8
    assert r.placeholder and len(r.placeholder) < 60
    assert r.dominant_color and r.dominant_color.startswith("#") and len(r.dominant_color) == 7


def test_alpha_survives_grey_alpha_and_palette_transparency(legit: dict[str, Path], recipe: Recipe) -> None:
    for name in ("gray_alpha.png", "palette_transparent.gif"):
        r = render(legit[name], recipe, Limits())
        for fmt in FORMATS:
            im = largest(r, fmt)
            assert im.mode == "RGBA" and np.asarray(im)[..., 3].min() < 10, (name, fmt)


def test_photo_formats_agree_with_the_jpeg(legit: dict[str, Path], recipe: Recipe) -> None:
    ref = np.asarray(largest(render(legit["orient_1.jpg"], recipe, Limits()), "webp").convert("RGB")).astype(int)
    for name in ("photo.webp", "photo.tiff", "photo.bmp", "photo.avif", "photo.heic"):
        got = np.asarray(largest(render(legit[name], recipe, Limits()), "webp").convert("RGB")).astype(int)
        assert got.shape == ref.shape and np.abs(got - ref).mean() < 6, name


def test_variants_carry_only_the_srgb_profile(legit: dict[str, Path], recipe: Recipe) -> None:
    r = render(legit["gps_exif.jpg"], recipe, Limits())
    for v in r.variants:
        im = opened(v)
        assert not im.info.get("exif") and not im.getexif(), v.format
        assert not im.info.get("xmp"), v.format
        assert b"secret" not in v.data and b"TestCam" not in v.data
        desc = ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(im.info["icc_profile"])))
        assert "sRGB" in desc
    for name in ("cmyk_adobe.jpg", "p3.png"):
        for v in render(legit[name], recipe, Limits()).variants:
            assert len(opened(v).info["icc_profile"]) < 1000, "no stale CMYK/P3 profile re-embedded"


def test_capture_time_always_gps_only_when_asked(legit: dict[str, Path], recipe: Recipe) -> None:
    private = render(legit["gps_exif.jpg"], recipe, Limits())
    assert private.taken_at == "2023-07-14T18:02:09+02:00"
    assert private.gps is None
    kept = render(legit["gps_exif.jpg"], dataclasses.replace(recipe, keep_gps=True), Limits())
    assert kept.gps is not None
    assert kept.gps["lat"] == pytest.approx(48.8582, abs=1e-3)
    assert kept.gps["lon"] == pytest.approx(-2.2945, abs=1e-3)
    assert render(legit["photo.tiff"], recipe, Limits()).taken_at is None


def test_animated_first_frame_by_default_and_animated_webp_on_request(legit: dict[str, Path], recipe: Recipe
                                                                      ) -> None:
    for name in ("animated.gif", "animated.webp"):
        still = render(legit[name], recipe, Limits())
        assert all(v.frames == 1 for v in still.variants)
        assert close(centre(largest(still, "webp")), (250, 0, 0), 12)
        moving = render(legit[name], dataclasses.replace(recipe, animated_webp=True), Limits())
        webp = [v for v in moving.variants if v.format == "webp"]
        assert webp and all(v.frames == 3 for v in webp)
        im = Image.open(io.BytesIO(webp[0].data))
        assert getattr(im, "n_frames", 1) == 3
        im.seek(2)
        assert close(centre(im), (0, 0, 250), 12)


def test_widths_cascade_and_never_upscale(legit: dict[str, Path]) -> None:
    recipe = Recipe(widths=(30, 60, 90, 4000), encoders=(EncoderSpec("webp", 80, 4),))
    r = render(legit["orient_6.jpg"], recipe, Limits())
    assert [(v.width, v.height) for v in r.variants] == [(30, 20), (60, 40), (90, 60)]
    tiny = render(legit["tiny.png"], recipe, Limits())
    assert [(v.width, v.height) for v in tiny.variants] == [(20, 10)]
    assert {"decode", "color", "resize", "encode_webp", "placeholder"} <= set(r.timings)


def test_placeholder_encodes_the_picture(legit: dict[str, Path], recipe: Recipe) -> None:
    r = render(legit["cmyk_adobe.jpg"], recipe, Limits())
    assert r.placeholder is not None
    avg = tuple(round(c * 255) for c in thumbhash_average(r.placeholder)[:3])
    expected = tuple(round(v * 255) for v in press_rgb(*(c / 255 for c in CMYK_INK)))
    assert close(avg, expected, 12)
    assert r.dominant_color is not None
    assert close(tuple(int(r.dominant_color[i:i + 2], 16) for i in (1, 3, 5)), expected, 8)


def test_large_jpeg_is_draft_decoded(tmp_path: Path) -> None:
    src = tmp_path / "big.jpg"
    Image.new("RGB", (4000, 3000), (120, 140, 160)).save(src, "JPEG", quality=80)
    recipe = Recipe(widths=(320, 640), encoders=(EncoderSpec("webp", 80, 0),))
    r = render(src, recipe, Limits())
    assert [v.width for v in r.variants] == [320, 640]
    assert (r.source.width, r.source.height) == (4000, 3000)


def avif_bit_depth(data: bytes) -> int:
    """Bits per channel from the AVIF 'pixi' property box."""
    at = data.find(b"pixi")
    assert at > 0, "AVIF without a pixi box"
    channels = data[at + 8]
    depths = set(data[at + 9: at + 9 + channels])
    assert len(depths) == 1
    return depths.pop()
