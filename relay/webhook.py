"""The second ingest path: a sink for signal-cli-rest-api's RECEIVE_WEBHOOK_URL.

The REST API posts each JSON-RPC receive line synchronously and waits for us, so the
sink commits the raw body to the inbox and answers at once; nothing else happens inline.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from relay.logs import get_logger

log = get_logger("webhook")

WEBHOOK_PATH = "/v1/receive-webhook"
SINK_BANNER = "relay webhook sink"
"""What `GET WEBHOOK_PATH` answers, so `relay doctor` can tell relay's sink from another
program on the port."""
MAX_BODY = 4 * 1024 * 1024


def make_app(ingest: Callable[[list[str]], Awaitable[None]]) -> web.Application:
    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        if not body.strip():
            return web.Response(status=400, text="empty")
        try:
            await ingest([body.decode("utf-8", "replace")])
        except Exception as exc:
            log.error("webhook.ingest_failed", exc_type=type(exc).__name__)
            return web.Response(status=503, text="try again")
        return web.Response(status=200, text="ok")

    async def banner(_request: web.Request) -> web.Response:
        return web.Response(status=200, text=SINK_BANNER)

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_post(WEBHOOK_PATH, receive)
    app.router.add_get(WEBHOOK_PATH, banner)
    return app


async def start(ingest: Callable[[list[str]], Awaitable[None]], listen: str) -> web.AppRunner:
    host, _, port = listen.rpartition(":")
    runner = web.AppRunner(make_app(ingest), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host.strip("[]"), int(port))
    await site.start()
    return runner
