"""A real HTTP server on loopback that speaks the OpenAI chat-completions and completions protocol, for tests.

Usage::

    with OpenAIServer(lambda route, body: "scripted answer") as server:
        ep = Endpoint(base_url=server.url, model="m", api_key_env=None)
        server.faults.append(429)      # the next request gets HTTP 429 (any status works: 500, 503, 400…)
        server.faults.append(2.5)      # the next request waits 2.5 s before answering (a float: a delay)
        server.faults.append(None)     # the next request is answered normally (to aim a later fault)
        ep.chat([[{"role": "user", "content": "hi"}]])
        server.requests                # every request received, 429s and delays included
        server.answered                # requests answered at once with 200 (delayed ones are not counted)
        server.log                     # [(route, body, outcome)], outcome "ok", an HTTP status, or "delay"

`responder(route, body) -> str` decides each answer: `route` is "chat" or "completions", `body` the request
JSON (`messages` or `prompt`, `model`, sampling fields). Faults are taken first-in first-out, one per request.
A responder may be anything, a lookup table or a tiny model, so other tests can reuse this server.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Responder = Callable[[str, dict], str]
_ROUTES = {"/v1/chat/completions": "chat", "/v1/completions": "completions"}


class OpenAIServer:
    """A threaded loopback server with scripted answers, injectable faults and counters."""

    def __init__(self, responder: Responder, port: int = 0):
        self.responder = responder
        self.faults: deque[int | float | None] = deque()
        self.log: list[tuple[str, dict, str | int]] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The base URL to give an OpenAI client, ending in /v1."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def requests(self) -> int:
        """Requests received so far, whatever their outcome."""
        with self._lock:
            return len(self.log)

    @property
    def answered(self) -> int:
        """Requests answered with 200 so far."""
        with self._lock:
            return sum(1 for *_, outcome in self.log if outcome == "ok")

    def __enter__(self) -> "OpenAIServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _take_fault(self) -> int | float | None:  # None: no fault
        with self._lock:
            return self.faults.popleft() if self.faults else None

    def _record(self, route: str, body: dict, outcome: str | int) -> None:
        with self._lock:
            self.log.append((route, body, outcome))


def _handler(server: OpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep test output clean
            pass

        def do_GET(self) -> None:  # noqa: N802 - `/health`, as vLLM serves it, for start-up checks
            if self.path == "/health":
                return self._send(200, {})
            return self._send(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            route = _ROUTES.get(self.path)
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            if route is None:
                return self._send(404, {"error": {"message": f"no route {self.path}"}})
            fault = server._take_fault()
            if isinstance(fault, int):
                server._record(route, body, fault)
                return self._send(fault, {"error": {"message": f"scripted {fault}", "type": "scripted"}},
                                  {"Retry-After": "0"} if fault == 429 else {})
            if isinstance(fault, float):
                server._record(route, body, "delay")  # counted on arrival: the client may hang up first
                time.sleep(fault)
            text = server.responder(route, body)
            if not isinstance(fault, float):
                server._record(route, body, "ok")
            try:
                self._send(200, _reply(route, body, text))
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client timed out and hung up

        def _send(self, status: int, payload: dict, headers: dict | None = None) -> None:
            data = json.dumps(payload).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _reply(route: str, body: dict, text: str) -> dict:
    usage = {"prompt_tokens": 1, "completion_tokens": max(1, len(text.split())), "total_tokens": 2}
    common = {"id": "cmpl-test", "created": int(time.time()), "model": body.get("model", "test"), "usage": usage}
    if route == "chat":
        return {**common, "object": "chat.completion", "choices": [
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}]}
    return {**common, "object": "text_completion", "choices": [
        {"index": 0, "finish_reason": "stop", "text": text, "logprobs": None}]}
