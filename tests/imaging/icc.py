"""Build small ICC v2 profiles in pure Python for the colour tests.

No CMYK or Display P3 profile ships with Pillow or LittleCMS's built-ins, and
the tests must not depend on files outside the repository; so they are built
here, with a mapping the test knows exactly:

- ``display_p3()``: a matrix/TRC profile (Display P3 primaries, sRGB curve).
- ``cmyk_press()``: a CMYK -> Lab lookup table whose colours are deliberately
  *not* the naive ``255 * (1 - C) * (1 - K)``, so a pipeline that ignores the
  profile gets the colour visibly wrong.
"""

from __future__ import annotations

import itertools
import struct

import numpy as np

D50 = np.array([0.9642, 1.0, 0.8249])
# Linear sRGB -> XYZ (D65), and the Bradford D65 -> D50 adaptation LittleCMS uses.
SRGB_TO_XYZ = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
P3_TO_XYZ = np.array([[0.4866, 0.2657, 0.1982], [0.2290, 0.6917, 0.0793], [0.0, 0.0451, 1.0439]])
BRADFORD_D65_D50 = np.array([[1.0478, 0.0229, -0.0501], [0.0295, 0.9905, -0.0171], [-0.0092, 0.0151, 0.7519]])


def srgb_decode(v: np.ndarray) -> np.ndarray:
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def srgb_encode(v: np.ndarray) -> np.ndarray:
    v = np.clip(v, 0, 1)
    return np.where(v <= 0.0031308, v * 12.92, 1.055 * v ** (1 / 2.4) - 0.055)


def p3_to_srgb8(rgb8: tuple[int, int, int]) -> tuple[int, ...]:
    """The sRGB value of a Display P3 colour (the test's independent reference)."""
    lin = srgb_decode(np.array(rgb8) / 255)
    srgb_lin = np.linalg.solve(SRGB_TO_XYZ, P3_TO_XYZ @ lin)
    return tuple(round(x) for x in srgb_encode(srgb_lin) * 255)


def press_rgb(c: float, m: float, y: float, k: float) -> tuple[float, float, float]:
    """What the fake press profile says a CMYK ink mix (0-1) looks like, in sRGB 0-1."""
    r = (1 - 0.95 * c) * (1 - 0.15 * m) * (1 - 0.9 * k)
    g = (1 - 0.35 * c) * (1 - 0.9 * m) * (1 - 0.05 * y) * (1 - 0.9 * k)
    b = (1 - 0.1 * c) * (1 - 0.1 * m) * (1 - 0.9 * y) * (1 - 0.9 * k)
    return r, g, b


def _srgb_to_lab_d50(rgb: tuple[float, float, float]) -> tuple[float, float, float]:
    xyz = BRADFORD_D65_D50 @ (SRGB_TO_XYZ @ srgb_decode(np.array(rgb)))
    t = xyz / D50
    f = np.where(t > (6 / 29) ** 3, np.cbrt(t), t / (3 * (6 / 29) ** 2) + 4 / 29)
    return 116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])


def _s15(v: float) -> bytes:
    return struct.pack(">i", round(v * 65536))


def _xyz(v: tuple[float, float, float] | np.ndarray) -> bytes:
    return b"XYZ \0\0\0\0" + b"".join(_s15(float(x)) for x in v)


def _desc(text: str) -> bytes:
    ascii_ = text.encode("ascii") + b"\0"
    return b"desc\0\0\0\0" + struct.pack(">I", len(ascii_)) + ascii_ + bytes(4 + 4 + 2 + 1 + 67)


def _text(text: str) -> bytes:
    return b"text\0\0\0\0" + text.encode("ascii") + b"\0"


def _srgb_curve() -> bytes:
    # parametricCurveType function 3: the sRGB transfer curve.
    g, a, b, c, d = 2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045
    return b"para\0\0\0\0" + struct.pack(">H2x", 3) + b"".join(_s15(x) for x in (g, a, b, c, d))


def _profile(cls: bytes, space: bytes, pcs: bytes, tags: list[tuple[bytes, bytes]]) -> bytes:
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for sig, body in tags:
        body += bytes(-len(body) % 4)
        table += sig + struct.pack(">II", offset + len(data), len(body))
        data += body
    size = offset + len(data)
    header = (struct.pack(">I", size) + b"lcms" + struct.pack(">I", 0x02100000) + cls + space + pcs
              + struct.pack(">6H", 2024, 1, 1, 0, 0, 0) + b"acsp" + bytes(4) + bytes(4) + bytes(8) + bytes(8)
              + struct.pack(">I", 0) + _xyz(D50)[8:] + bytes(4) + bytes(16))
    header += bytes(128 - len(header))
    return header + struct.pack(">I", len(tags)) + table + data


def display_p3() -> bytes:
    cols = BRADFORD_D65_D50 @ P3_TO_XYZ
    curve = _srgb_curve()
    return _profile(b"mntr", b"RGB ", b"XYZ ", [
        (b"desc", _desc("Test Display P3")), (b"cprt", _text("test")), (b"wtpt", _xyz(D50)),
        (b"rXYZ", _xyz(cols[:, 0])), (b"gXYZ", _xyz(cols[:, 1])), (b"bXYZ", _xyz(cols[:, 2])),
        (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve),
    ])


def cmyk_press(grid: int = 9) -> bytes:
    steps = [i / (grid - 1) for i in range(grid)]
    clut = b""
    for c, m, y, k in itertools.product(steps, repeat=4):  # first channel varies slowest
        lab_l, lab_a, lab_b = _srgb_to_lab_d50(press_rgb(c, m, y, k))
        clut += struct.pack(">3H", *(round(min(65535, max(0, v))) for v in
                                     (lab_l * 65280 / 100, (lab_a + 128) * 256, (lab_b + 128) * 256)))
    identity = struct.pack(">2H", 0, 65535)
    lut = (b"mft2\0\0\0\0" + struct.pack(">BBBx", 4, 3, grid)
           + b"".join(_s15(v) for v in (1, 0, 0, 0, 1, 0, 0, 0, 1)) + struct.pack(">HH", 2, 2)
           + identity * 4 + clut + identity * 3)
    return _profile(b"prtr", b"CMYK", b"Lab ", [
        (b"desc", _desc("Test CMYK press")), (b"cprt", _text("test")), (b"wtpt", _xyz(D50)), (b"A2B0", lut),
    ])
