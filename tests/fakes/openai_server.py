"""A stand-in for an OpenAI-compatible chat endpoint: a real HTTP server on 127.0.0.1 in a background thread.

It speaks the chat-completions wire format (POST /v1/chat/completions), records every request, answers with
a scripted rule, and can fail the first requests with given status codes or delay every answer.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Mapping, Sequence

Reply = Callable[[Mapping[str, Any]], str]  # the request body -> the assistant's content

_LISTED = re.compile(r"^\s*1\.\s+(.+?)\s*$", re.MULTILINE)


def constant(text: str) -> Reply:
    """Always answer `text`."""
    return lambda body: text


def first_listed_action(body: Mapping[str, Any]) -> str:
    """The first item of the last numbered list ("1. go forward") in the last user message, else "look"."""
    user = [m["content"] for m in body["messages"] if m["role"] == "user"]
    found = _LISTED.findall(user[-1]) if user else []
    return found[-1] if found else "look"


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    path: str
    headers: Mapping[str, str]  # lower-cased names
    body: Mapping[str, Any]


class FakeOpenAIServer:
    """`with FakeOpenAIServer(reply) as fake:` serves on `fake.base_url` (ending in /v1) until the block ends.

    `failures` are status codes returned, in order, to the first requests (429 comes with `Retry-After: 0`);
    `delay_s` holds every answer back that long (cut short when the server stops).
    """

    def __init__(self, reply: Reply = first_listed_action, *, failures: Sequence[int] = (),
                 delay_s: float = 0.0) -> None:
        self.reply = reply
        self.delay_s = delay_s
        self.requests: list[RecordedRequest] = []
        self._failures = list(failures)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> "FakeOpenAIServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)

    def _answer(self, path: str, headers: Mapping[str, str], raw: bytes) -> tuple[int, dict[str, str], bytes]:
        try:
            body = json.loads(raw)
        except ValueError:
            return _error(400, "request body is not JSON")
        with self._lock:
            self.requests.append(RecordedRequest(path, headers, body))
            failure = self._failures.pop(0) if self._failures else None
        if self.delay_s and self._stopping.wait(self.delay_s):
            return _error(503, "server stopping")
        if path != "/v1/chat/completions":
            return _error(404, f"no route {path}")
        if failure is not None:
            return _error(failure, f"scripted failure {failure}")
        if not isinstance(body.get("model"), str) or not isinstance(body.get("messages"), list):
            return _error(400, "'model' and 'messages' are required")
        completion = {
            "id": f"chatcmpl-fake-{len(self.requests)}",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": self.reply(body)},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        }
        return 200, {}, json.dumps(completion).encode()


def _error(status: int, message: str) -> tuple[int, dict[str, str], bytes]:
    headers = {"Retry-After": "0"} if status == 429 else {}
    kind = "invalid_request_error" if 400 <= status < 500 else "server_error"
    return status, headers, json.dumps({"error": {"message": message, "type": kind, "code": status}}).encode()


def _handler(fake: FakeOpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real endpoints

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, extra, payload = fake._answer(self.path, headers, raw)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet test output
            pass

    return Handler
