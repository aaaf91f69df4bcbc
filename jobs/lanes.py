"""Lanes: big-but-legal images wait behind small ones and run a few at a time.

Two mechanisms, both cheap:

- **Priority.** An image over ``imaging.large_pixels`` (read from its header
  at intake, or at claim time for rows other programs inserted) is enqueued
  at ``PRIORITY_LARGE``; huey dequeues higher priorities first (SQLite
  ``ORDER BY priority DESC``, Redis priority lists), so small uploads never
  queue behind a panorama.
- **Slots.** At most ``imaging.large_slots`` large images are processed at
  once per data directory: a worker takes a slot with a non-blocking
  ``flock`` on ``<data_dir>/lanes/large-<n>.lock``. The kernel drops the lock
  when the process dies, so a killed worker never leaks a slot. A worker
  that finds every slot busy gives the row back (attempt refunded) and
  schedules it a few seconds later, staying free for small uploads.

>>> lane_for_pixels(16000 * 6000, 40_000_000)
'large'
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from jobs import imaging

log = logging.getLogger(__name__)

DEFAULT = "default"
LARGE = "large"
BUSY_RETRY_S = 2.0  # a large image that found every slot busy is tried again after this long


def lane_for_pixels(pixels: int, large_pixels: int) -> str:
    return LARGE if pixels > large_pixels else DEFAULT


def lane_of(path: Path, limits: imaging.Limits, large_pixels: int) -> str:
    """The lane of the original at ``path``, from its header only; ``default`` if it cannot be read
    (the render then fails it with the real reason)."""
    from jobs.imaging.decode import open_checked  # the header only: not the pipeline (numpy)

    try:
        with open_checked(path, limits) as (_, info):
            return lane_for_pixels(info.pixels, large_pixels)
    except imaging.ImageRejected:
        return DEFAULT


def lane_from_head(head: bytes, size: int, limits: imaging.Limits, large_pixels: int) -> str | None:
    """The lane from the first bytes of a file of ``size`` bytes, without Pillow (JPEG, PNG, GIF,
    BMP); None when the head does not say (another format, a JPEG whose SOF is further on): then
    ask :func:`lane_of`. Like it, an image the limits refuse goes to ``default`` (the render fails it).

    >>> from jobs.imaging.types import Limits
    >>> head = b"GIF89a" + (9000).to_bytes(2, "little") + (6000).to_bytes(2, "little")
    >>> lane_from_head(head, 1000, Limits(), 40_000_000)
    'large'
    """
    from jobs.imaging.sniff import header_size, identify

    fmt = identify(head)
    dims = header_size(head, fmt) if fmt else None
    if dims is None:
        return None
    w, h = dims
    if size > limits.max_bytes or w < 1 or h < 1 or max(w, h) > limits.max_side or w * h > limits.max_pixels:
        return DEFAULT
    return lane_for_pixels(w * h, large_pixels)


@contextmanager
def large_slot(lanes_dir: Path, slots: int) -> Iterator[bool]:
    """Yield True while holding one of ``slots`` large-lane slots, False if all are busy."""
    lanes_dir.mkdir(parents=True, exist_ok=True)
    for n in range(max(1, slots)):
        fd = os.open(lanes_dir / f"large-{n}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        return
    yield False
