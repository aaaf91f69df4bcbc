"""Pure imaging: admit, decode, orient, colour-manage, resize, encode, describe.

Nothing here imports the queue or the database; tasks call these functions
and translate :class:`ImageRejected` into the project's error hierarchy.
The names below load on first use (:mod:`jobs.lazy`): the config loader
imports ``jobs.imaging.types`` and ``recipes`` without Pillow or numpy.

>>> from jobs.imaging import Limits, Recipe, EncoderSpec, render  # doctest: +SKIP
>>> r = render(path, Recipe((320, 640), (EncoderSpec("avif", 60, 8),)), Limits())  # doctest: +SKIP

Modules: ``sniff`` (magic bytes), ``decode`` (admission + draft decode),
``color`` (ICC -> sRGB, 8-bit), ``resize`` (cascade, orientation),
``encode`` (WebP/AVIF with only an sRGB profile), ``metadata`` (capture
time, GPS), ``placeholder`` (ThumbHash, dominant colour), ``pipeline``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobs.lazy import exports

if TYPE_CHECKING:
    from jobs.imaging.pipeline import LANES, classify_lane, probe, render
    from jobs.imaging.resize import plan_widths
    from jobs.imaging.types import EncoderSpec, ImageRejected, Limits, Recipe, Rendered, SourceInfo, Variant

__all__ = [
    "LANES", "EncoderSpec", "ImageRejected", "Limits", "Recipe", "Rendered", "SourceInfo", "Variant",
    "classify_lane", "plan_widths", "probe", "render",
]
# Not here: ``sniff`` and ``encode``, functions named like their modules. Once
# anything imports ``jobs.imaging.sniff`` the package attribute ``sniff`` is that
# module, whatever a lazy export says: import them from their modules.

__getattr__ = exports(__name__, {
    "LANES": "pipeline", "classify_lane": "pipeline", "probe": "pipeline",
    "render": "pipeline", "plan_widths": "resize",
    **dict.fromkeys(("EncoderSpec", "ImageRejected", "Limits", "Recipe", "Rendered", "SourceInfo", "Variant"),
                    "types"),
})
