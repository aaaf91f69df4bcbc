"""A real OpenAI-compatible ``/embeddings`` server on 127.0.0.1 for tests.

Each request pops the next scripted reply (status, headers, body or None for
a normal answer); with the script empty it answers normally. A normal answer
embeds each input as a deterministic unit vector seeded by a hash of the
input, and lists the rows in REVERSE order so clients must sort by ``index``.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np


def expected_vector(text: str, dim: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    v = np.random.default_rng(seed).normal(size=dim)
    return (v / np.linalg.norm(v)).astype(np.float32)


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None  # None: a normal answer
    delay_s: float = 0.0


class EmbedServer:
    """``embed``: how one input (a text or an image data URL) becomes a vector; default :func:`expected_vector`."""

    def __init__(self, dim: int, embed: Callable[[str, int], np.ndarray] | None = None) -> None:
        self.dim = dim
        self.embed = embed or expected_vector
        self.script: list[Reply] = []
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.down = False  # answer 503 to everything
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server._lock:
                    server.requests.append(body)
                    server.headers.append(dict(self.headers))
                    reply = server.script.pop(0) if server.script else Reply()
                    if server.down:
                        reply = Reply(503, body={"error": "down for maintenance"})
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                if self.path != "/v1/embeddings":
                    reply = Reply(404, body={"error": "no such route"})
                payload = reply.body if reply.body is not None else server.answer(body)
                data = json.dumps(payload).encode()
                try:
                    self.send_response(reply.status)
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and left

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        rows = [
            {"object": "embedding", "index": i, "embedding": self.embed(text, self.dim).tolist()}
            for i, text in enumerate(body["input"])
        ]
        return {"object": "list", "model": body["model"], "data": rows[::-1]}

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)
