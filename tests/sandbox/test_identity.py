"""Untrusted identity (F10): exception envelope, trust, re-delivery with the original ts."""

from __future__ import annotations

import json

import aiohttp

from relay.sandbox import Phone, Sandbox
from tests.sandbox.conftest import BOT_NUMBER, call, connect, next_frame, next_text

TRUST_EITHER = (
    "Couldn't process request - please either provide a safety number (preferred & more "
    "secure) or set 'trust_all_known_keys' to true"
)
TRUST_NOT_BOTH = (
    "Couldn't process request - please either provide a safety number or set "
    "'trust_all_known_keys' to true. But do not set both parameters at once!"
)


def _error(text: str) -> str:
    return json.dumps({"error": text}, separators=(",", ":"))


async def test_untrusted_then_trusted_redelivers_original(
    sandbox: Sandbox, alice: Phone, http: aiohttp.ClientSession
) -> None:
    ws = await connect(sandbox)
    try:
        sandbox.faults.untrusted_identity(alice)
        ts = await alice.send("sent after reinstall")
        text = await next_text(ws)
        assert text.startswith('{"exception":')
        frame = json.loads(text)
        assert list(frame) == ["exception", "envelope", "account"]
        assert frame["exception"] == {
            "message": f"Untrusted identity: {alice.aci}",
            "type": "UntrustedIdentityException",
        }
        assert frame["envelope"]["timestamp"] == ts
        assert "dataMessage" not in frame["envelope"]

        _, body = await call(http, sandbox, "GET", f"/v1/identities/{BOT_NUMBER}")
        [entry] = json.loads(body)
        assert list(entry) == ["number", "status", "fingerprint", "added", "safety_number", "uuid"]
        assert entry["status"] == "UNTRUSTED"

        # outgoing to the untrusted phone fails too
        send = {"message": "x", "number": BOT_NUMBER, "recipients": [alice.aci]}
        assert await call(http, sandbox, "POST", "/v2/send", send) == (
            400,
            _error("Unable to complete request due to untrusted recipient keys"),
        )

        path = f"/v1/identities/{BOT_NUMBER}/trust/{alice.number}"
        status, body = await call(http, sandbox, "PUT", path, {})
        assert (status, json.loads(body)) == (400, {"error": TRUST_EITHER})
        assert "(preferred \\u0026 more secure)" in body  # Go's json.Marshal escapes &
        both = {"verified_safety_number": entry["safety_number"], "trust_all_known_keys": True}
        assert await call(http, sandbox, "PUT", path, both) == (400, _error(TRUST_NOT_BOTH))
        wrong = {"verified_safety_number": "1" * 60}
        assert (await call(http, sandbox, "PUT", path, wrong))[0] == 400
        right = {"verified_safety_number": entry["safety_number"]}
        assert (await call(http, sandbox, "PUT", path, right))[0] == 204

        again = await next_frame(ws)
        assert again["envelope"]["timestamp"] == ts
        assert again["envelope"]["dataMessage"]["message"] == "sent after reinstall"
        _, body = await call(http, sandbox, "GET", f"/v1/identities/{BOT_NUMBER}")
        assert json.loads(body)[0]["status"] == "TRUSTED_VERIFIED"
        assert (await call(http, sandbox, "POST", "/v2/send", send))[0] == 201
    finally:
        await ws.close()
