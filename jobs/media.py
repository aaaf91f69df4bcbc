"""The media store: originals and variants laid out by image id only.

File names given by users are data, never paths: ``../../etc/passwd.jpg``
is stored in ``images.filename`` and nowhere else.

::

    media/originals/<id[-2:]>/<id><ext>
    media/variants/<id[-2:]>/<id>/<width>.<format>
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

TMP_PREFIX = ".tmp-"
CHUNK = 1024 * 1024  # bytes read at a time when copying or hashing a file
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


def open_temp(directory: Path, name: str, token: str | None = None) -> tuple[int, Path]:
    """Create ``.tmp-<token>-<name>`` in ``directory`` for writing; returns (fd, path).

    Created with mode 0666 and the process umask applied (as ``open`` does), so
    variants get the same permissions as any file the user's tools write;
    ``mkstemp`` would make them 0600, unreadable to a web server running as
    another user.
    """
    directory.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = directory / f"{TMP_PREFIX}{token or secrets.token_hex(4)}-{name}"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666), tmp
        except FileExistsError:
            if token is None:
                continue
            tmp.unlink(missing_ok=True)  # our own leftover from an earlier try of this attempt


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary name beside ``path``, then rename into place.

    A reader never sees a half-written file, and a crash leaves only a
    ``.tmp-*`` file that the orphan sweep removes. On any error (a full disk)
    the temporary file is removed.
    """
    tmp = write_temp(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        with _suppress():
            os.unlink(tmp)
        raise


def write_temp(path: Path, data: bytes, token: str | None = None) -> Path:
    """Write ``data`` beside ``path`` under a ``.tmp-`` name and return that name (not renamed).

    ``token`` names the attempt, so an attempt can rename or remove exactly its
    own files. Nothing is left behind when the write fails.
    """
    fd, tmp = open_temp(path.parent, path.name, token)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
    except BaseException:
        with _suppress():
            os.unlink(tmp)
        raise
    return tmp


class NewOriginal:
    """An original being written under its temporary name, hashed (SHA-256) and counted as it goes."""

    def __init__(self, rel: str, tmp: Path, fh: BinaryIO) -> None:
        self.rel, self.tmp, self.size = rel, tmp, 0
        self._fh, self._hash = fh, hashlib.sha256()

    def write(self, data: bytes) -> int:
        self._hash.update(data)
        self.size += len(data)
        return self._fh.write(data)

    def write_hashed(self, data: bytes, sha256: Any) -> None:
        """Write all of ``data``, whose SHA-256 the caller has already computed (``sha256``, a
        ``hashlib`` object fed exactly ``data``): the bytes are gone over once, not twice."""
        if self.size:
            raise ValueError("write_hashed writes the whole file: nothing may be written before it")
        self._hash = sha256
        self.size = len(data)
        self._fh.write(data)

    def copy_from(self, src: Path) -> bytes:
        """Copy (and hash) ``src`` in; returns its first chunk, for a header read from the same pass."""
        head = b""
        with open(src, "rb") as inp:
            for chunk in iter(lambda: inp.read(CHUNK), b""):
                head = head or chunk
                self.write(chunk)
        return head

    def close(self) -> None:
        """Flush and close the file (then ``tmp`` can be read); idempotent."""
        self._fh.close()

    @property
    def digest(self) -> str:
        return self._hash.hexdigest()


@contextmanager
def new_original(media_dir: Path, image_id: str, ext: str) -> Iterator[NewOriginal]:
    """Store an original: the one way both producers (``jobs/intake.py``, the Python API) do it.

    The block writes the bytes (``write``/``copy_from``), closes the file and
    records the row; the file is renamed into place only when the block ends
    without an error, so an id that turns out to be taken never overwrites that
    image's original, and on any error (a full disk, a refused row) the
    temporary file is removed: nothing partial is left behind. A row recorded
    in the block should be marked enqueued (``images.insert_image(enqueued=True)``),
    so the reconciler leaves it alone while the rename happens.

    >>> with new_original(media_dir, image_id, ".jpg") as original:  # doctest: +SKIP
    ...     original.copy_from(Path("upload.jpg"))
    ...     original.close()
    ...     images.insert_image(engine, original_path=original.rel, hash=original.digest, ...)
    """
    rel = original_relpath(image_id, ext)
    dest = media_dir / rel
    fd, tmp = open_temp(dest.parent, dest.name)  # mode 0666 & ~umask, like any file
    original = NewOriginal(rel, tmp, os.fdopen(fd, "wb"))
    try:
        yield original
        original.close()
        os.replace(tmp, dest)
    except BaseException:
        original.close()
        tmp.unlink(missing_ok=True)
        raise


def probe_writable(media_dir: Path) -> OSError | None:
    """Create and remove a small file in the media dir; the error if that fails, else None."""
    try:
        if not media_dir.is_dir():
            raise FileNotFoundError(2, "media directory is missing (a mount gone?)", str(media_dir))
        fd, tmp = open_temp(media_dir, f"probe-{os.getpid()}")
        try:
            os.write(fd, b"darkroom")
        finally:
            os.close(fd)
            with _suppress():
                os.unlink(tmp)
    except OSError as exc:
        return exc
    return None


def free_bytes(media_dir: Path) -> int | None:
    """Bytes available to us on the media dir's filesystem, or None if it cannot be read."""
    try:
        return int(shutil.disk_usage(media_dir).free)
    except OSError:
        return None


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return True


def resolve_original(media_dir: Path, original_path: str) -> Path:
    """The file of ``images.original_path``: absolute, or relative to the media dir."""
    p = Path(original_path)
    return p if p.is_absolute() else media_dir / p


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks (the hash :class:`NewOriginal` records)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()
