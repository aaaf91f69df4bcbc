"""Darkroom's public Python API, for other programs.

>>> from darkroom_api import Darkroom
>>> dr = Darkroom.from_config("config.toml")  # doctest: +SKIP
>>> image_id = dr.submit("photo.jpg", metadata={"album": "summer"})  # doctest: +SKIP
>>> dr.wait(image_id, timeout=30).status  # a worker is running  # doctest: +SKIP
'completed'

See docs/api.md.
"""

from worker.api import Darkroom, ImageExists, ImageNotFound, ImageNotReady, ImageStatus, UnknownRecipe, Variant

__all__ = ["Darkroom", "ImageExists", "ImageNotFound", "ImageNotReady", "ImageStatus", "UnknownRecipe",
           "Variant"]
