"""Settings: ``config.toml`` read once into a frozen, typed tree of dataclasses.

Precedence: defaults < ``config.toml`` < environment (``DARKROOM_SECTION__KEY``,
for example ``DARKROOM_QUEUE__WORKERS=4``) < CLI flags. Relative paths, and the
path of a ``sqlite:///relative.db`` URL, resolve against the directory of the
config file, so a copied ``config.toml`` is a self-contained installation.

A bad value raises :class:`ConfigError` naming the key, the value and what was
expected; the CLI turns it into a one-line message and exit status 2.

Adding a section: define a frozen dataclass with defaulted fields (``int``,
``float``, ``str``, ``bool``, ``Path``, ``tuple[int, ...]``, ``tuple[str, ...]``,
``dict`` or a nested dataclass), optionally a ``check()`` method that raises
``ValueError("expected ...")`` naming the field, and add it to :class:`Settings`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from jobs.maintenance.duties import MaintenanceSettings
from jobs.embeddings.settings import EmbeddingSettings
from jobs.embeddings.text import SearchSettings
from worker.status.health import HealthSettings
from worker.heartbeat import HeartbeatSettings
from worker.status.metrics import MetricsSettings
from worker.status.web.server import ServeSettings

ENV_PREFIX = "DARKROOM_"
DEFAULT_CONFIG = "config.toml"


class ConfigError(Exception):
    """The configuration is invalid."""

    def __init__(self, key: str, value: Any, expected: str) -> None:
        self.key, self.value, self.expected = key, value, expected
        super().__init__(f"config key {key!r}: got {value!r}, expected {expected}")


# --- sections ---------------------------------------------------------------


@dataclass(frozen=True)
class PathsSettings:
    data_dir: Path = Path("data")
    media_dir: Path = Path("data/media")  # originals/ and variants/ live below


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = "sqlite:///data/app.db"
    busy_timeout_ms: int = 15_000
    cache_size_kib: int = 32_768

    def check(self) -> None:
        try:
            make_url(self.url)
        except Exception as exc:
            raise ValueError("url: expected an SQLAlchemy URL such as sqlite:///data/app.db") from exc
        if self.busy_timeout_ms < 0:
            raise ValueError("busy_timeout_ms: expected a number >= 0")


@dataclass(frozen=True)
class QueueSettings:
    # sqlite:///path (huey SqliteHuey, its own file) or redis://host:port/db
    url: str = "sqlite:///data/queue.db"
    name: str = "darkroom"
    workers: int = 2
    worker_type: str = "process"  # process | thread
    # Idle polling (SQLite storage; Redis blocks instead): the first poll after
    # a job waits initial_delay_s, each empty poll multiplies the wait by
    # backoff, up to max_delay_s, which bounds how long a new image waits on an
    # idle worker (measured: bench/idle_pickup.py, docs/reliability.md).
    initial_delay_s: float = 0.05
    backoff: float = 1.15
    max_delay_s: float = 0.25
    busy_timeout_s: float = 30.0

    def check(self) -> None:
        if not (self.url.startswith("sqlite:///") or self.url.startswith(("redis://", "rediss://", "unix://"))):
            raise ValueError("url: expected sqlite:///path or redis://host:port/db")
        # huey drops every other character from a Redis queue name, so
        # "dark-room" and "darkroom" would silently be one queue.
        if not self.name or not all(c.isascii() and (c.isalnum() or c == "_") for c in self.name):
            raise ValueError("name: expected letters, digits and _ only (the Redis key prefix)")
        if self.workers < 1:
            raise ValueError("workers: expected an integer >= 1")
        if self.worker_type not in ("process", "thread"):
            raise ValueError("worker_type: expected 'process' or 'thread'")
        if self.max_delay_s <= 0:
            raise ValueError("max_delay_s: expected a number > 0")
        if not 0 < self.initial_delay_s <= self.max_delay_s:
            raise ValueError("initial_delay_s: expected a number > 0 and <= max_delay_s")
        if self.backoff < 1:
            raise ValueError("backoff: expected a number >= 1")
        if self.busy_timeout_s <= 0:
            raise ValueError("busy_timeout_s: expected a number > 0")


@dataclass(frozen=True)
class EncoderSettings:
    quality: int
    effort: int  # WebP method 0-6 / AVIF speed 0-10


@dataclass(frozen=True)
class VariantSettings:
    widths: tuple[int, ...] = (320, 640, 1280, 1920)
    formats: tuple[str, ...] = ("webp", "avif")
    webp: EncoderSettings = EncoderSettings(quality=80, effort=4)
    avif: EncoderSettings = EncoderSettings(quality=60, effort=9)

    def check(self) -> None:
        if not self.widths or any(w < 1 or w > 16_384 for w in self.widths):
            raise ValueError("widths: expected a non-empty list of integers between 1 and 16384")
        if not self.formats or any(f not in ("webp", "avif") for f in self.formats):
            raise ValueError("formats: expected a non-empty list of 'webp' and/or 'avif'")
        for name, enc, top in (("webp", self.webp, 6), ("avif", self.avif, 10)):
            if not 0 <= enc.quality <= 100:
                raise ValueError(f"{name}.quality: expected an integer from 0 to 100")
            if not 0 <= enc.effort <= top:
                raise ValueError(f"{name}.effort: expected an integer from 0 to {top}")


@dataclass(frozen=True)
class LimitsSettings:
    max_pixels: int = 100_000_000
    max_side: int = 30_000
    max_frames: int = 500
    max_bytes: int = 200 * 1024 * 1024

    def check(self) -> None:
        for f in dataclasses.fields(self):
            if getattr(self, f.name) < 1:
                raise ValueError(f"{f.name}: expected an integer >= 1")


@dataclass(frozen=True)
class ImagingSettings:
    """Metadata policy and the large lane (docs/imaging.md)."""

    keep_gps: bool = False  # store the camera's GPS position on the row (private by default)
    animated_webp: bool = False  # animated GIF/WebP -> animated WebP variants (else the first frame)
    large_pixels: int = 40_000_000  # images over this many pixels go to the large lane
    large_slots: int = 1  # large images processed at once per data directory

    def check(self) -> None:
        if self.large_pixels < 1:
            raise ValueError("large_pixels: expected an integer >= 1")
        if self.large_slots < 1:
            raise ValueError("large_slots: expected an integer >= 1")


@dataclass(frozen=True)
class JobSettings:
    max_attempts: int = 5
    lease_s: float = 60.0  # a claim's lifetime; renewed every lease_s/3 while a job runs
    grace_s: float = 30.0  # how long shutdown waits for the task in hand
    retry_delay_s: float = 2.0  # first retry delay; doubles each attempt
    reconcile_interval_s: float = 30.0
    requeue_after_s: float = 60.0  # a pending row enqueued longer ago is re-enqueued

    def check(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts: expected an integer >= 1")
        for name in ("lease_s", "grace_s", "reconcile_interval_s", "requeue_after_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: expected a number > 0")


@dataclass(frozen=True)
class FetchSettings:
    """``[fetch]``: limits for images submitted by URL (see docs/fetch.md)."""

    max_bytes: int = 50 * 1024 * 1024  # checked while streaming, not only from Content-Length
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 15.0
    total_timeout_s: float = 60.0
    max_redirects: int = 5
    allow: tuple[str, ...] = ()  # CIDRs / host names let through although not public
    user_agent: str = "Darkroom/0.1 (image fetcher)"

    def check(self) -> None:
        from jobs.fetch import FetchLimits

        FetchLimits(**dataclasses.asdict(self)).check()


@dataclass(frozen=True)
class Settings:
    paths: PathsSettings = PathsSettings()
    database: DatabaseSettings = DatabaseSettings()
    queue: QueueSettings = QueueSettings()
    variants: VariantSettings = VariantSettings()
    limits: LimitsSettings = LimitsSettings()
    imaging: ImagingSettings = ImagingSettings()
    jobs: JobSettings = JobSettings()
    fetch: FetchSettings = FetchSettings()
    maintenance: MaintenanceSettings = MaintenanceSettings()
    embeddings: EmbeddingSettings = EmbeddingSettings()
    search: SearchSettings = SearchSettings()
    heartbeat: HeartbeatSettings = HeartbeatSettings()
    metrics: MetricsSettings = MetricsSettings()
    serve: ServeSettings = ServeSettings()
    health: HealthSettings = HealthSettings()
    config_path: Path | None = field(default=None, compare=False)

    @property
    def base_dir(self) -> Path:
        return self.config_path.parent if self.config_path else Path.cwd()


# --- loading ----------------------------------------------------------------


def config_path_from(explicit: str | os.PathLike[str] | None) -> Path | None:
    """The config file to read: the explicit one, ``DARKROOM_CONFIG``, or ./config.toml if present."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("DARKROOM_CONFIG")
    if env:
        return Path(env)
    default = Path(DEFAULT_CONFIG)
    return default if default.exists() else None


