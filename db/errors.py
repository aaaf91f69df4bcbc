"""Darkroom's one error tree, and the errors of the shared database.

The base lives here, in the lowest layer, so that ``db`` can name its own
errors (a busy database is ``db``'s to name) and every layer above shares one
root. The CLI turns any :class:`DarkroomError` into one line on stderr and
exit 1, at its entry point (``worker/cli.py``); third-party errors are
translated at the boundary with ``raise ... from``.

::

    DarkroomError                   something went wrong; str() is for a person
    ├── RetryableError              transient: try again later (``retry_after_s`` hint)
    │   ├── BackendUnreachable      a backend does not answer (an outage, not a busy one)
    │   │   ├── DatabaseUnreachable     the shared database (here)
    │   │   └── QueueUnreachable        the queue (jobs/queue.py)
    │   ├── DatabaseBusy            locked / lock timeout / serialization failure (here)
    │   ├── StorageUnavailable      the media dir cannot be used now (jobs/errors.py)
    │   └── VectorStoreError        LanceDB failed after its own retries (jobs/embeddings/store.py)
    └── PermanentError              retrying the same thing cannot help
        ├── UnknownImages           ids given that no image has (here)
        ├── MaintenanceError        a duty could not do its work (db/maintenance/errors.py)
        ├── MissingOriginal         the original file is gone (jobs/errors.py)
        ├── VectorsRefused          vectors refused before LanceDB (jobs/embeddings/store.py)
        ├── SimilarityError, SearchError    a query that cannot be answered (jobs/embeddings/)
        ├── ConfigError             a bad setting: key, value, expected (worker/settings.py; exit 2)
        └── ImageNotFound, ImageExists      the Python API's lookups (worker/api.py; db/images.py)

The pure modules (``jobs/imaging``, ``jobs/fetch``, the embedders' base) import
nothing of the project: their errors (``ImageRejected``, ``FetchRefused`` /
``FetchFailed``, ``EmbedderError``) are translated into this tree by the
tasks that call them.

:func:`database_error` tells an outage from a busy database (a lock
timeout, a serialization failure) by the error itself: a failure to connect,
a connection the server dropped, or a SQLSTATE of class 08 (connection
exception) or 57P (operator intervention) is an outage; SQLite's "unable to
open database file" is one too.

>>> err = unreachable_from(exc, "postgresql+psycopg://db:5432/app")   # doctest: +SKIP
>>> str(err)                                                           # doctest: +SKIP
'PostgreSQL at db:5432 unreachable: connection refused'
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.engine import make_url

# SQLSTATE classes of "the connection is gone" (08) and "operator
# intervention: shutting down, cannot connect now" (57P01-57P03).
_UNREACHABLE_SQLSTATE = ("08", "57P01", "57P02", "57P03", "3D000")

# Phrases of libpq, psycopg, sqlite3, redis-py and the socket layer -> the short reason we print.
_REASONS = (
    (re.compile(r"connection refused", re.I), "connection refused"),
    (re.compile(r"timed? ?out|timeout expired", re.I), "timed out"),
    (re.compile(r"name or service not known|nodename nor servname|"
                r"temporary failure in name resolution|could not translate host name", re.I), "unknown host"),
    (re.compile(r"no route to host|network is unreachable", re.I), "no route to host"),
    (re.compile(r"the database system is (starting up|shutting down|in recovery mode)", re.I), None),
    (re.compile(r"terminating connection due to administrator command", re.I), "server shut down"),
    (re.compile(r"server closed the connection unexpectedly|connection (reset|closed|lost)|"
                r"consuming input failed|broken pipe|eof detected|connection is closed", re.I), "connection lost"),
    (re.compile(r'database "[^"]+" does not exist', re.I), None),
    (re.compile(r'role "[^"]+" does not exist|password authentication failed', re.I), None),
    (re.compile(r"unable to open database file", re.I), "cannot open the database file"),
    (re.compile(r"no such file or directory", re.I), "no such file or directory"),
)


class DarkroomError(Exception):
    """Something went wrong."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip().splitlines()[0])


