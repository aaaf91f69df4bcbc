"""Encode a job's outputs in threads when cores are idle. Pure: no project imports.

Pillow's WebP and AVIF encoders release the GIL while they run, so the
encodes of one image (each width, each format) can share the cores the way
separate processes would. ``threads`` is decided by the caller (the job,
from how many jobs are running: ``jobs/running.py``); with one thread the
encodes run in the calling thread, one after the other. Results come back
in task order, so a parallel run yields exactly what a serial one does.

>>> fan_out([lambda: 1, lambda: 2], threads=2)
[1, 2]
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from PIL import Image

from jobs.imaging.encode import encode
from jobs.imaging.types import EncoderSpec, Variant

T = TypeVar("T")


def fan_out(tasks: Sequence[Callable[[], T]], threads: int) -> list[T]:
    """Every task's result, in task order; at most ``threads`` run at once (1 or less: serially, here).

    An exception from a task is raised once every started task has finished.
    """
    workers = min(max(1, threads), len(tasks))
    if workers <= 1:
        return [task() for task in tasks]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="encode") as pool:
        futures = [pool.submit(task) for task in tasks]
        return [f.result() for f in futures]


def encode_variants(images: Sequence[Image.Image], encoders: Sequence[EncoderSpec], threads: int
                    ) -> tuple[list[Variant], dict[str, float]]:
    """One :class:`Variant` per image and encoder (images outer, encoders inner), and the seconds spent
    in each format's encoder (``encode_webp``, ``encode_avif``; summed over threads, so CPU-like).

    The biggest encodes are started first, so the last thread does not finish alone on a large one.
    Threads never save the same ``Image`` object at once: ``Image.save`` keeps its options on the
    object (``encoderinfo``), so two saves of one image in two threads could swap their settings.
    Each encoder after the first gets its own copy of the pixels.
    """
    parallel = min(max(1, threads), len(images) * len(encoders)) > 1
    jobs = [(image.copy() if parallel and n else image, enc) for image in images for n, enc in enumerate(encoders)]
    order = sorted(range(len(jobs)), key=lambda i: -jobs[i][0].width * jobs[i][0].height)

    def task(image: Image.Image, enc: EncoderSpec) -> Callable[[], tuple[bytes, float]]:
        def run() -> tuple[bytes, float]:
            t = time.perf_counter()
            data = encode(image, enc)
            return data, time.perf_counter() - t
        return run

    results = fan_out([task(*jobs[i]) for i in order], threads)
    encoded: list[tuple[bytes, float]] = [(b"", 0.0)] * len(jobs)
    for i, result in zip(order, results, strict=True):
        encoded[i] = result
    variants: list[Variant] = []
    timings: dict[str, float] = {}
    for (image, enc), (data, seconds) in zip(jobs, encoded, strict=True):
        key = f"encode_{enc.format}"
        timings[key] = timings.get(key, 0.0) + seconds
        variants.append(Variant(image.width, image.height, enc.format, data))
    return variants, timings
