"""Helpers of the search tests: completed rows with captions over real image files, and a step run."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from PIL import Image
from sqlalchemy import update

from db import images
from db.engine import write_session
from db.models import Image as ImageRow
from db.models import Status
from jobs.embeddings.step import StepResult, run_step
from worker.app import App

COLOURS = {"red": (200, 30, 30), "green": (30, 170, 40), "blue": (30, 40, 200)}


def add_completed(app: App, tmp: Path, filename: str, metadata: dict[str, Any] | None = None,
                  colour: str | tuple[int, int, int] = "red", **columns: Any) -> str:
    """A completed image row over a real JPEG of one ``colour`` (a name of COLOURS or RGB).

    As process_image leaves it, without variants.
    """
    path = tmp / f"{time.monotonic_ns()}-{filename}"
    rgb = COLOURS[colour] if isinstance(colour, str) else colour
    Image.new("RGB", (48, 32), rgb).save(path, "JPEG", quality=90)
    image_id = images.insert_image(app.engine, filename=filename, original_path=str(path),
                                   mime_type="image/jpeg", size=path.stat().st_size, metadata=metadata)
    with write_session(app.engine) as s:
        s.execute(update(ImageRow).where(ImageRow.id == image_id).values(
            status=Status.COMPLETED.value, completed_at=time.time(), **columns))
    return image_id


def embed(app: App, embedder: Any = None) -> StepResult:
    """One run of the embedding step with the app's settings (and its ``[search]``)."""
    cfg = app.settings.embeddings
    embedder = embedder or app.embedder
    result = run_step(app.engine, app.vector_store, embedder, cfg, app.settings.paths.media_dir, "test",
                      search=app.settings.search)
    assert result.outcome == "done", result
    return result
