"""Encoding in threads yields exactly the bytes a serial encode does, and really runs in threads."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jobs.imaging import EncoderSpec, Limits, Recipe, render
from jobs.imaging.fanout import encode_variants, fan_out

# Widths the cascade really has to make, and both encoders, so several encodes of one image overlap.
RECIPE = Recipe(widths=(64, 160, 400), encoders=(EncoderSpec("webp", 80, 4), EncoderSpec("avif", 60, 8)))


def noisy_photo(path: Path, size: tuple[int, int] = (900, 640)) -> Path:
    """A picture with texture (flat colour would encode the same under any setting)."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:size[1], 0:size[0]]
    base = np.stack([x * 255 // size[0], y * 255 // size[1], (x + y) % 256], axis=-1)
    noise = rng.integers(0, 40, (size[1], size[0], 3))
    Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8)).save(path, "JPEG", quality=92)
    return path


@pytest.mark.parametrize("name", ["noisy.jpg", "orient_6.jpg", "alpha.png", "cmyk_adobe.jpg", "rgb48.png"])
def test_parallel_render_gives_the_serial_bytes(legit: dict[str, Path], tmp_path: Path, name: str) -> None:
    path = noisy_photo(tmp_path / name) if name == "noisy.jpg" else legit[name]
    serial = render(path, RECIPE, Limits())
    parallel = render(path, RECIPE, Limits(), threads=lambda: 4)
    assert [(v.width, v.height, v.format) for v in parallel.variants] == \
        [(v.width, v.height, v.format) for v in serial.variants]
    for a, b in zip(serial.variants, parallel.variants, strict=True):
        assert a.data == b.data, f"{name} {a.width} {a.format}: parallel bytes differ"
    assert parallel.placeholder == serial.placeholder


def test_each_encoder_keeps_its_settings_when_one_image_is_saved_in_two_threads(tmp_path: Path) -> None:
    # Image.save keeps its options on the image object: without a copy per encoder, WebP and AVIF
    # saves of the same image in two threads can pick up each other's quality.
    im = Image.open(noisy_photo(tmp_path / "n.jpg")).convert("RGB")
    encoders = (EncoderSpec("webp", 80, 4), EncoderSpec("avif", 30, 9), EncoderSpec("webp", 20, 0))
    serial, _ = encode_variants([im], encoders, threads=1)
    for _ in range(5):
        parallel, _ = encode_variants([im], encoders, threads=3)
        assert [v.data for v in parallel] == [v.data for v in serial]


def test_variants_come_back_images_outer_encoders_inner_with_timings() -> None:
    images = [Image.new("RGB", (w, w // 2), (w % 255, 90, 30)) for w in (40, 80, 120)]
    encoders = (EncoderSpec("webp", 80, 4), EncoderSpec("avif", 60, 9))
    variants, timings = encode_variants(images, encoders, threads=2)
    assert [(v.width, v.format) for v in variants] == [(w, f) for w in (40, 80, 120) for f in ("webp", "avif")]
    assert set(timings) == {"encode_webp", "encode_avif"} and all(t > 0 for t in timings.values())


def test_fan_out_runs_tasks_at_once_with_two_threads() -> None:
    # Both tasks wait for each other: only a real second thread lets them through.
    barrier = threading.Barrier(2, timeout=10)

    def meet(n: int) -> int:
        barrier.wait()
        return n

    assert fan_out([lambda: meet(1), lambda: meet(2)], threads=2) == [1, 2]


def test_fan_out_with_one_thread_runs_in_the_caller() -> None:
    here = threading.get_ident()
    assert fan_out([threading.get_ident, threading.get_ident], threads=1) == [here, here]
    assert fan_out([threading.get_ident], threads=0) == [here]
    assert fan_out([], threads=4) == []


def test_fan_out_raises_a_tasks_error() -> None:
    def broken() -> int:
        raise ValueError("encoder broke")

    with pytest.raises(ValueError, match="encoder broke"):
        fan_out([lambda: 1, broken, lambda: 3], threads=2)
