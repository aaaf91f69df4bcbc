"""The status page server: stdlib ``http.server``, GET and HEAD only.

Routes::

    /               the HTML page (counts, workers, failures, thumbnails, maintenance)
    /status.json    the same JSON as ``darkroom status --json``
    /health         200 "ok" or 503 with the reasons of ``darkroom health``
    /variants/<id>  the file of one ``image_variants`` row (by row id, never by path)
    /search?q=WORDS&mode=auto|text|vector|hybrid   search results with thumbnails (a GET form)
    /images/<id>    one image: variants, timings, error, placeholder, nearest images by vector
    /images/<id>/placeholder.png   its ThumbHash decoded (32 px)
    /static/style.css

There are no write actions, so no authentication; it binds to 127.0.0.1 by
default, and while bound to a loopback address it answers only requests
whose Host is a loopback name (a web page elsewhere cannot read it through
DNS rebinding).

>>> server = make_server(app, ServeSettings(port=0))   # doctest: +SKIP
>>> server.serve_forever()                              # doctest: +SKIP
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import socket
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from db.engine import read_sessions
from db.models import ImageVariant
from worker.sections import ServeSettings
from worker.status import figures
from worker.status.health import check
from worker.status.report import gather
from worker.status.web import pages
from worker.status.web.page import render

if TYPE_CHECKING:
    from worker.app import App

log = logging.getLogger(__name__)

VARIANT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
CONTENT_TYPES = {"webp": "image/webp", "avif": "image/avif", "jpeg": "image/jpeg", "png": "image/png"}
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
CSP = "default-src 'none'; img-src 'self'; style-src 'self'; base-uri 'none'; form-action 'self'"


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def variant_file(app: App, variant_id: str) -> tuple[Path, str] | None:
    """The file of variant row ``variant_id`` inside the media dir, or None.

    Only a path recorded in ``image_variants`` can be served, and only if it
    resolves inside the media directory (a row holding ``../../etc/passwd``
    or a symlink out of the store serves nothing).
    """
    if not VARIANT_ID.match(variant_id):
        return None
    with read_sessions(app.engine)() as s:
        row = s.get(ImageVariant, variant_id)
        if row is None:
            return None
        rel, fmt = row.path, row.format
    ctype = CONTENT_TYPES.get(fmt)
    if ctype is None or not rel or Path(rel).is_absolute():
        return None
    media = app.settings.paths.media_dir.resolve()
    path = (media / rel).resolve()
    if not path.is_relative_to(media) or not path.is_file():
        return None
    return path, ctype


class StatusHandler(BaseHTTPRequestHandler):
    server: StatusServer
    server_version = "darkroom-status"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    # --- plumbing -------------------------------------------------------------

    def _send(self, status: int, body: bytes, ctype: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Content-Security-Policy", CSP)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _text(self, status: int, text: str) -> None:
        self._send(status, text.encode(), "text/plain; charset=utf-8", {"Cache-Control": "no-store"})

    def _host_allowed(self) -> bool:
        if not self.server.loopback_only:
            return True
        host = self.headers.get("Host", "")
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        return is_loopback(name)

    # --- methods --------------------------------------------------------------

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        if not self._host_allowed():
            self._text(HTTPStatus.MISDIRECTED_REQUEST, "this status page answers only to localhost\n")
            return
        path = urlsplit(self.path).path
        try:
            if path == "/":
                self._page()
            elif path == "/status.json":
                self._json()
            elif path == "/health":
                self._health()
            elif path == "/static/style.css":
                css = resources.files("worker.status.web").joinpath("style.css").read_bytes()
                self._send(200, css, "text/css; charset=utf-8", {"Cache-Control": "max-age=300"})
            elif path.startswith("/variants/"):
                self._variant(path[len("/variants/"):])
            elif path == "/search" or path.startswith("/images/"):
                status, body, ctype = pages.answer(self.server.app, path, urlsplit(self.path).query)
                self._send(status, body, ctype, {"Cache-Control": "no-store"})
            else:
                self._text(HTTPStatus.NOT_FOUND, "not found\n")
        except (BrokenPipeError, ConnectionResetError):
            log.debug("status page: the client left before %s was sent", path)
        except Exception as exc:  # the page must stay up when the database is not
            log.exception("status page: %s failed", path)
            self._text(HTTPStatus.SERVICE_UNAVAILABLE, f"unavailable: {type(exc).__name__}: {exc}\n")

    def _refuse(self) -> None:
        self._send(HTTPStatus.METHOD_NOT_ALLOWED, b"read-only: GET and HEAD only\n",
                   "text/plain; charset=utf-8", {"Allow": "GET, HEAD"})

    do_POST = do_PUT = do_DELETE = do_PATCH = _refuse

    # --- routes ---------------------------------------------------------------

    def _page(self) -> None:
        app, cfg = self.server.app, self.server.settings
        body = render(gather(app), figures.recent_failures(app.engine, cfg.recent),
                      figures.recent_completed(app.engine, cfg.recent), cfg.refresh_s)
        self._send(200, body.encode(), "text/html; charset=utf-8", {"Cache-Control": "no-store"})

    def _json(self) -> None:
        body = json.dumps(gather(self.server.app), indent=2).encode()
        self._send(200, body, "application/json", {"Cache-Control": "no-store"})

    def _health(self) -> None:
        result = check(self.server.app.settings)
        if result.ok:
            self._text(200, "ok\n" + "".join(f"{f}\n" for f in result.facts))
        else:
            self._text(HTTPStatus.SERVICE_UNAVAILABLE, "".join(f"{p}\n" for p in result.problems))

    def _variant(self, variant_id: str) -> None:
        found = variant_file(self.server.app, variant_id)
        if found is None:
            self._text(HTTPStatus.NOT_FOUND, "no such variant\n")
            return
        path, ctype = found
        self._send(200, path.read_bytes(), ctype, {"Cache-Control": "private, max-age=300"})


class StatusServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, app: App, settings: ServeSettings) -> None:
        self.app, self.settings = app, settings
        self.loopback_only = is_loopback(settings.host)
        family_v6 = ":" in settings.host
        if family_v6:
            self.address_family = socket.AF_INET6
        super().__init__((settings.host.strip("[]"), settings.port), StatusHandler)

    @property
    def url(self) -> str:
        host = self.settings.host
        host = f"[{host.strip('[]')}]" if ":" in host else host
        return f"http://{host}:{self.server_address[1]}/"


def make_server(app: App, settings: ServeSettings) -> StatusServer:
    """Bind the status page server (port 0 picks a free port; see ``.url``)."""
    return StatusServer(app, settings)
