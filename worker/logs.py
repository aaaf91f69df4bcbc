"""Logging set-up for the CLI: plain lines or JSON for log shippers."""

from __future__ import annotations

import json
import logging
import sys
import time

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": round(record.created, 3),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        out.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def default_level(verbose: int = 0, daemon: bool = False) -> str:
    """WARNING for one-shot commands, INFO for daemons; each ``-v`` one step more.

    >>> default_level(), default_level(daemon=True), default_level(1), default_level(2)
    ('WARNING', 'INFO', 'INFO', 'DEBUG')
    """
    if verbose >= 2:
        return "DEBUG"
    return "INFO" if verbose or daemon else "WARNING"


def configure(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)-7s %(process)d %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # huey logs two lines per task; ours is one line per job with its timings.
    logging.getLogger("huey").setLevel(max(root.level, logging.WARNING))
    # Alembic says "Context impl SQLiteImpl" and each revision it runs at INFO on every
    # command; migrations that ran are reported by Darkroom itself (`darkroom migrate`).
    logging.getLogger("alembic").setLevel(max(root.level, logging.WARNING))
    # httpx logs every request at INFO (each embedder batch, each search query): DEBUG only.
    logging.getLogger("httpx").setLevel(max(root.level, logging.WARNING))
