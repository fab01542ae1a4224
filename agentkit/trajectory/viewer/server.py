"""The viewer's local HTTP server (stdlib): a static page and a small JSON API over a store.

    GET /                       the page
    GET /api/facets             counts for the filters (statuses, tasks, groups, rewards)
    GET /api/episodes?status=&task=&group=&min_reward=&max_reward=&q=&offset=&limit=
    GET /api/episodes/ID        one episode: timeline, rewards, failure, token rows

It binds 127.0.0.1 by default and only reads the store.
"""

from __future__ import annotations

import json
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from agentkit.tokenizer import Tokenizer

from .episode_view import episode_view
from .index import EpisodeFilter, StoreIndex

MAX_PAGE = 500
_STATIC_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}


class ViewerServer:
    """Serve one store. ``start()`` runs in a background thread (tests, notebooks);
    ``serve_forever()`` blocks (the CLI)."""

    def __init__(
        self,
        store: str | Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tokenizer: Tokenizer | None = None,
    ) -> None:
        self.index = StoreIndex(store)
        self.tokenizer = tokenizer
        self.httpd = ThreadingHTTPServer((host, port), _handler_for(self))
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}/"

    def start(self) -> ViewerServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> ViewerServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the API ----------------------------------------------------------------------------

    def facets(self) -> dict[str, Any]:
        self.index.refresh()
        return self.index.facets()

    def episodes(self, query: dict[str, list[str]]) -> dict[str, Any]:
        self.index.refresh()
        where = EpisodeFilter(
            status=_one(query, "status"),
            task=_one(query, "task"),
            group=_one(query, "group"),
            min_reward=_number(query, "min_reward"),
            max_reward=_number(query, "max_reward"),
            text=_one(query, "q"),
        )
        offset = max(int(_number(query, "offset") or 0), 0)
        limit = min(max(int(_number(query, "limit") or 50), 1), MAX_PAGE)
        return self.index.page(where, offset, limit).model_dump(mode="json")

    def episode(self, episode_id: str) -> dict[str, Any]:
        summary = self.index.summary(episode_id).model_dump(mode="json")
        traj = self.index.trajectory(episode_id)
        return episode_view(traj, summary, self.tokenizer).model_dump(mode="json")


class BadQuery(ValueError):
    pass


def _one(query: dict[str, list[str]], key: str) -> str | None:
    values = query.get(key)
    value = values[0].strip() if values else ""
    return value or None


def _number(query: dict[str, list[str]], key: str) -> float | None:
    value = _one(query, key)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError as exc:
        raise BadQuery(f"{key} must be a number, not {value!r}") from exc


def _static(name: str) -> bytes | None:
    if "/" in name or name.startswith("."):
        return None
    target = resources.files(__package__).joinpath("static", name)
    return target.read_bytes() if target.is_file() else None


def _handler_for(viewer: ViewerServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "agentkit-viewer"

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            path = parts.path
            try:
                if path in ("/", "/index.html"):
                    self._static("index.html")
                elif path == "/favicon.ico":
                    self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
                elif path.startswith("/static/"):
                    self._static(path.removeprefix("/static/"))
                elif path == "/api/facets":
                    self._json(viewer.facets())
                elif path == "/api/episodes":
                    self._json(viewer.episodes(parse_qs(parts.query)))
                elif path.startswith("/api/episodes/"):
                    self._json(viewer.episode(unquote(path.removeprefix("/api/episodes/"))))
                else:
                    self._error(HTTPStatus.NOT_FOUND, f"no such page: {path}")
            except KeyError as exc:
                self._error(HTTPStatus.NOT_FOUND, f"no such episode: {exc.args[0]}")
            except BadQuery as exc:
                self._error(HTTPStatus.BAD_REQUEST, str(exc))

        def _static(self, name: str) -> None:
            body = _static(name)
            if body is None:
                self._error(HTTPStatus.NOT_FOUND, f"no such file: {name}")
                return
            kind = _STATIC_TYPES.get(Path(name).suffix, "application/octet-stream")
            self._send(HTTPStatus.OK, body, kind)

        def _json(self, payload: Any) -> None:
            body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
            self._send(HTTPStatus.OK, body, "application/json")

        def _error(self, status: HTTPStatus, message: str) -> None:
            body = json.dumps({"error": message}).encode("utf-8")
            self._send(status, body, "application/json")

        def _send(self, status: HTTPStatus, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    return Handler
