"""What the row records about the original: capture time and (opt-in) GPS.

Privacy by default: GPS is read only when the recipe asks to keep it;
variants never carry EXIF at all (see :mod:`jobs.imaging.encode`).

>>> parse_exif_datetime("2023:07:14 18:02:09", "+02:00")
'2023-07-14T18:02:09+02:00'
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from PIL import Image

log = logging.getLogger(__name__)

_EXIF_IFD = 0x8769
_GPS_IFD = 0x8825
_DATETIME_ORIGINAL = 0x9003
_DATETIME_DIGITIZED = 0x9004
_OFFSET_ORIGINAL = 0x9011
_OFFSET_DIGITIZED = 0x9012


def read_metadata(im: Image.Image, keep_gps: bool) -> tuple[str | None, dict[str, float] | None]:
    """``(taken_at ISO 8601 or None, gps dict or None)`` from the image's EXIF."""
    try:
        exif = im.getexif()
        sub = exif.get_ifd(_EXIF_IFD)
    except Exception as exc:
        log.info("unreadable EXIF ignored: %s", exc)
        return None, None
    taken_at = (parse_exif_datetime(sub.get(_DATETIME_ORIGINAL), sub.get(_OFFSET_ORIGINAL))
                or parse_exif_datetime(sub.get(_DATETIME_DIGITIZED), sub.get(_OFFSET_DIGITIZED)))
    gps = None
    if keep_gps:
        try:
            gps = parse_gps(exif.get_ifd(_GPS_IFD))
        except Exception as exc:
            log.info("unreadable GPS ignored: %s", exc)
    return taken_at, gps


def parse_exif_datetime(value: Any, offset: Any = None) -> str | None:
    """EXIF ``YYYY:MM:DD HH:MM:SS`` (+ optional ``OffsetTime``) as ISO 8601; None if absent or bogus."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str):
        return None
    value = value.strip("\x00 ")
    try:
        stamp = datetime.strptime(value[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    if stamp.year < 1900:
        return None
    iso = stamp.isoformat()
    if isinstance(offset, bytes):
        offset = offset.decode("ascii", "replace")
    if isinstance(offset, str) and len(offset.strip("\x00 ")) == 6 and offset[0] in "+-" and offset[3] == ":":
        iso += offset.strip("\x00 ")
    return iso


def parse_gps(ifd: dict[int, Any]) -> dict[str, float] | None:
    """GPS IFD -> ``{"lat", "lon"[, "alt"]}`` in degrees / metres, or None."""
    if not ifd or 2 not in ifd or 4 not in ifd:
        return None
    lat = _degrees(ifd[2]) * (-1 if str(ifd.get(1, "N")).upper().startswith("S") else 1)
    lon = _degrees(ifd[4]) * (-1 if str(ifd.get(3, "E")).upper().startswith("W") else 1)
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    out = {"lat": round(lat, 7), "lon": round(lon, 7)}
    if 6 in ifd:
        alt = float(ifd[6])
        ref = ifd.get(5, 0)
        if ref in (1, b"\x01"):
            alt = -alt
        out["alt"] = round(alt, 2)
    return out


def _degrees(dms: Any) -> float:
    d, m, s = (float(x) for x in dms)
    return d + m / 60 + s / 3600
