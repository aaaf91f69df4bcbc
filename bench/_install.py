"""Shared by the reliability benches: a throw-away installation and a worker subprocess."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from tests.daemon import launch


def write_config(home: Path, sections: dict[str, dict[str, Any]]) -> Path:
    """Write ``home/config.toml`` from ``{"section": {"key": value}}`` (flat values only)."""
    home.mkdir(parents=True, exist_ok=True)
    lines = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        for k, v in values.items():
            lines.append(f"{k} = {_toml(v)}")
    path = home / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _toml(v: Any) -> str:
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml(x)}" for k, x in v.items()) + " }"
    return repr(v)


def make_images(dest: Path, n: int, size: tuple[int, int]) -> list[Path]:
    """``n`` distinct small photo-like JPEGs."""
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    w, h = size
    base = Image.linear_gradient("L").resize((w, h)).convert("RGB")
    for i in range(n):
        im = Image.blend(base, Image.new("RGB", (w, h), ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256)), 0.5)
        ImageDraw.Draw(im).ellipse((i % (w // 2), h // 4, w // 2 + i % (w // 2), 3 * h // 4), fill=(30, 90, 200))
        path = dest / f"img{i:05d}.jpg"
        im.save(path, quality=85)
        out.append(path)
    return out


def start_worker(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as fh:
        return launch(config, "worker", stdout=fh, text=False)


def children_of(pid: int) -> list[int]:
    """Living (non-zombie) processes whose parent is ``pid``, from /proc."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = stat(int(entry))
            if st and st[1] == pid and st[0] != "Z":
                out.append(int(entry))
    return out


def stat(pid: int) -> tuple[str, int] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[1])


def running(pid: int) -> bool:
    st = stat(pid)
    return st is not None and st[0] != "Z"
