"""`relay.signal_admin`: redaction of API texts and answers from something that is not
signal-cli-rest-api."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from relay.signal_admin import (
    ApiError,
    NotReachableError,
    SignalAdmin,
    redact,
)

NUMBER = "+15550104321"


class _NotTheApi(BaseHTTPRequestHandler):
    """Answers like a random web server: plain-text 404, or HTML with 200."""

    def do_GET(self) -> None:
        if self.path.startswith("/v1/accounts"):
            self._answer(200, b"<html>hello</html>")
        elif self.path.startswith("/v1/register/"):
            self._answer(400, f'{{"error":"The user {NUMBER} is gone\\nmore"}}'.encode())
        else:
            self._answer(404, b"404 page not found")

    def do_PUT(self) -> None:
        self.do_GET()

    def do_POST(self) -> None:
        self.do_GET()

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        return


@pytest.fixture
def other_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotTheApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_redact_hides_numbers_and_uuids() -> None:
    text = (
        f"The user {NUMBER} is not registered. "
        "Untrusted identity: 7a3c2f1e-8b9d-4e6f-a1b2-c3d4e5f60718 (+49 151 1234567)"
    )
    out = redact(text, NUMBER)
    assert NUMBER not in out
    assert "7a3c2f1e" not in out
    assert "151 1234567" not in out
    assert out.startswith("The user <number> is not registered.")


async def test_an_unrelated_server_is_named_as_such(other_server: str) -> None:
    admin = SignalAdmin(service=other_server, number=NUMBER, timeout=5)
    for call in (admin.accounts(), admin.set_profile_name("Team"), admin.link_uri("relay")):
        with pytest.raises(NotReachableError) as caught:
            await call
        message = str(caught.value)
        assert f"signal.service ({other_server}) gave an unexpected answer" in message
        assert "is it signal-cli-rest-api" in message
        assert NUMBER not in message


async def test_an_unknown_api_error_is_one_redacted_line(other_server: str) -> None:
    admin = SignalAdmin(service=other_server, number=NUMBER, timeout=5)
    with pytest.raises(ApiError) as caught:
        await admin.register()
    assert type(caught.value) is ApiError
    assert caught.value.status == 400
    assert str(caught.value) == (
        "signal-cli-rest-api refused the request (HTTP 400): The user <number> is gone"
    )
