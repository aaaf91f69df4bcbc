"""Box geometry of a recipe's fit, and the outputs made from a decoded frame. Pure.

- ``limit``: keep the image's aspect ratio; ``width x round(width * h / w)``.
- ``cover``: fill a ``W:H`` box: the largest ``W:H`` region of the source is
  cut out (where: :mod:`jobs.imaging.attention` or a fixed gravity) and scaled.
- ``contain``: fit the whole image inside the box and pad with ``background``.

Never upscale: a width is kept only if the source can fill it at scale <= 1
(``limit``: the source width; ``cover``: the width of the crop region;
``contain``: the width of the box that holds the source at full size). An
image always gets at least one output: the largest that fits.

Cost rule (docs/imaging.md): :attr:`Plan.decode_width` is the display width
the decoder must keep for the largest output (a JPEG draft no larger);
``cover`` crops the decoded pixels before any resize, every smaller output
is derived from the next larger one, and the crop is cut from the stored
(not yet rotated) pixels, so EXIF orientation costs a transpose of the
largest output only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from PIL import Image

from jobs.imaging.recipes import parse_background
from jobs.imaging.resize import cascade, cascade_sizes, plan_widths, variant_height
from jobs.imaging.types import Recipe


@dataclass(frozen=True)
class Plan:
    """What a recipe makes of a ``source`` (display width, height) image."""

    fit: str
    boxes: tuple[tuple[int, int], ...]  # output sizes, ascending by width
    region: tuple[int, int]  # cover: the crop's size in display pixels of the original; else the source size
    decode_width: int  # display width the decoded frame must keep


def plan(source: tuple[int, int], recipe: Recipe) -> Plan:
    """Output boxes of ``recipe`` for an upright ``source`` (width, height).

    >>> plan((4000, 3000), Recipe((64, 128), (), fit="cover", aspect=(1, 1))).boxes
    ((64, 64), (128, 128))
    >>> plan((100, 50), Recipe((64, 128), (), fit="cover", aspect=(1, 1))).boxes
    ((50, 50),)
    """
    sw, sh = source
    if recipe.fit == "limit" or recipe.aspect is None:
        widths = plan_widths(sw, recipe.widths)
        return Plan("limit", tuple((w, variant_height(w, sw, sh)) for w in widths), (sw, sh), widths[-1])
    aw, ah = recipe.aspect
    if recipe.fit == "cover":
        # The largest aw:ah region inside the source.
        if sw * ah > sh * aw:
            region = (max(1, min(sw, round(sh * aw / ah))), sh)
        else:
            region = (sw, max(1, min(sh, round(sw * ah / aw))))
        widest = region[0]
    elif recipe.fit == "contain":
        region = (sw, sh)
        widest = max(sw, round(sh * aw / ah))  # the box that holds the source at scale 1
    else:
        raise ValueError(f"unknown fit {recipe.fit!r}; expected limit, cover or contain")
    widths = plan_widths(widest, recipe.widths)
    boxes = tuple((w, box_height(w, recipe.aspect)) for w in widths)
    top = boxes[-1]
    if recipe.fit == "cover":
        decode_width = math.ceil(sw * top[0] / region[0])
    else:
        decode_width = inner_size(top, source)[0]
    return Plan(recipe.fit, boxes, region, min(sw, max(1, decode_width)))


def box_height(width: int, aspect: tuple[int, int]) -> int:
    return max(1, round(width * aspect[1] / aspect[0]))


def inner_size(box: tuple[int, int], source: tuple[int, int]) -> tuple[int, int]:
    """The size of ``source`` scaled to fit inside ``box`` (contain), at least 1x1."""
    bw, bh = box
    sw, sh = source
    scale = min(bw / sw, bh / sh)
    return max(1, min(bw, round(sw * scale))), max(1, min(bh, round(sh * scale)))


def make(frame: Image.Image, orientation: int, source: tuple[int, int], recipe: Recipe, p: Plan
         ) -> list[Image.Image]:
    """The upright outputs of ``p`` (ascending), from a decoded, sRGB ``frame`` in stored orientation.

    ``source`` is the upright size of the original; ``frame`` may be
    draft-reduced.
    """
    if p.fit == "limit":
        return cascade(frame, orientation, [w for w, _ in p.boxes], source)
    if p.fit == "cover":
        return _cover(frame, orientation, source, recipe, p)
    return _contain(frame, orientation, source, recipe, p)


def _cover(frame: Image.Image, orientation: int, source: tuple[int, int], recipe: Recipe, p: Plan
           ) -> list[Image.Image]:
    swapped = orientation in (5, 6, 7, 8)
    fw, fh = (frame.height, frame.width) if swapped else frame.size  # the frame's upright size
    scale = fw / source[0]
    rw, rh = min(fw, max(1, round(p.region[0] * scale))), min(fh, max(1, round(p.region[1] * scale)))
    left, top = _offset(frame, orientation, (fw, fh), (rw, rh), recipe.gravity)
    box = to_stored((left, top, left + rw, top + rh), orientation, frame.size)
    cropped = frame.crop(box)
    return cascade_sizes(cropped, orientation, p.boxes)


def _offset(frame: Image.Image, orientation: int, upright: tuple[int, int], region: tuple[int, int],
            gravity: str) -> tuple[int, int]:
    """Top-left corner of the crop in upright frame pixels."""
    fw, fh = upright
    rw, rh = region
    free_x, free_y = fw - rw, fh - rh
    if gravity == "attention" and (free_x or free_y):
        from jobs.imaging.attention import attention_offset  # numpy: only for recipes that ask for it

        return attention_offset(frame, orientation, region)
    x = {"east": free_x, "west": 0}.get(gravity, free_x // 2)
    y = {"south": free_y, "north": 0}.get(gravity, free_y // 2)
    return x, y


def _contain(frame: Image.Image, orientation: int, source: tuple[int, int], recipe: Recipe, p: Plan
             ) -> list[Image.Image]:
    inner = [inner_size(b, source) for b in p.boxes]
    images = cascade_sizes(frame, orientation, tuple(inner))
    rgba = parse_background(recipe.background) or (255, 255, 255, 255)
    out: list[Image.Image] = []
    for (bw, bh), im in zip(p.boxes, images, strict=True):
        if rgba[3] == 0:
            canvas = Image.new("RGBA", (bw, bh), rgba)
            im = im.convert("RGBA")
        else:
            canvas = Image.new("RGB", (bw, bh), rgba[:3])
        # Centred; the odd pixel of padding goes right / bottom.
        at = ((bw - im.width) // 2, (bh - im.height) // 2)
        canvas.paste(im, at, im if im.mode == "RGBA" else None)
        out.append(canvas)
    return out


def to_stored(box: tuple[int, int, int, int], orientation: int, stored: tuple[int, int]
              ) -> tuple[int, int, int, int]:
    """A (left, top, right, bottom) box in upright pixels, as the same region of the stored pixels.

    >>> to_stored((0, 0, 10, 20), 6, (300, 200))  # upright is 200x300; its top-left is the stored bottom-left
    (0, 190, 20, 200)
    """
    w0, h0 = stored
    left, top, right, bottom = box

    def back(x: int, y: int) -> tuple[int, int]:
        return {
            2: (w0 - x, y), 3: (w0 - x, h0 - y), 4: (x, h0 - y), 5: (y, x),
            6: (y, h0 - x), 7: (w0 - y, h0 - x), 8: (w0 - y, x),
        }.get(orientation, (x, y))

    (x1, y1), (x2, y2) = back(left, top), back(right, bottom)
    return min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)
