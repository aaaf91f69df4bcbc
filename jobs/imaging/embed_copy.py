"""The small copy the local embedder describes, made from the pixels the image job decoded. Pure.

The image job decodes each original once (a JPEG draft no smaller than its
recipe's largest output), converts it to sRGB and makes every variant from
those pixels. :func:`embed_copy` makes a copy of at most ``EMBED_SIDE`` px
from the same pixels, so the job can embed the image without opening the
file again. :func:`load_embed_copy` makes the very same copy from the file
(same admission, same draft, same colour conversion, same resize): the
embedding step uses it for rows the job did not embed (a model switch, rows
from before an upgrade, a vector lost from the store), and both paths give
identical pixels, hence identical vectors.

The copy comes from the decoded frame, not from the variants: a ``cover``
or ``contain`` recipe crops or pads its variants, while the embedding
describes the whole picture.

>>> load_embed_copy(Path("photo.jpg"), recipe, Limits()).size  # doctest: +SKIP
(256, 192)
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from jobs.imaging.color import to_srgb
from jobs.imaging.decode import decode, open_checked
from jobs.imaging.fit import plan
from jobs.imaging.resize import orient
from jobs.imaging.types import Limits, Recipe

EMBED_SIDE = 256  # px of the longer side; the descriptor itself works on 64 px and 32 px copies
REDUCING_GAP = 2.0  # box-reduce first, then bilinear over the last stretch: a few ms from 2,000 px


def embed_copy(frame: Image.Image, orientation: int) -> Image.Image:
    """An upright RGB copy of ``frame`` (decoded sRGB pixels in stored orientation), longer side <= EMBED_SIDE.

    >>> embed_copy(Image.new("RGB", (4000, 3000)), 6).size
    (192, 256)
    """
    w, h = frame.size
    scale = min(1.0, EMBED_SIDE / max(w, h))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    # Always a new image: it outlives the decoded file, which is closed when the render ends.
    small = frame.copy() if size == frame.size else frame.resize(size, Image.Resampling.BILINEAR,
                                                                 reducing_gap=REDUCING_GAP)
    small = orient(small, orientation)
    return small if small.mode == "RGB" else small.convert("RGB")


def load_embed_copy(path: Path, recipe: Recipe, limits: Limits) -> Image.Image:
    """The copy the image job makes of ``path`` under ``recipe``, made from the file.

    Raises :class:`~jobs.imaging.types.ImageRejected` for a file the job
    would refuse.
    """
    with open_checked(path, limits) as (im, info):
        geometry = plan((info.width, info.height), recipe)
        icc = im.info.get("icc_profile")
        frame = to_srgb(decode(im, info, geometry.decode_width), icc)
        return embed_copy(frame, info.orientation)
