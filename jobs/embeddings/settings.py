"""Settings of embeddings and similarity search: ``[embeddings]`` in config.toml.

Kept apart from :mod:`jobs.embeddings.step` so loading the config does not import LanceDB.
The store and the embedder are built from it in the composition root
(``worker/app.py``: ``make_vector_store``, ``make_embedder``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from jobs.embeddings.embedders.names import HttpEmbedderSettings, local_model_name, model_name


@dataclass(frozen=True)
class EmbeddingSettings:
    """``[embeddings]`` in config.toml."""

    enabled: bool = True
    embedder: str = "local"  # local | http
    lancedb_dir: Path = Path("data/lancedb")
    batch_size: int = 64  # images per LanceDB write
    max_batches_per_run: int = 20  # a run stops after this many; the next continues
    interval_s: float = 10.0  # the periodic safety net (runs at most once a minute under huey)
    delay_after_complete_s: float = 2.0  # a completed image triggers a run after this
    duplicate_threshold: float = 0.97  # cosine similarity at or above which an image is a near-duplicate
    index_threshold_rows: int = 100_000  # build the ANN index above this many vectors
    index_type: str = "IVF_PQ"  # or IVF_HNSW_SQ (10x slower to build here)
    optimize_interval_s: float = 3_600.0  # compaction + old-version cleanup of the vector tables
    audit_interval_s: float = 3_600.0  # compare the rows claiming a vector with the store, refill what is missing
    keep_versions_s: float = 600.0  # table versions younger than this survive cleanup
    read_consistency_s: float = 1.0  # how stale a reader's view of LanceDB may be
    lease_s: float = 300.0
    backoff_s: float = 5.0  # first backoff after an outage; doubles per failed run
    max_backoff_s: float = 300.0
    http: HttpEmbedderSettings = HttpEmbedderSettings()

    def check(self) -> None:
        if self.embedder not in ("local", "http"):
            raise ValueError("embedder: expected 'local' or 'http'")
        if self.batch_size < 1 or self.max_batches_per_run < 1:
            raise ValueError("batch_size: expected batch_size and max_batches_per_run >= 1")
        if not 0.0 < self.duplicate_threshold <= 1.0:
            raise ValueError("duplicate_threshold: expected a cosine similarity in (0, 1]")
        if self.index_type not in ("IVF_HNSW_SQ", "IVF_PQ"):
            raise ValueError("index_type: expected 'IVF_HNSW_SQ' or 'IVF_PQ'")
        for name in ("interval_s", "lease_s", "backoff_s", "max_backoff_s", "optimize_interval_s",
                     "audit_interval_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: expected a number > 0")

    def model_name(self) -> str:
        """The configured model's name, without building the embedder."""
        return local_model_name() if self.embedder == "local" else model_name(self.http)
