"""The ``/_sandbox`` HTTP control API (for child processes and humans with curl)."""

from __future__ import annotations

import json

import aiohttp

from relay.sandbox import Sandbox
from tests.sandbox.conftest import BOT_NUMBER, call, connect, next_frame


async def test_drive_phones_and_faults_over_http(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    status, body = await call(
        http, sandbox, "POST", "/_sandbox/phones", {"name": "Dana", "number": "+4917644444444"}
    )
    assert status == 201
    dana = json.loads(body)
    status, body = await call(
        http, sandbox, "POST", "/_sandbox/groups", {"name": "Officers", "members": ["Dana"]}
    )
    group = json.loads(body)
    assert group["id"].startswith("group.")

    ws = await connect(sandbox)
    try:
        status, body = await call(
            http, sandbox, "POST", "/_sandbox/phones/Dana/send", {"text": "over http"}
        )
        assert status == 200
        ts = json.loads(body)["timestamp"]
        frame = await next_frame(ws)
        assert frame["envelope"]["timestamp"] == ts
        assert frame["envelope"]["sourceUuid"] == dana["aci"]
        await call(http, sandbox, "POST", "/_sandbox/phones/Dana/send",
                   {"text": "in group", "group": group["id"]})  # fmt: skip
        assert (await next_frame(ws))["envelope"]["dataMessage"]["groupInfo"]["type"] == "DELIVER"
    finally:
        await ws.close()

    send = {"message": "reply", "number": BOT_NUMBER, "recipients": [dana["aci"]]}
    assert (await call(http, sandbox, "POST", "/v2/send", send))[0] == 201
    _, body = await call(http, sandbox, "GET", "/_sandbox/phones/Dana/inbox")
    assert [item["text"] for item in json.loads(body)] == ["reply"]

    assert (await call(http, sandbox, "POST", "/_sandbox/faults/send_429", {}))[0] == 204
    assert (await call(http, sandbox, "POST", "/v2/send", send))[0] == 429
    assert (
        await call(http, sandbox, "POST", "/_sandbox/faults/send_400_untrusted",
                   {"target": "Dana", "times": None})
    )[0] == 204  # fmt: skip
    assert (await call(http, sandbox, "DELETE", "/_sandbox/faults"))[0] == 204
    assert (await call(http, sandbox, "POST", "/v2/send", send))[0] == 201
    assert (await call(http, sandbox, "POST", "/_sandbox/faults/nope", {}))[0] == 400

    _, body = await call(http, sandbox, "GET", "/_sandbox/requests")
    paths = [r["path"] for r in json.loads(body)]
    assert "/v2/send" in paths
    assert not any(p.startswith("/_sandbox") for p in paths)  # control calls are not logged
