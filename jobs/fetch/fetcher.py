"""``fetch``: download one image URL to a file, safely.

Each hop (the first request and every redirect, followed by hand) goes:
parse the URL -> resolve the host and check every address
(:mod:`jobs.fetch.addresses`) -> connect to the checked address itself, the
URL rewritten to the IP with ``Host`` and the TLS server name (SNI, and so the
certificate check) kept on the original name. No other DNS answer is ever
used, so rebinding between check and connect cannot happen. The body streams
to a temporary file in ``dest_dir`` while size, time and type are enforced;
the type comes from the first bytes, never from ``Content-Type``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import ssl
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from jobs.fetch.addresses import AllowList, IPAddress, Resolver, checked_addresses, parse_allow
from jobs.fetch.errors import FetchFailed, FetchRefused
from jobs.fetch.limits import FetchLimits
from jobs.fetch.retry import parse_retry_after
from jobs.fetch.signatures import SNIFF_BYTES, extension_for, sniff

log = logging.getLogger(__name__)

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_RETRYABLE_STATUS = frozenset({408, 425, 429})  # and every 5xx
_DEFAULT_PORTS = {"http": 80, "https": 443}
_MAX_ADDRESSES_TRIED = 4
DEFAULT_LIMITS = FetchLimits()  # a name with many addresses: try a few on connection errors


@dataclass(frozen=True)
class Fetched:
    """A fetched image on disk: ``path`` is ``dest_dir/<sha256><ext>``."""

    path: Path
    size: int
    sha256: str
    mime_type: str
    final_url: str


def new_client() -> httpx.Client:
    """The client ``fetch`` makes when given none.

    ``trust_env=False``: a proxy from the environment would make the proxy, not
    the checked address, the thing we connect to.
    """
    return httpx.Client(trust_env=False, follow_redirects=False)


def fetch(url: str, dest_dir: str | os.PathLike[str], limits: FetchLimits = DEFAULT_LIMITS,
          client: httpx.Client | None = None, resolver: Resolver | None = None) -> Fetched:
    """Download the image at ``url`` into ``dest_dir`` under ``limits``.

    ``client`` lets a worker reuse one connection pool (it must not use a
    proxy); ``resolver(host, port)`` replaces the system DNS lookup.
    Raises ``FetchRefused`` (permanent) or ``FetchFailed`` (retryable).

    >>> got = fetch("https://example.com/cat.jpg", "data/media/incoming")  # doctest: +SKIP
    >>> got.mime_type, got.size  # doctest: +SKIP
    ('image/jpeg', 48213)
    """
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    allow = parse_allow(limits.allow)
    deadline = time.monotonic() + limits.total_timeout_s
    own_client = client is None
    http = client or new_client()
    try:
        current = _parse(url, url)
        for _hop in range(limits.max_redirects + 1):
            response = _open(http, current, limits, allow, deadline, resolver)
            try:
                if response.status_code in _REDIRECTS:
                    location = response.headers.get("location")
                    if not location:
                        raise FetchRefused(f"cannot fetch {current}: HTTP {response.status_code} "
                                           "redirect without a Location header", str(current))
                    log.debug("fetch %s redirected to %s", current, location)
                    current = _parse(str(current.join(location)), url)
                    continue
                _check_status(response, str(current))
                return _save(response, dest, limits, deadline, str(current))
            finally:
                response.close()
        raise FetchRefused(f"cannot fetch {url}: more than {limits.max_redirects} redirects", url)
    finally:
        if own_client:
            http.close()


def _parse(text: str, original: str) -> httpx.URL:
    try:
        url = httpx.URL(text)
    except (httpx.InvalidURL, TypeError) as exc:
        raise FetchRefused(f"cannot fetch {text!r}: not a valid URL ({exc})", original) from exc
    if url.scheme not in _DEFAULT_PORTS:
        raise FetchRefused(f"cannot fetch {text!r}: only http and https URLs are fetched", original)
    if not url.host:
        raise FetchRefused(f"cannot fetch {text!r}: the URL has no host", original)
    return url


def _open(http: httpx.Client, url: httpx.URL, limits: FetchLimits, allow: AllowList,
          deadline: float, resolver: Resolver | None) -> httpx.Response:
    """Check the host's addresses, then send to one of them; the response is streaming."""
    port = url.port or _DEFAULT_PORTS[url.scheme]
    addresses = checked_addresses(url.host, port, allow, str(url), resolver)
    last_error: Exception | None = None
    for ip in addresses[:_MAX_ADDRESSES_TRIED]:
        request = _pinned_request(http, url, ip, limits, deadline)
        try:
            return http.send(request, stream=True, follow_redirects=False)
        except httpx.ConnectError as exc:
            if _is_certificate_error(exc):
                raise FetchRefused(f"cannot fetch {url}: TLS certificate rejected ({exc})", str(url)) from exc
            log.info("fetch %s: cannot connect to %s (%s)", url, ip, exc)
            last_error = exc
        except httpx.TimeoutException as exc:
            raise FetchFailed(f"cannot fetch {url}: timed out connecting to {ip}", str(url)) from exc
        except httpx.UnsupportedProtocol as exc:
            raise FetchRefused(f"cannot fetch {url}: {exc}", str(url)) from exc
        except httpx.TransportError as exc:
            raise FetchFailed(f"cannot fetch {url}: {type(exc).__name__}: {exc}", str(url)) from exc
    raise FetchFailed(f"cannot fetch {url}: connection failed ({last_error})", str(url)) from last_error


