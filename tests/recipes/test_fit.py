"""Output sizes of every fit, the never-upscale and at-least-one rules, crops, padding, orientation."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jobs.imaging import EncoderSpec, Limits, Recipe, render
from jobs.imaging.fit import plan, to_stored
from jobs.imaging.resize import orient
from tests.recipes.images import GREY, RED, busy_subject, marked, save

WEBP = (EncoderSpec("webp", 90, 0),)


def recipe(widths: tuple[int, ...], fit: str = "limit", aspect: tuple[int, int] | None = None,
           gravity: str = "centre", background: str = "#ffffff") -> Recipe:
    return Recipe(widths=widths, encoders=WEBP, fit=fit, aspect=aspect, gravity=gravity, background=background)


def sizes(path: Path, r: Recipe) -> list[tuple[int, int]]:
    out = render(path, r, Limits())
    for v in out.variants:  # the bytes agree with the row
        assert Image.open(io.BytesIO(v.data)).size == (v.width, v.height)
    return [(v.width, v.height) for v in out.variants]


def opened(path: Path, r: Recipe) -> Image.Image:
    v = max(render(path, r, Limits()).variants, key=lambda v: v.width)
    return Image.open(io.BytesIO(v.data))


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("fit")
    landscape = marked((1200, 800))
    return {
        "landscape": save(landscape, d / "landscape.jpg"),
        "portrait": save(marked((800, 1200)), d / "portrait.jpg"),
        "orient_6": save(landscape, d / "orient_6.jpg", 6),  # stored 800x1200, upright 1200x800
        "orient_8": save(landscape, d / "orient_8.jpg", 8),
        "tiny": save(marked((40, 30)), d / "tiny.jpg"),
    }


WIDTHS = (64, 256, 1000)
# (source, fit, aspect) -> output sizes. 1000 px is more than a 1200x800 source's 800x800 square
# crop holds (skipped), but fits a 1000x1000 contain box (the picture is 1000x667 inside, scale < 1).
CASES = [
    ("landscape", "limit", None, [(64, 43), (256, 171), (1000, 667)]),
    ("landscape", "cover", (1, 1), [(64, 64), (256, 256)]),
    ("landscape", "cover", (16, 9), [(64, 36), (256, 144), (1000, 562)]),
    ("landscape", "contain", (1, 1), [(64, 64), (256, 256), (1000, 1000)]),
    ("portrait", "limit", None, [(64, 96), (256, 384)]),
    ("portrait", "cover", (1, 1), [(64, 64), (256, 256)]),
    ("portrait", "cover", (16, 9), [(64, 36), (256, 144)]),
    ("portrait", "contain", (16, 9), [(64, 36), (256, 144), (1000, 562)]),
    ("tiny", "limit", None, [(40, 30)]),
    ("tiny", "cover", (1, 1), [(30, 30)]),  # at least one: the largest square the source holds
    ("tiny", "cover", (16, 9), [(40, 22)]),
    ("tiny", "contain", (1, 1), [(40, 40)]),
]


@pytest.mark.parametrize(("name", "fit", "aspect", "expected"), CASES)
def test_output_sizes_per_fit(sources: dict[str, Path], name: str, fit: str, aspect: tuple[int, int] | None,
                              expected: list[tuple[int, int]]) -> None:
    assert sizes(sources[name], recipe(WIDTHS, fit, aspect)) == expected


@pytest.mark.parametrize("name", ["orient_6", "orient_8"])
@pytest.mark.parametrize(("fit", "aspect"), [("limit", None), ("cover", (1, 1)), ("cover", (16, 9)),
                                             ("contain", (1, 1))])
def test_exif_rotated_sources_size_like_the_upright_picture(sources: dict[str, Path], name: str, fit: str,
                                                            aspect: tuple[int, int] | None) -> None:
    assert sizes(sources[name], recipe(WIDTHS, fit, aspect)) == sizes(sources["landscape"],
                                                                      recipe(WIDTHS, fit, aspect))


@pytest.mark.parametrize("name", ["landscape", "orient_6", "orient_8"])
def test_cover_crops_the_upright_picture_at_its_gravity(sources: dict[str, Path], name: str) -> None:
    west = np.asarray(opened(sources[name], recipe((200,), "cover", (1, 1), "west")).convert("RGB")).astype(int)
    east = np.asarray(opened(sources[name], recipe((200,), "cover", (1, 1), "east")).convert("RGB")).astype(int)
    # The red mark is the upright top-left: kept by a west crop (at its top-left), cut by an east one.
    assert np.abs(west[10, 10] - RED).max() < 40
    assert np.abs(west[190, 190] - GREY).max() < 40
    assert np.abs(east[10, 10] - GREY).max() < 40


@pytest.mark.parametrize("orientation", range(1, 9))
def test_a_crop_of_the_stored_pixels_is_the_same_region_upright(orientation: int) -> None:
    stored = Image.fromarray(np.random.default_rng(orientation).integers(0, 255, (40, 60, 3), dtype=np.uint8))
    upright = orient(stored, orientation)
    box = (3, 5, 3 + 17, 5 + 11)
    assert upright.width - box[2] > 0 and upright.height - box[3] > 0
    got = orient(stored.crop(to_stored(box, orientation, stored.size)), orientation)
    assert np.array_equal(np.asarray(got), np.asarray(upright.crop(box)))


def test_never_upscale_and_at_least_one_variant_in_every_fit() -> None:
    for fit, aspect in (("limit", None), ("cover", (1, 1)), ("cover", (3, 1)), ("contain", (1, 1)),
                        ("contain", (1, 3))):
        for source in ((10, 10), (7, 300), (300, 7), (1, 1), (4000, 3000)):
            p = plan(source, recipe((64, 128, 256, 5000), fit, aspect))
            assert p.boxes, (fit, source)
            assert p.decode_width <= source[0]
            if fit == "cover":  # the crop region is never smaller than the largest output
                assert p.boxes[-1][0] <= p.region[0] and p.boxes[-1][1] <= p.region[1] + 1
            if fit == "contain":  # the picture inside the box is never larger than the source
                bw, bh = p.boxes[-1]
                assert min(bw / source[0], bh / source[1]) <= 1.0 + 1e-9


def test_cover_decodes_at_the_scale_its_largest_output_needs() -> None:
    # A 256 px square from a 4000x3000 photo needs the 3000 px tall region at 256 px: about 1/11.
    p = plan((4000, 3000), recipe((64, 128, 256), "cover", (1, 1)))
    assert p.decode_width == 342


@pytest.fixture(scope="module")
def subject_photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 1200x600, flat grey, a busy 260x200 patch near the left edge.
    return save(busy_subject((1200, 600), (40, 200, 300, 400)), tmp_path_factory.mktemp("att") / "subject.jpg")


def subject_pixels(im: Image.Image) -> int:
    a = np.asarray(im.convert("RGB")).astype(int)
    return int((np.abs(a - GREY).max(axis=2) > 24).sum())


def test_attention_keeps_an_off_centre_subject_whole_and_centre_does_not(subject_photo: Path) -> None:
    whole = (260 * 200) * (256 / 600) ** 2  # the patch's area in a 256 px square of the 600 px crop
    attention = opened(subject_photo, recipe((256,), "cover", (1, 1), "attention"))
    centre = opened(subject_photo, recipe((256,), "cover", (1, 1), "centre"))
    assert attention.size == centre.size == (256, 256)
    assert subject_pixels(attention) >= 0.95 * whole
    assert subject_pixels(centre) < 0.2 * whole
    # deterministic
    again = opened(subject_photo, recipe((256,), "cover", (1, 1), "attention"))
    assert np.array_equal(np.asarray(attention), np.asarray(again))


def test_attention_follows_the_subject_to_the_other_side(tmp_path: Path) -> None:
    path = save(busy_subject((600, 1200), (200, 880, 400, 1160)), tmp_path / "tall.jpg")  # near the bottom
    out = np.asarray(opened(path, recipe((200,), "cover", (1, 1), "attention")).convert("RGB")).astype(int)
    busy_rows = np.flatnonzero((np.abs(out - GREY).max(axis=2) > 24).any(axis=1))
    # the whole 280 px tall patch (93 rows at 1/3) is in, in the lower part of the square
    assert busy_rows.max() - busy_rows.min() >= 90 and busy_rows.min() > 60


@pytest.mark.parametrize(("size", "padded"), [((300, 100), "top_bottom"), ((100, 300), "left_right")])
def test_contain_pads_with_the_background_on_the_right_sides(tmp_path: Path, size: tuple[int, int],
                                                             padded: str) -> None:
    path = tmp_path / "src.png"
    Image.new("RGB", size, (20, 40, 200)).save(path)
    out = np.asarray(opened(path, recipe((90,), "contain", (1, 1), background="#ff8000")).convert("RGB"))
    assert out.shape[:2] == (90, 90)
    pad, picture = np.array([255, 128, 0]), np.array([20, 40, 200])
    near = lambda px, colour: int(np.abs(px.astype(int) - colour).max()) < 30  # noqa: E731
    assert near(out[45, 45], picture)
    if padded == "top_bottom":  # a 90x30 picture, 30 rows of padding above and below
        assert near(out[5, 45], pad) and near(out[84, 45], pad)
        assert near(out[45, 2], picture) and near(out[45, 87], picture)
    else:
        assert near(out[45, 5], pad) and near(out[45, 84], pad)
        assert near(out[2, 45], picture) and near(out[87, 45], picture)


def test_contain_transparent_keeps_alpha_in_both_formats(tmp_path: Path) -> None:
    path = tmp_path / "src.png"
    Image.new("RGB", (300, 100), (20, 40, 200)).save(path)
    r = Recipe(widths=(90,), encoders=(EncoderSpec("webp", 90, 0), EncoderSpec("avif", 70, 10)), fit="contain",
               aspect=(1, 1), background="transparent")
    for v in render(path, r, Limits()).variants:
        im = Image.open(io.BytesIO(v.data))
        assert im.mode == "RGBA", v.format
        alpha = np.asarray(im)[..., 3]
        assert alpha[5, 45] < 10 and alpha[84, 45] < 10, v.format  # padding: transparent
        assert alpha[45, 45] > 245, v.format  # the picture: opaque


def test_attention_is_drawn_by_skin_tones_on_a_smooth_picture(tmp_path: Path) -> None:
    # Little detail anywhere (soft blobs), two equal-sized blobs: a skin-toned one right, a grey-blue one left.
    from PIL import ImageDraw, ImageFilter

    im = Image.new("RGB", (1200, 600), (90, 100, 110))
    draw = ImageDraw.Draw(im)
    draw.ellipse((80, 200, 280, 400), fill=(110, 120, 130))
    draw.ellipse((900, 200, 1100, 400), fill=(224, 172, 140))  # a light skin tone
    path = tmp_path / "skin.png"
    im.filter(ImageFilter.GaussianBlur(6)).save(path)
    blob = 3.14159 * 100 ** 2 * (200 / 600) ** 2  # its area in the 200 px square of the 600 px crop

    def skin(gravity: str) -> int:
        out = np.asarray(opened(path, recipe((200,), "cover", (1, 1), gravity)).convert("RGB")).astype(int)
        return int((np.abs(out - (224, 172, 140)).max(axis=2) < 30).sum())

    assert skin("attention") > 0.7 * blob  # the skin blob is in the crop (its blurred rim aside)
    assert skin("centre") < 0.1 * blob