def load(path: str | os.PathLike[str] | None = None, env: typing.Mapping[str, str] | None = None,
         overrides: dict[str, Any] | None = None) -> Settings:
    """Load settings. ``overrides`` uses dotted keys, e.g. ``{"queue.workers": 1}``.

    >>> settings = load("config.toml")
    >>> settings.queue.workers
    2
    """
    cfg_path = config_path_from(path)
    raw: dict[str, Any] = {}
    if cfg_path is not None:
        if not cfg_path.is_file():
            raise ConfigError("--config", str(cfg_path), "an existing TOML file")
        try:
            raw = tomllib.loads(cfg_path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("--config", str(cfg_path), f"valid TOML ({exc})") from exc
        cfg_path = cfg_path.resolve()
    env = os.environ if env is None else env
    for name, value in env.items():
        if name.startswith(ENV_PREFIX) and "__" in name:
            keys = name[len(ENV_PREFIX):].lower().split("__")
            _set_dotted(raw, keys, _EnvText(value))
    for dotted, value in (overrides or {}).items():
        _set_dotted(raw, dotted.split("."), value)
    settings = _build(Settings, raw, "")
    settings = dataclasses.replace(settings, config_path=cfg_path)
    return resolve_paths(settings)


class _EnvText(str):
    """A value that came from the environment: parsed by the field's type."""


def _set_dotted(raw: dict[str, Any], keys: list[str], value: Any) -> None:
    node = raw
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ConfigError(".".join(keys), value, "a key inside a table")
    node[keys[-1]] = value


def _build(cls: type, raw: Any, prefix: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(prefix.rstrip(".") or "(root)", raw, "a table")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls) if f.init and f.name != "config_path"}
    for key in raw:
        if key not in known:
            raise ConfigError(prefix + key, raw[key], f"one of the known keys: {', '.join(sorted(known))}")
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in raw:
            continue
        key = prefix + f.name
        values[f.name] = _coerce(hints[f.name], raw[f.name], key, getattr(cls, f.name, None))
    try:
        obj = cls(**values)
    except TypeError as exc:  # a required field of a nested section is missing
        raise ConfigError(prefix.rstrip("."), raw, f"all required keys ({exc})") from exc
    check = getattr(obj, "check", None)
    if check is not None:
        try:
            check()
        except ValueError as exc:
            sub, _, expected = str(exc).partition(": ")
            expected = expected.removeprefix("expected ")
            value: Any = obj
            for part in sub.split("."):
                value = getattr(value, part, value)
            raise ConfigError(prefix + sub, value, expected) from None
    return obj


