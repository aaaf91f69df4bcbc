"""Value types of the imaging pipeline. Pure: no project imports."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image


class ImageRejected(Exception):
    """The file is not an image we accept (permanent: retrying cannot help).

    The message is meant for a person: it names what was received or which
    limit was passed.
    """


@dataclass(frozen=True)
class EncoderSpec:
    format: str  # "webp" | "avif"
    quality: int
    effort: int  # WebP method (0-6) or AVIF speed (0-10)


@dataclass(frozen=True)
class Recipe:
    """What variants to make. Its fingerprint is stored on each completed row."""

    widths: tuple[int, ...]
    encoders: tuple[EncoderSpec, ...]
    keep_gps: bool = False
    animated_webp: bool = False
    name: str = "default"  # the [recipes.NAME] it came from ([variants] is "default")
    fit: str = "limit"  # limit | cover | contain (jobs/imaging/fit.py)
    aspect: tuple[int, int] | None = None  # (W, H) of the box, for cover and contain
    gravity: str = "centre"  # cover: centre | north | south | east | west | attention
    background: str = "#ffffff"  # contain: "#rrggbb" or "transparent"

    def fingerprint(self) -> str:
        """A hash of what shapes the variants (not the name; the geometry only when it is not plain limit).

        A plain ``limit`` recipe hashes as it did before recipes had a fit, so
        an upgrade does not make every image look stale.
        """
        fields = asdict(self)
        del fields["name"]
        if self.fit == "limit":
            for key in ("fit", "aspect", "gravity", "background"):
                del fields[key]
        elif self.fit == "cover":
            del fields["background"]
        else:
            del fields["gravity"]
        blob = json.dumps(fields, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


@dataclass(frozen=True)
class Limits:
    """Admission limits, checked from the header before any pixel is decoded (``[limits]``)."""

    max_pixels: int = 100_000_000
    max_side: int = 30_000
    max_frames: int = 500
    max_bytes: int = 200 * 1024 * 1024

    def check(self) -> None:
        """Raise ``ValueError("field: expected ...")`` for a limit that cannot work."""
        for name in ("max_pixels", "max_side", "max_frames", "max_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected an integer >= 1")


@dataclass(frozen=True)
class SourceInfo:
    format: str  # Pillow format name, e.g. "JPEG"
    mime_type: str
    width: int  # as displayed (after EXIF orientation)
    height: int
    frames: int = 1
    orientation: int = 1  # EXIF orientation 1-8 of the original (1 when absent)
    mode: str = ""  # Pillow mode of the stored pixels, e.g. "RGB", "CMYK", "I;16"
    bytes: int = 0  # size of the original file

    @property
    def pixels(self) -> int:
        return self.width * self.height


@dataclass(frozen=True)
class Variant:
    width: int
    height: int
    format: str  # "webp" | "avif"
    data: bytes
    frames: int = 1  # > 1 for an animated WebP (Recipe.animated_webp)


@dataclass(frozen=True)
class Rendered:
    source: SourceInfo
    variants: tuple[Variant, ...]
    orientation: int | None = None
    taken_at: str | None = None
    gps: dict[str, float] | None = None
    placeholder: str | None = None
    dominant_color: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    # render(..., embed_copy=True): the copy the local embedder describes (jobs/imaging/embed_copy.py)
    embed_copy: Image.Image | None = None