class RetryableError(DarkroomError):
    """A transient problem; the job will be tried again."""

    retry_after_s: float | None = None

    def __init__(self, message: str | None = None, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class PermanentError(DarkroomError):
    """The input cannot be processed; retrying cannot help."""


class UnknownImages(PermanentError):
    """No image has these ids."""

    def __init__(self, ids: list[str]) -> None:
        self.ids = list(ids)
        shown = ", ".join(self.ids[:10]) + (f" (and {len(self.ids) - 10} more)" if len(self.ids) > 10 else "")
        super().__init__(f"no image with id{'s' if len(self.ids) > 1 else ''} {shown}")


class BackendUnreachable(RetryableError):
    """A backend (the shared database or the queue) does not answer."""

    def __init__(self, backend: str, address: str, reason: str) -> None:
        self.backend, self.address, self.reason = backend, address, reason
        super().__init__(f"{backend} at {address} unreachable: {reason}")

    @property
    def where(self) -> str:
        """``PostgreSQL at db:5432``: how logs and messages name this backend."""
        return f"{self.backend} at {self.address}"


class DatabaseUnreachable(BackendUnreachable):
    """The shared database does not answer."""

    backend_name = "database"


class DatabaseBusy(RetryableError):
    """The shared database is busy (locked past the busy timeout, a lock timeout, a serialization failure)."""

    def __init__(self, backend: str, address: str, reason: str) -> None:
        self.backend, self.address, self.reason = backend, address, reason
        super().__init__(f"{backend} at {address} is busy: {reason}")


# SQLSTATEs of a busy server: serialization failure, deadlock, lock not available, statement timeout.
_BUSY_SQLSTATE = ("40001", "40P01", "55P03", "57014")
_BUSY_WORDS = ("database is locked", "database table is locked", "database is busy", "could not obtain lock",
               "deadlock", "could not serialize")


def is_busy(exc: BaseException) -> bool:
    """True when ``exc`` (a SQLAlchemy error, or what it wraps) means the database is busy, not down."""
    from sqlalchemy.exc import InterfaceError, OperationalError

    if isinstance(exc, DatabaseBusy):
        return True
    if not isinstance(exc, (OperationalError, InterfaceError)) or is_unreachable(exc):
        return False
    orig: Any = getattr(exc, "orig", None)
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if sqlstate:
        return str(sqlstate) in _BUSY_SQLSTATE
    text = str(orig or exc).lower()
    return any(word in text for word in _BUSY_WORDS)


def database_error(exc: BaseException, url: str, *,
                   refused_is_down: bool = False) -> DatabaseUnreachable | DatabaseBusy | None:
    """A SQLAlchemy ``OperationalError`` (or ``InterfaceError``) as the project's error, or None.

    An outage is :class:`DatabaseUnreachable`, a lock or serialization failure
    :class:`DatabaseBusy`; anything else (a bad password, a missing table) is
    left to the caller, unless ``refused_is_down``: then it is
    :class:`DatabaseUnreachable` too (the database does not answer *us*; used
    for errors while connecting, and by the CLI's last word on an error).

    >>> database_error(exc, "sqlite:////srv/app.db")   # doctest: +SKIP
    DatabaseBusy('SQLite at /srv/app.db is busy: database is locked')
    """
    if isinstance(exc, (DatabaseUnreachable, DatabaseBusy)):
        return exc
    from sqlalchemy.exc import InterfaceError, OperationalError

    down = unreachable_from(exc, url)
    if down is not None:
        return down
    backend, address = describe_url(url)
    if is_busy(exc):
        return DatabaseBusy(backend, address, reason_of(exc))
    if refused_is_down and isinstance(exc, (OperationalError, InterfaceError)):
        return DatabaseUnreachable(backend, address, reason_of(exc))
    return None


def describe_url(url: str) -> tuple[str, str]:
    """(backend name, address) of a database URL, without credentials.

    >>> describe_url("postgresql+psycopg://u:secret@db.internal/app")
    ('PostgreSQL', 'db.internal:5432')
    >>> describe_url("sqlite:////srv/darkroom/data/app.db")
    ('SQLite', '/srv/darkroom/data/app.db')
    """
    u = make_url(url)
    name = u.get_backend_name()
    if name == "sqlite":
        return "SQLite", u.database or ":memory:"
    pretty = {"postgresql": "PostgreSQL", "mysql": "MySQL"}.get(name, name)
    host = u.host or "localhost"
    port = u.port or {"postgresql": 5432, "mysql": 3306}.get(name)
    return pretty, f"{host}:{port}" if port else host


def reason_of(exc: BaseException) -> str:
    """A short, one-line reason for a connection error (``connection refused``)."""
    text = " ".join(str(e) for e in _chain(exc))
    for pattern, short in _REASONS:
        m = pattern.search(text)
        if m:
            return short or m.group(0)
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    first = re.sub(r"^\((?:[\w.]+)\)\s*", "", first)  # SQLAlchemy's "(psycopg.OperationalError) "
    return first[:200]


def is_unreachable(exc: BaseException) -> bool:
    """True when ``exc`` (a SQLAlchemy error, or what it wraps) means the database does not answer."""
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    if isinstance(exc, DatabaseUnreachable):
        return True
    if not isinstance(exc, (OperationalError, InterfaceError)):
        return False
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    orig: Any = getattr(exc, "orig", None)
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if sqlstate:
        return str(sqlstate).startswith(_UNREACHABLE_SQLSTATE)
    text = str(orig or exc).lower()
    if "database is locked" in text or "database table is locked" in text:
        return False  # SQLite busy: not an outage
    if type(orig).__module__.startswith("psycopg"):
        return True  # a psycopg error without a SQLSTATE: it never reached the server
    return "unable to open database file" in text or "disk i/o error" in text


def unreachable_from(exc: BaseException, url: str) -> DatabaseUnreachable | None:
    """``exc`` as a :class:`DatabaseUnreachable` naming ``url``'s backend, or None if it is not one."""
    if isinstance(exc, DatabaseUnreachable):
        return exc
    if not is_unreachable(exc):
        return None
    backend, address = describe_url(url)
    return DatabaseUnreachable(backend, address, reason_of(exc))


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    e: BaseException | None = exc
    while e is not None and e not in out and len(out) < 6:
        out.append(e)
        orig = getattr(e, "orig", None)
        e = orig if isinstance(orig, BaseException) else (e.__cause__ or e.__context__)
    return out
