"""A fake OpenAI chat-completions server on 127.0.0.1, for tests of the LLM path.

It speaks the wire protocol (``POST /v1/chat/completions``, plain JSON or ``stream: true``
server-sent events), so the real LlamaIndex/OpenAI clients talk to it unchanged. Nothing in the
assistant is patched.

    with OpenAIServer(reply="LoRA trains few parameters [1].") as server:
        llm_spec = f"openai-compatible:{server.base_url}:fake-model"
        ...
        server.requests  # the JSON bodies received, oldest first
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

Reply = str | Callable[[dict[str, Any]], str]


class OpenAIServer:
    """Serves canned chat completions; set ``reply``, ``status`` or ``delay`` at any time.

    Args:
        reply: The assistant message, or a function of the request body returning it.
        status: HTTP status to answer with; anything but 200 sends an OpenAI-style error body.
        delay: Seconds to wait before answering (to provoke client timeouts).
        chunk_size: Characters per streamed delta.
        chunk_delay: Seconds between streamed deltas (a slow model).
        die_after: Streamed deltas after which the connection is dropped mid-answer (a crashed server).
        drop_after: Streamed deltas after which the stream just ends: no error, no finish_reason,
            no ``[DONE]`` (a server killed between two chunks, as the client sees it).

    ``disconnects`` counts streams the client closed before the end (a closed request stops the
    generation on a real server); ``sent`` counts the deltas written to streams.
    """

    def __init__(
        self,
        reply: Reply = "",
        status: int = 200,
        delay: float = 0.0,
        chunk_size: int = 7,
        chunk_delay: float = 0.0,
        die_after: int | None = None,
        drop_after: int | None = None,
    ) -> None:
        self.reply = reply
        self.status = status
        self.delay = delay
        self.chunk_size = chunk_size
        self.chunk_delay = chunk_delay
        self.die_after = die_after
        self.drop_after = drop_after
        self.disconnects = 0
        self.sent = 0
        self.requests: list[dict[str, Any]] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        """The API base, e.g. ``http://127.0.0.1:54321/v1``."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _text(self, body: dict[str, Any]) -> tuple[str, str]:
        """The reply and its finish reason: cut to ``max_tokens`` words ("length") as a model stops at its limit."""
        text = self.reply(body) if callable(self.reply) else self.reply
        limit = body.get("max_tokens")
        words = text.split(" ")
        if isinstance(limit, int) and len(words) > limit:
            return " ".join(words[:limit]), "length"
        return text, "stop"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                server.requests.append(body)
                if server.delay:
                    time.sleep(server.delay)
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    return self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                if server.status != 200:
                    return self._send_json(
                        server.status, {"error": {"message": "fake server error", "type": "server_error"}}
                    )
                text, finish = server._text(body)
                if body.get("stream"):
                    return self._stream(body, text, finish)
                self._send_json(
                    200,
                    {
                        "id": "chatcmpl-fake",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": body.get("model", "fake"),
                        "choices": [
                            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
                        ],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    },
                )

            def _send_json(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, body: dict[str, Any], text: str, finish: str) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("cache-control", "no-cache")
                self.end_headers()
                pieces = [text[i : i + server.chunk_size] for i in range(0, len(text), server.chunk_size)]
                deltas = [{"role": "assistant", "content": ""}] + [{"content": p} for p in pieces]
                for n, delta in enumerate(deltas + [{}]):
                    if server.drop_after is not None and n > server.drop_after:
                        return
                    if server.die_after is not None and n > server.die_after:
                        error = {"error": {"message": "the model crashed", "type": "server_error"}}
                        self.wfile.write(f"data: {json.dumps(error)}\n\n".encode())  # what the client sees
                        self.wfile.flush()
                        return
                    if server.chunk_delay and n:
                        time.sleep(server.chunk_delay)
                    chunk = {
                        "id": "chatcmpl-fake",
                        "object": "chat.completion.chunk",
                        "created": int(time.time()),
                        "model": body.get("model", "fake"),
                        "choices": [
                            {"index": 0, "delta": delta, "finish_reason": finish if n == len(deltas) else None}
                        ],
                    }
                    try:
                        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                        self.wfile.flush()
                    except OSError:  # the client closed the request
                        server.disconnects += 1
                        return
                    server.sent += 1
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()

        return Handler
