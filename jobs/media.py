"""The media store: originals and variants laid out by image id only.

File names given by users are data, never paths: ``../../etc/passwd.jpg``
is stored in ``images.filename`` and nowhere else.

::

    media/originals/<id[-2:]>/<id><ext>
    media/variants/<id[-2:]>/<id>/<width>.<format>
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

TMP_PREFIX = ".tmp-"
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_SAFE_EXT = re.compile(r"^\.[a-z0-9]{1,8}$")


def _shard(image_id: str) -> str:
    if not _SAFE_ID.match(image_id) or ".." in image_id:
        raise ValueError(f"image id {image_id!r} cannot be used in a path")
    return image_id[-2:]


def original_relpath(image_id: str, ext: str) -> str:
    ext = ext.lower()
    if not _SAFE_EXT.match(ext):
        ext = ".bin"
    return f"originals/{_shard(image_id)}/{image_id}{ext}"


def variant_relpath(image_id: str, width: int, fmt: str) -> str:
    return f"variants/{_shard(image_id)}/{image_id}/{int(width)}.{fmt}"


def variant_dir(media_dir: Path, image_id: str) -> Path:
    return media_dir / "variants" / _shard(image_id) / image_id


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary name beside ``path``, then rename into place.

    A reader never sees a half-written file, and a crash leaves only a
    ``.tmp-*`` file that the orphan sweep removes.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with _suppress():
            os.unlink(tmp)
        raise


def atomic_copy(src: Path, dest: Path) -> None:
    """Copy ``src`` to ``dest`` through a temporary name."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
            shutil.copyfileobj(inp, out, 1024 * 1024)
        os.replace(tmp, dest)
    except BaseException:
        with _suppress():
            os.unlink(tmp)
        raise


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return True


def resolve_original(media_dir: Path, original_path: str) -> Path:
    """The file of ``images.original_path``: absolute, or relative to the media dir."""
    p = Path(original_path)
    return p if p.is_absolute() else media_dir / p
