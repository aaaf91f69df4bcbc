"""Settings: ``config.toml`` read once into a frozen, typed tree of dataclasses.

Precedence: defaults < ``config.toml`` < environment (``DARKROOM_SECTION__KEY``,
for example ``DARKROOM_QUEUE__WORKERS=4``) < CLI flags. Relative paths, and the
path of a ``sqlite:///relative.db`` URL, resolve against the directory of the
config file, so a copied ``config.toml`` is a self-contained installation.

A bad value raises :class:`ConfigError` naming the key, the value and what was
expected; the CLI turns it into a one-line message and exit status 2.

Adding a section: define a frozen dataclass, in a leaf module that imports
nothing of the project (see :mod:`worker.sections`), with defaulted fields (``int``,
``float``, ``str``, ``bool``, ``Path``, ``tuple[int, ...]``, ``tuple[str, ...]``,
``dict``, a nested dataclass, or ``dict[str, Dataclass]`` for a table of named
tables), optionally a ``check()`` method that raises
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

from db.engine import sqlite_file
from db.errors import PermanentError
from jobs.embeddings.settings import EmbeddingSettings
from jobs.embeddings.text import SearchSettings
from jobs.fetch.limits import FetchLimits
from jobs.imaging import recipes as recipe_tables
from jobs.imaging.recipes import RecipeSettings
from jobs.imaging.types import Limits
from jobs.maintenance.settings import MaintenanceSettings
from jobs.outage import OutageSettings
from jobs.queue import QueueConfig
from worker.sections import (
    DatabaseSettings,
    HealthSettings,
    HeartbeatSettings,
    ImagingSettings,
    JobSettings,
    MetricsSettings,
    PathsSettings,
    ServeSettings,
)

ENV_PREFIX = "DARKROOM_"
DEFAULT_CONFIG = "config.toml"


class ConfigError(PermanentError):
    """The configuration is invalid."""

    def __init__(self, key: str, value: Any, expected: str) -> None:
        self.key, self.value, self.expected = key, value, expected
        super().__init__(f"config key {key!r}: got {value!r}, expected {expected}")


# --- the tree of sections (each defined in a leaf module) ---------------------


@dataclass(frozen=True)
class Settings:
    paths: PathsSettings = PathsSettings()
    database: DatabaseSettings = DatabaseSettings()
    queue: QueueConfig = QueueConfig()
    variants: RecipeSettings = RecipeSettings()  # the recipe named "default"
    recipes: dict[str, RecipeSettings] = field(default_factory=dict)  # [recipes.NAME]
    limits: Limits = Limits()
    imaging: ImagingSettings = ImagingSettings()
    jobs: JobSettings = JobSettings()
    outage: OutageSettings = OutageSettings()
    fetch: FetchLimits = FetchLimits()
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
    _inherit_recipes(raw)
    settings = _build(Settings, raw, "")
    settings = dataclasses.replace(settings, config_path=cfg_path)
    return resolve_paths(settings)


def _inherit_recipes(raw: dict[str, Any]) -> None:
    """Fill each ``[recipes.NAME]`` with the ``[variants]`` keys it leaves out; check the names."""
    tables = raw.get("recipes")
    if tables is None:
        return
    if not isinstance(tables, dict):
        raise ConfigError("recipes", tables, "a table of [recipes.NAME] tables")
    variants = raw.get("variants", {})
    variants = variants if isinstance(variants, dict) else {}
    for name, table in tables.items():
        if name == recipe_tables.DEFAULT:
            raise ConfigError(f"recipes.{name}", table, "another name: the recipe 'default' is [variants]")
        if not recipe_tables.NAME_RE.match(name):
            raise ConfigError(f"recipes.{name}", table, "a name of 1-64 letters, digits, '-' or '_'")
        if not isinstance(table, dict):
            raise ConfigError(f"recipes.{name}", table, "a table ([recipes.NAME] with widths, fit, ...)")
        tables[name] = recipe_tables.inherit(variants, table)


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
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
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
        if not isinstance(value, dict):
            raise ConfigError(key, value, "a table")
        key_value = typing.get_args(tp)
        if len(key_value) == 2 and dataclasses.is_dataclass(key_value[1]):  # a table of named tables
            return {name: _coerce(key_value[1], table, f"{key}.{name}", None) for name, table in value.items()}
        return dict(value)
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
            if dataclasses.is_dataclass(item):  # a list of tables has no comma form
                raise ConfigError(key, text, f'a JSON list of tables, e.g. [{{"{dataclasses.fields(item)[0].name}": '
                                             f'...}}]')
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
        path = sqlite_file(url)
        if path is None:
            return url
        _, mark, query = url.partition("?")
        return f"sqlite:///{absolute(path)}{mark}{query}"

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
