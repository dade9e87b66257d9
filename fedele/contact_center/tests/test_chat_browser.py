"""Acceptance in a real browser: a plain HTML page on another origin embeds the chat widget with one
script tag; on a 375 px phone the visitor opens it, fills the pre-chat form, sends a message and a
file, sees the agent typing and the agent's reply (sent with chat_message_send) as text, reloads the
page and finds the conversation again. A site not in the widget's allowed origins cannot frame it.

fedele runs under uvicorn in a thread (the project's ASGI stack, websockets behind the
AllowedHostsOriginValidator); the host pages are served by http.server on other ports (foreign
origins). Screenshot: /tmp/chat-widget-phone.png (and under $FEDELE_SCREENSHOTS_DIR when set).
"""

from __future__ import annotations

import asyncio
import http.server
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fedele.contact_center.models import (
    AgentState,
    ChatSession,
    ChatWidget,
    Interaction,
    InteractionMessage,
    InteractionState,
)
from fedele.contact_center.services.interactions import interaction_connect
from fedele.contact_center.services.messaging import chat_agent_typing, chat_message_send
from fedele.contact_center.tests.factories import AgentFactory, QueueFactory
from tests.browser.conftest import CHROMIUM_ARGS, CHROMIUM_PATH

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect
PHONE = {"width": 375, "height": 740}
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _application() -> Any:
    """The project's ASGI stack as config/asgi.py builds it (HTTP through Django, websockets behind
    AllowedHostsOriginValidator and the session auth), with the contact center's websocket routes."""
    from channels.auth import AuthMiddlewareStack
    from channels.routing import ProtocolTypeRouter, URLRouter
    from channels.security.websocket import AllowedHostsOriginValidator
    from django.core.asgi import get_asgi_application

    from fedele.contact_center.consumers import websocket_urlpatterns

    return ProtocolTypeRouter(
        {
            "http": get_asgi_application(),
            "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
        }
    )