def _pinned_request(http: httpx.Client, url: httpx.URL, ip: IPAddress, limits: FetchLimits,
                    deadline: float) -> httpx.Request:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise FetchFailed(f"cannot fetch {url}: took longer than {limits.total_timeout_s} s in all", str(url))
    connect = min(limits.connect_timeout_s, remaining)
    read = min(limits.read_timeout_s, remaining)
    extensions: dict[str, object] = {}
    if url.scheme == "https":
        # httpcore verifies the certificate against sni_hostname, so TLS still
        # proves we reached the named host although we dialled its IP.
        extensions["sni_hostname"] = url.host
    return http.build_request(
        "GET", url.copy_with(host=str(ip)),
        headers={
            "Host": url.netloc.decode("ascii"),
            "User-Agent": limits.user_agent,
            "Accept": ", ".join(limits.accept_types),
            # A compressed body would decompress in memory before the byte
            # limit sees it; images are compressed already anyway.
            "Accept-Encoding": "identity",
        },
        timeout=httpx.Timeout(connect=connect, read=read, write=read, pool=connect),
        extensions=extensions,
    )


def _is_certificate_error(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _check_status(response: httpx.Response, url: str) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    reason = f"HTTP {status} {response.reason_phrase}".strip()
    if status in _RETRYABLE_STATUS or status >= 500:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        later = f", server asks to retry after {retry_after:.0f} s" if retry_after is not None else ""
        raise FetchFailed(f"cannot fetch {url}: {reason}{later}", url, retry_after)
    raise FetchRefused(f"cannot fetch {url}: {reason}", url)


def _save(response: httpx.Response, dest: Path, limits: FetchLimits, deadline: float, url: str) -> Fetched:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_bytes:
        raise FetchRefused(f"cannot fetch {url}: {int(declared):,} bytes is more than the "
                           f"limit of {limits.max_bytes:,} bytes", url)
    fd, tmp_name = tempfile.mkstemp(dir=dest, prefix=".fetch-", suffix=".part")
    tmp = Path(tmp_name)
    try:
        hasher = hashlib.sha256()
        size = 0
        head = b""
        mime: str | None = None
        with os.fdopen(fd, "wb") as out:
            try:
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > limits.max_bytes:  # enforced on what arrives, whatever the headers said
                        raise FetchRefused(f"cannot fetch {url}: more than the limit of "
                                           f"{limits.max_bytes:,} bytes", url)
                    if time.monotonic() > deadline:
                        raise FetchFailed(f"cannot fetch {url}: took longer than "
                                          f"{limits.total_timeout_s} s in all", url)
                    if mime is None and len(head) < SNIFF_BYTES:
                        head += chunk[:SNIFF_BYTES - len(head)]
                        if len(head) >= SNIFF_BYTES:
                            mime = _decide_type(head, response, limits, url)
                    hasher.update(chunk)
                    out.write(chunk)
            except httpx.TimeoutException as exc:
                raise FetchFailed(f"cannot fetch {url}: timed out reading the body "
                                  f"(no data for {limits.read_timeout_s} s)", url) from exc
            except httpx.TransportError as exc:
                raise FetchFailed(f"cannot fetch {url}: connection broke while reading "
                                  f"({type(exc).__name__}: {exc})", url) from exc
        if mime is None:
            mime = _decide_type(head, response, limits, url)
        digest = hasher.hexdigest()
        final = dest / f"{digest}{extension_for(mime)}"
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    log.info("fetched %s: %d bytes, %s", url, size, mime, extra={"url": url, "size": size})
    return Fetched(path=final, size=size, sha256=digest, mime_type=mime, final_url=url)


def _decide_type(head: bytes, response: httpx.Response, limits: FetchLimits, url: str) -> str:
    mime = sniff(head)
    claimed = response.headers.get("content-type", "no Content-Type")
    if mime is None:
        looks = "HTML" if head.lstrip()[:15].lower().startswith((b"<!doctype html", b"<html")) else "unknown data"
        raise FetchRefused(f"cannot fetch {url}: not an image (the server said {claimed}, "
                           f"the bytes are {looks})", url)
    if mime not in limits.accept_types:
        raise FetchRefused(f"cannot fetch {url}: {mime} images are not accepted "
                           f"(accepted: {', '.join(limits.accept_types)})", url)
    return mime
