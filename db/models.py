"""SQLAlchemy 2 models of the shared database.

``images`` and ``image_variants`` keep the column names and types of the
seed-004 schema (text ids, integer Unix ``created_at``, JSON text
``metadata``), so an application that already writes that schema works with
Darkroom unchanged. Every column Darkroom adds has a default or is nullable:
a row inserted by another program with only the seed's required columns
(id, filename, original_path, mime_type, size) is valid and gets picked up.

Darkroom-owned timestamps (``*_at`` other than ``created_at``) are float Unix
seconds, so leases and throughput figures keep sub-second precision.
"""

from __future__ import annotations

import enum
import time

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Stable constraint names so Alembic migrations behave the same on SQLite and
# PostgreSQL.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Status(str, enum.Enum):
    """The status machine of an image (see DESIGN.md)."""

    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


def now() -> float:
    return time.time()


class Image(Base):
    __tablename__ = "images"

    # --- seed-004 columns -------------------------------------------------
    id: Mapped[str] = mapped_column(Text, primary_key=True)
    filename: Mapped[str] = mapped_column(Text, nullable=False)
    original_path: Mapped[str] = mapped_column(Text, nullable=False)
    mime_type: Mapped[str] = mapped_column(Text, nullable=False)
    size: Mapped[int] = mapped_column(Integer, nullable=False)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    hash: Mapped[str | None] = mapped_column(Text)  # sha256 hex of the original
    status: Mapped[str | None] = mapped_column(
        Text, server_default=text("'pending'"), default=Status.PENDING.value
    )
    metadata_: Mapped[str | None] = mapped_column("metadata", Text)  # JSON text
    created_at: Mapped[int | None] = mapped_column(
        Integer, server_default=text("0"), default=lambda: int(time.time())
    )

    # --- Darkroom's columns (all defaulted) -------------------------------
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"), default=0)
    error: Mapped[str | None] = mapped_column(Text)
    # Lease: who holds the claim and until when (float Unix seconds).
    lease_owner: Mapped[str | None] = mapped_column(Text)
    lease_expires_at: Mapped[float | None] = mapped_column(Float)
    enqueued_at: Mapped[float | None] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float)
    completed_at: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[float | None] = mapped_column(Float)
    # True when Darkroom copied/fetched the original into its media store and
    # may delete it with the row; False for rows other programs inserted.
    owns_original: Mapped[bool] = mapped_column(
        Boolean, server_default=false(), default=False
    )
    source_url: Mapped[str | None] = mapped_column(Text)
    lane: Mapped[str | None] = mapped_column(Text)  # "default" | "large"
    # The producer's choice: a [recipes.NAME] name, NULL = "default" (contract version 2).
    recipe: Mapped[str | None] = mapped_column(Text)
    recipe_fingerprint: Mapped[str | None] = mapped_column(Text)  # of the recipe that built the variants
    timings: Mapped[str | None] = mapped_column(Text)  # JSON: stage -> seconds
    # Facts read from the file (issue: real-world images).
    orientation: Mapped[int | None] = mapped_column(Integer)
    taken_at: Mapped[str | None] = mapped_column(Text)  # ISO 8601 as the camera wrote it
    gps: Mapped[str | None] = mapped_column(Text)  # JSON, only if config allows
    placeholder: Mapped[str | None] = mapped_column(Text)  # thumbhash, base64
    dominant_color: Mapped[str | None] = mapped_column(Text)  # "#rrggbb"
    # Embeddings.
    embedding_model: Mapped[str | None] = mapped_column(Text)
    embedded_at: Mapped[float | None] = mapped_column(Float)
    duplicate_of: Mapped[str | None] = mapped_column(Text)
    duplicate_score: Mapped[float | None] = mapped_column(Float)
    # The vector the image job computed (local embedder; float32 bytes), until the embedding step
    # writes it to LanceDB and clears both (revision 0004).
    pending_vector: Mapped[bytes | None] = mapped_column(LargeBinary)
    pending_vector_model: Mapped[str | None] = mapped_column(Text)

    variants: Mapped[list[ImageVariant]] = relationship(
        back_populates="image", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (
        Index("ix_images_status_lease", "status", "lease_expires_at"),
        Index("ix_images_hash", "hash"),
        Index("ix_images_completed_at", "completed_at"),
        Index("ix_images_recipe_status", "recipe", "status"),
    )


class ImageVariant(Base):
    __tablename__ = "image_variants"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    image_id: Mapped[str] = mapped_column(
        Text, ForeignKey("images.id", ondelete="CASCADE"), nullable=False
    )
    width: Mapped[int] = mapped_column(Integer, nullable=False)
    format: Mapped[str] = mapped_column(Text, nullable=False)  # webp | avif
    path: Mapped[str] = mapped_column(Text, nullable=False)  # relative to the media dir
    size: Mapped[int] = mapped_column(Integer, nullable=False)  # bytes
    height: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[float | None] = mapped_column(Float)

    image: Mapped[Image] = relationship(back_populates="variants")

    __table_args__ = (
        UniqueConstraint("image_id", "width", "format", name="uq_image_variants_image_width_format"),
    )


class Worker(Base):
    """One row per running ``darkroom worker`` (heartbeats)."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    host: Mapped[str] = mapped_column(Text, nullable=False)
    pid: Mapped[int] = mapped_column(Integer, nullable=False)
    version: Mapped[str] = mapped_column(Text, nullable=False)
    concurrency: Mapped[int] = mapped_column(Integer, nullable=False)
    started_at: Mapped[float] = mapped_column(Float, nullable=False)
    heartbeat_at: Mapped[float] = mapped_column(Float, nullable=False)
    stopped_at: Mapped[float | None] = mapped_column(Float)


class Lease(Base):
    """Named mutual-exclusion leases: periodic duties, the embedding step.

    ``last_run_at`` lets a duty that was missed during downtime run once at
    start, and lets several schedulers agree that a period already ran.
    """

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    owner: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[float | None] = mapped_column(Float)
    last_run_at: Mapped[float | None] = mapped_column(Float)
    # The embedding step's outage, while the lease is held for its backoff:
    # consecutive failed runs (0 when healthy) and what failed (see jobs/embeddings/lease.py).
    outages: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    outage_kind: Mapped[str | None] = mapped_column(Text)


class MaintenanceRun(Base):
    """A record of each run of a maintenance duty (and the reconciler)."""

    __tablename__ = "maintenance_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    started_at: Mapped[float] = mapped_column(Float, nullable=False)
    finished_at: Mapped[float | None] = mapped_column(Float)
    outcome: Mapped[str] = mapped_column(Text, nullable=False, server_default=text("'running'"))
    figures: Mapped[str | None] = mapped_column(Text)  # JSON
    error: Mapped[str | None] = mapped_column(Text)
    host: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_maintenance_runs_name_started", "name", "started_at"),)
