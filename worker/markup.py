"""Ready ``<picture>`` markup and ``srcset`` strings for an image's variants.

Pure functions from an ``images`` row and its ``image_variants`` rows to
text; the CLI (``darkroom variants --html``) and the Python API
(``Darkroom.picture``, ``Darkroom.srcset``) both call them, so the two never
disagree. Every value that reaches the markup goes through
:func:`html.escape`: alt text and file names are user data.

>>> print(picture(image, variants, "/media/", sizes="(min-width: 800px) 50vw, 100vw"))  # doctest: +SKIP
<picture>
  <source type="image/avif" srcset="/media/variants/12/0190...12/320.avif 320w, ..." sizes="...">
  <source type="image/webp" srcset="/media/variants/12/0190...12/320.webp 320w, ..." sizes="...">
  <img src="/media/variants/12/0190...12/640.webp" width="640" height="427" alt="A kite" ...>
</picture>

URLs are ``paths.media_url`` (a path such as ``/media/``, or an absolute
``https://`` URL of a CDN) joined with the variant's path under
``paths.media_dir``, percent-quoted.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence
from typing import Protocol
from urllib.parse import quote, urlsplit

DEFAULT_SIZES = "100vw"
DEFAULT_MEDIA_URL = "/media/"
# <source> order matters: the browser takes the first type it supports, so the
# smaller format comes first.
SOURCE_ORDER = ("avif", "webp")
MIME = {"avif": "image/avif", "webp": "image/webp"}
FALLBACK_ORDER = ("webp", "avif")  # the <img src>: WebP is decoded almost everywhere
HEX_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


class ImageNotReady(LookupError):
    """The image has no variants to show yet (pending, processing or failed)."""

    def __init__(self, image_id: str, status: str, error: str | None = None) -> None:
        self.image_id, self.status, self.error = image_id, status, error
        why = f": {error}" if status == "failed" and error else ""
        super().__init__(f"image {image_id!r} is {status}{why}; it has no variants yet")


class ImageRow(Protocol):
    """What the markup reads of an ``images`` row (``db.models.Image`` fits)."""

    @property
    def id(self) -> str: ...
    @property
    def status(self) -> str | None: ...
    @property
    def error(self) -> str | None: ...
    @property
    def width(self) -> int | None: ...
    @property
    def height(self) -> int | None: ...
    @property
    def metadata_(self) -> str | None: ...
    @property
    def dominant_color(self) -> str | None: ...


class VariantRow(Protocol):
    """What the markup reads of an ``image_variants`` row (``db.models.ImageVariant`` fits)."""

    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int | None: ...
    @property
    def format(self) -> str: ...
    @property
    def path(self) -> str: ...  # relative to the media dir


def check_media_url(value: str) -> str:
    """``value`` with a trailing ``/``; raises ``ValueError("expected ...")`` when it is no base URL.

    A base is a path that starts with ``/`` (same origin: ``/media/``) or an
    absolute ``http(s)://host/...`` URL (a CDN); neither may carry a query or
    a fragment, which the joined paths would land after.
    """
    expected = ("expected a path starting with '/' (such as /media/) or an absolute "
                "https:// URL, without ?query or #fragment")
    if not isinstance(value, str) or not value or any(c.isspace() for c in value):
        raise ValueError(expected)
    parts = urlsplit(value)
    if parts.query or parts.fragment or "?" in value or "#" in value:
        raise ValueError(expected)
    if parts.scheme:
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError(expected)
    elif not value.startswith("/") or value.startswith("//"):
        raise ValueError(expected)
    return value if value.endswith("/") else value + "/"


def variant_url(media_url: str, relpath: str) -> str:
    """The URL of a file under the media dir: ``media_url`` + the quoted path."""
    base = media_url if media_url.endswith("/") else media_url + "/"
    return base + quote(relpath.lstrip("/"), safe="/")


def alt_text(metadata_json: str | None) -> str:
    """``alt`` (or else ``caption``) from the row's metadata JSON; empty when neither is text."""
    if not metadata_json:
        return ""
    try:
        meta = json.loads(metadata_json)
    except ValueError:
        return ""
    if not isinstance(meta, dict):
        return ""
    for key in ("alt", "caption"):
        value = meta.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def by_format(variants: Sequence[VariantRow], fmt: str) -> list[VariantRow]:
    return sorted((v for v in variants if v.format == fmt), key=lambda v: v.width)


def srcset(variants: Sequence[VariantRow], fmt: str, media_url: str) -> str:
    """``URL 320w, URL 640w, ...`` for every width of ``fmt`` (not escaped: an attribute value)."""
    return ", ".join(f"{variant_url(media_url, v.path)} {v.width}w" for v in by_format(variants, fmt))


def fallback(variants: Sequence[VariantRow]) -> VariantRow:
    """The ``<img src>``: the middle width of WebP, else of the first format there is."""
    for fmt in (*FALLBACK_ORDER, *sorted({v.format for v in variants})):
        rows = by_format(variants, fmt)
        if rows:
            return rows[(len(rows) - 1) // 2]
    raise ValueError("no variants")


def ready(image: ImageRow, variants: Sequence[VariantRow]) -> None:
    """Raise :class:`ImageNotReady` unless the image is completed and has variants."""
    status = image.status or "pending"
    if status != "completed" or not variants:
        raise ImageNotReady(image.id, status, image.error)


def picture(image: ImageRow, variants: Sequence[VariantRow], media_url: str,
            sizes: str = DEFAULT_SIZES) -> str:
    """A ``<picture>`` element: one ``<source>`` per format (AVIF first), an ``<img>`` fallback.

    The ``<img>`` carries the fallback's ``width``/``height`` (so the page
    reserves the box before the file arrives), the ``alt`` text, lazy loading,
    async decoding and the dominant colour as a background placeholder.
    Raises :class:`ImageNotReady` for an image that is not completed.
    """
    ready(image, variants)
    esc = _esc
    lines = ["<picture>"]
    for fmt in (*SOURCE_ORDER, *sorted({v.format for v in variants} - set(SOURCE_ORDER))):
        if not by_format(variants, fmt):
            continue
        mime = MIME.get(fmt, f"image/{fmt}")
        lines.append(f'  <source type="{esc(mime)}" srcset="{esc(srcset(variants, fmt, media_url))}" '
                     f'sizes="{esc(sizes)}">')
    src = fallback(variants)
    height = src.height
    if height is None and image.width and image.height:
        height = round(src.width * image.height / image.width)
    attrs = [f'src="{esc(variant_url(media_url, src.path))}"', f'width="{int(src.width)}"']
    if height is not None:
        attrs.append(f'height="{int(height)}"')
    attrs += [f'alt="{esc(alt_text(image.metadata_))}"', 'loading="lazy"', 'decoding="async"']
    colour = image.dominant_color or ""
    if HEX_COLOUR.fullmatch(colour):  # anything else is not ours: never pasted into a style
        attrs.append(f'style="background-color: {esc(colour.lower())}"')
    lines.append(f'  <img {" ".join(attrs)}>')
    lines.append("</picture>")
    return "\n".join(lines)


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)
