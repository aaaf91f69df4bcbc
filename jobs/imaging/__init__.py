"""Pure imaging: decode, orient, colour-manage, resize, encode.

Nothing here imports the queue or the database; tasks call these functions
and translate :class:`ImageRejected` into the project's error hierarchy.
"""

from jobs.imaging.pipeline import encode, plan_widths, probe, render
from jobs.imaging.types import EncoderSpec, ImageRejected, Limits, Recipe, Rendered, SourceInfo, Variant

__all__ = [
    "EncoderSpec", "ImageRejected", "Limits", "Recipe", "Rendered", "SourceInfo", "Variant",
    "encode", "plan_widths", "probe", "render",
]