def _coerce(tp: Any, value: Any, key: str, default: Any) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):  # a default carried over by a partial table
            return value
        if isinstance(value, _EnvText):
            raise ConfigError(key, value, "a table (set its keys one by one)")
        if isinstance(value, dict) and default is not None and dataclasses.is_dataclass(default):
            merged = {f.name: getattr(default, f.name) for f in dataclasses.fields(default)}
            merged.update(value)
            value = merged
        return _build(tp, value, key + ".")
    if origin in (types.UnionType, typing.Union):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None or (isinstance(value, _EnvText) and value == ""):
            return None
        return _coerce(args[0], value, key, default)
    if isinstance(value, _EnvText):
        value = _parse_env(tp, str(value), key)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(key, value, "true or false")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(key, value, "an integer")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(key, value, "a number")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(key, value, "a string")
    if tp is Path:
        if isinstance(value, Path):
            return value
        if isinstance(value, str) and value:
            return Path(value)
        raise ConfigError(key, value, "a path (string)")
    if origin is tuple:
        item = typing.get_args(tp)[0]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(key, value, f"a list of {item.__name__}")
        return tuple(_coerce(item, v, f"{key}[{i}]", None) for i, v in enumerate(value))
    if origin is dict or tp is dict:
        if isinstance(value, dict):
            return dict(value)
        raise ConfigError(key, value, "a table")
    raise ConfigError(key, value, f"a value of type {tp}")  # pragma: no cover


def _parse_env(tp: Any, text: str, key: str) -> Any:
    try:
        if tp is bool:
            low = text.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            return text
        if tp is int:
            return int(text)
        if tp is float:
            return float(text)
        if typing.get_origin(tp) is tuple:
            text = text.strip()
            if text.startswith("["):
                return json.loads(text)
            item = typing.get_args(tp)[0]
            parts = [p.strip() for p in text.split(",") if p.strip()]
            return [item(p) for p in parts]
        if typing.get_origin(tp) is dict or tp is dict:
            return json.loads(text)
    except (ValueError, json.JSONDecodeError):
        raise ConfigError(key, text, f"a value of type {getattr(tp, '__name__', tp)}") from None
    return text


def resolve_paths(settings: Settings) -> Settings:
    """Make paths and SQLite URLs absolute against the config file's directory."""
    base = settings.base_dir

    def absolute(p: Path) -> Path:
        return p if p.is_absolute() else (base / p)

    def sqlite_url(url: str) -> str:
        if not url.startswith("sqlite:///") or url == "sqlite:///:memory:":
            return url
        path = Path(url[len("sqlite:///"):].split("?")[0])
        query = url[len("sqlite:///") + len(str(path)):]
        return f"sqlite:///{absolute(path)}{query}"

    return dataclasses.replace(
        settings,
        paths=dataclasses.replace(
            settings.paths,
            data_dir=absolute(settings.paths.data_dir),
            media_dir=absolute(settings.paths.media_dir),
        ),
        database=dataclasses.replace(settings.database, url=sqlite_url(settings.database.url)),
        queue=dataclasses.replace(settings.queue, url=sqlite_url(settings.queue.url)),
        maintenance=dataclasses.replace(settings.maintenance,
                                        backup_dir=absolute(settings.maintenance.backup_dir)),
        embeddings=dataclasses.replace(settings.embeddings, lancedb_dir=absolute(settings.embeddings.lancedb_dir)),
    )