class _UvicornThread(threading.Thread):
    url = ""
    loop: asyncio.AbstractEventLoop

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        import uvicorn

        application = _application()

        self.server = uvicorn.Server(
            uvicorn.Config(application, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
        )

    def run(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(self.server.serve())

    def call(self, function: Callable[[], Any]) -> Any:
        """Run a sync service as a request of this server would (a worker thread whose realtime pushes
        go back through the server's event loop, where the in-memory channel layer lives)."""
        from asgiref.sync import sync_to_async

        return asyncio.run_coroutine_threadsafe(sync_to_async(function)(), self.loop).result(timeout=30)


@pytest.fixture
def fedele_server() -> Iterator[_UvicornThread]:
    port = _free_port()
    server = _UvicornThread(port)
    server.start()
    deadline = time.monotonic() + 30
    while not server.server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.server.started, "uvicorn did not start"
    server.url = f"http://127.0.0.1:{port}"
    yield server
    server.server.should_exit = True
    server.join(timeout=10)


class _PageServer(http.server.ThreadingHTTPServer):
    """Serves one HTML page (set after start: it needs the widget key, made once the port is known)."""

    html = ""


class _PageHandler(http.server.BaseHTTPRequestHandler):
    server: _PageServer

    def do_GET(self) -> None:
        body = self.server.html.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return None


def _page_server() -> tuple[_PageServer, str]:
    server = _PageServer(("127.0.0.1", _free_port()), _PageHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def _host_html(fedele: str, key: str) -> str:
    # A host page with aggressive CSS of its own: none of it may reach the widget.
    return f"""<!doctype html><html><head><meta name="viewport" content="width=device-width, initial-scale=1">
<style>* {{ font-size: 40px !important; color: red !important; }}
button {{ display: none !important; }}</style>
</head><body><h1>Negozio di esempio</h1><p>Benvenuti.</p>
<script src="{fedele}/contact-center/chat/widget.js" data-widget="{key}" data-lang="en" async></script>
</body></html>"""


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not Path(CHROMIUM_PATH).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM_PATH}")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with playwright_sync.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM_PATH, args=CHROMIUM_ARGS)
            yield browser
            browser.close()


def _wait_for(condition: Callable[[], Any], *, seconds: float = 20) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out")


def _screenshot(tab: Any, name: str) -> None:
    paths = [Path("/tmp") / name]
    if os.environ.get("FEDELE_SCREENSHOTS_DIR"):
        paths.append(Path(os.environ["FEDELE_SCREENSHOTS_DIR"]) / name)
    for path in paths:
        tab.screenshot(path=str(path))


def test_a_visitor_on_a_foreign_site_chats_with_an_agent_on_a_phone(chromium, fedele_server, settings):
    settings.CONTACT_CENTER_ROUTE_ON_COMMIT = False  # the agent takes the chat by hand below
    queue = QueueFactory(code="web", channels=["chat"])
    agent = AgentFactory(state=AgentState.AVAILABLE, display_name="Anna Rossi")
    agent.queues.add(queue)
    host, host_url = _page_server()
    stranger, stranger_url = _page_server()
    widget = ChatWidget.objects.create(
        name="Assistenza", queue=queue, allowed_origins=[host_url], max_message_chars=200, created_at=_now()
    )
    host.html = stranger.html = _host_html(fedele_server.url, widget.public_key)
    context = chromium.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    context.set_default_timeout(30_000)
    tab = context.new_page()
    # Once the browser talks to the server, the test reads and writes the database through the
    # server's own thread for Django work: on SQLite's shared in-memory database a read beside the
    # server's open write fails at once with "database table is locked" (no busy wait in shared cache).
    db = fedele_server.call
    messages = InteractionMessage.objects
    try:
        tab.goto(host_url)
        launcher = tab.locator("[data-testid=fedele-chat-launcher]")
        expect(launcher).to_be_visible()  # the host's `button {display: none}` does not reach it
        launcher.click()
        frame = tab.frame_locator("[data-testid=fedele-chat-frame]")
        expect(frame.locator("[data-testid=chat-title]")).to_have_text("Assistenza")
        frame.locator("[data-testid=prechat-name]").fill("Mario Bianchi")
        frame.locator("[data-testid=prechat-email]").fill("mario@example.it")
        frame.locator("[data-testid=prechat-message]").fill("Buongiorno!")
        frame.locator("[data-testid=prechat-consent]").check()
        frame.locator("[data-testid=prechat-submit]").click()
        expect(frame.locator("[data-testid=chat-input]")).to_be_visible()

        frame.locator("[data-testid=chat-input]").fill("La mia fattura è sbagliata")
        frame.locator("[data-testid=chat-send]").click()
        session = _wait_for(lambda: db(lambda: ChatSession.objects.select_related("interaction").first()))
        interaction = session.interaction
        _wait_for(
            lambda: db(
                lambda: InteractionMessage.objects.filter(
                    interaction=interaction, body="La mia fattura è sbagliata"
                ).exists()
            )
        )
        assert session.origin == host_url
        assert (interaction.channel, interaction.state) == ("chat", InteractionState.QUEUED)

        interaction = db(lambda: interaction_connect(interaction=interaction, agent=agent))
        fedele_server.call(lambda: chat_agent_typing(interaction=interaction, agent=agent, typing=True))
        expect(frame.locator("[data-testid=chat-typing]")).to_be_visible()
        fedele_server.call(
            lambda: chat_message_send(
                interaction=interaction, agent=agent, body="Salve Mario, <b>controllo</b> subito."
            )
        )
        reply = frame.locator("[data-testid=chat-message]").filter(has_text="controllo")
        expect(reply).to_contain_text("Salve Mario, <b>controllo</b> subito.")  # text, never HTML
        expect(reply).to_contain_text("Anna Rossi")
        expect(frame.locator("[data-testid=chat-typing]")).to_be_hidden()

        frame.locator("[data-testid=chat-file]").set_input_files(
            {"name": "scontrino.png", "mimeType": "image/png", "buffer": PNG}
        )
        expect(frame.locator("a.chat-file")).to_contain_text("scontrino.png")
        uploaded = _wait_for(
            lambda: db(lambda: messages.filter(interaction=interaction).exclude(attachments=[]).first())
        )
        assert uploaded.attachments[0]["content_type"] == "image/png"

        overflow = (
            tab.frame_locator("[data-testid=fedele-chat-frame]")
            .locator("body")
            .evaluate("body => body.scrollWidth <= window.innerWidth + 1")
        )
        assert overflow is True
        _screenshot(tab, "chat-widget-phone.png")

        # A reload resumes the same chat (the token is kept in the frame's storage).
        tab.reload()
        tab.locator("[data-testid=fedele-chat-launcher]").click()
        expect(frame.locator("[data-testid=chat-messages]")).to_contain_text("controllo")
        expect(frame.locator("[data-testid=chat-messages]")).to_contain_text("La mia fattura è sbagliata")
        assert db(ChatSession.objects.count) == 1
        senders = db(lambda: list(messages.filter(interaction=interaction).values_list("sender", flat=True)))
        assert senders == ["customer", "customer", "agent", "customer"]

        # A site the widget does not allow cannot show it: the browser refuses to frame the chat.
        other = context.new_page()
        other.goto(stranger_url)
        other.locator("[data-testid=fedele-chat-launcher]").click()
        other.wait_for_timeout(1500)
        blocked = other.frame_locator("[data-testid=fedele-chat-frame]").locator("[data-testid=prechat-name]")
        assert blocked.count() == 0
        assert db(Interaction.objects.count) == 1
    finally:
        context.close()
        host.shutdown()
        stranger.shutdown()


def _now() -> Any:
    from django.utils import timezone

    return timezone.now()
