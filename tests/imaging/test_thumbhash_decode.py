"""ThumbHash decoding (the status page shows each image's placeholder as a picture)."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from PIL import Image, ImageDraw

from jobs.imaging.placeholder import thumbhash, thumbhash_image


@pytest.mark.parametrize("size", [(40, 20), (20, 40), (100, 100)])
def test_flat_colours_and_aspect_come_back(size: tuple[int, int]) -> None:
    out = thumbhash_image(thumbhash(Image.new("RGB", size, (30, 170, 40))))
    assert max(out.size) == 32 and abs(out.width / out.height - size[0] / size[1]) < 0.25
    mean = np.asarray(out).reshape(-1, 4).mean(axis=0)
    assert np.allclose(mean, (30, 170, 40, 255), atol=6)


def test_layout_and_transparency_survive() -> None:
    im = Image.new("RGBA", (80, 40), (0, 0, 0, 0))
    draw = ImageDraw.Draw(im)
    draw.rectangle((0, 0, 39, 39), fill=(255, 0, 0, 255))
    draw.rectangle((40, 0, 79, 39), fill=(0, 0, 255, 255))
    opaque = np.asarray(thumbhash_image(thumbhash(im.convert("RGB"))))
    assert opaque[8, 2, 0] > 200 > opaque[8, 2, 2] and opaque[8, -3, 2] > 200 > opaque[8, -3, 0]
    disc = Image.new("RGBA", (60, 60), (0, 0, 0, 0))
    ImageDraw.Draw(disc).ellipse((15, 15, 45, 45), fill=(250, 200, 0, 255))
    alpha = np.asarray(thumbhash_image(thumbhash(disc)))[..., 3]
    assert alpha[16, 16] > 200 and alpha[0, 0] < 60


def test_garbage_is_refused() -> None:
    with pytest.raises(ValueError):
        thumbhash_image(base64.b64encode(b"abc").decode())
    with pytest.raises(ValueError):
        thumbhash_image("not base64 at all!")
