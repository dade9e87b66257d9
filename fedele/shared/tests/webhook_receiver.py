"""A real HTTP receiver on 127.0.0.1 for webhook tests: checks Fedele-Signature, records what it got."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from fedele.shared import webhooks


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]
    signature_valid: bool

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    secret: str = ""
    statuses: list[int] = field(default_factory=list)  # answers in order, then default_status
    default_status: int = 200
    delay_seconds: float = 0.0
    received: list[Received] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    thread: threading.Thread | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/hooks"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                signature = self.headers.get(webhooks.SIGNATURE_HEADER, "")
                valid = bool(receiver.secret) and webhooks.verify_signature(receiver.secret, signature, body)
                with receiver.lock:
                    receiver.received.append(Received(body, dict(self.headers.items()), valid))
                    status = receiver.statuses.pop(0) if receiver.statuses else receiver.default_status
                if receiver.delay_seconds:
                    time.sleep(receiver.delay_seconds)
                if not valid:
                    status = 401
                answer = b'{"ok":true}' if status < 300 else b'{"ok":false}'
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:  # the client gave up (timeout test)
                    pass

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
