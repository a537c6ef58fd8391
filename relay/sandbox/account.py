"""The bot account's registration state: registered or not, pending code, PIN, device link.

``registered=False`` means signal-cli has no account for the bot number yet: account
routes answer ``Specified account does not exist`` and ``GET /v1/accounts`` is empty.
A registration (``POST /v1/register``) leaves a 6-digit ``verification_code`` that
``POST /v1/register/{n}/verify/{code}`` must repeat; ``pin`` (set through
``POST /v1/accounts/{n}/pin`` or the ``registration_lock`` fault) locks re-registration.
A device link (``GET /v1/qrcodelink``) waits for the simulated scan
(``POST /_sandbox/link/complete``), after which the account is a linked device.
"""

from __future__ import annotations

import base64
import secrets
import struct
import zlib
from dataclasses import dataclass
from urllib.parse import quote

PIN_TRIES = 10


@dataclass
class AccountState:
    """What signal-cli knows about the bot account besides its profile."""

    registered: bool = True
    linked: bool = False
    device_name: str | None = None
    verification_code: str | None = None
    code_by_voice: bool = False
    captcha_required: bool = True
    pin: str | None = None
    pin_tries_left: int = PIN_TRIES
    link_uri: str | None = None
    link_device_name: str | None = None

    def new_verification_code(self) -> str:
        """A fresh 6-digit code (what Signal would text the number)."""
        self.verification_code = f"{secrets.randbelow(1_000_000):06d}"
        return self.verification_code

    def start_link(self, device_name: str) -> str:
        """A fresh ``sgnl://linkdevice`` URI waiting to be scanned."""
        address = secrets.token_urlsafe(16)
        public_key = base64.b64encode(b"\x05" + secrets.token_bytes(32)).decode("ascii")
        self.link_uri = f"sgnl://linkdevice?uuid={address}&pub_key={quote(public_key, safe='')}"
        self.link_device_name = device_name
        return self.link_uri

    def finish_link(self) -> bool:
        """The phone scanned the pending link: the account is now a linked device."""
        if self.link_uri is None:
            return False
        self.registered = True
        self.linked = True
        self.device_name = self.link_device_name
        self.link_uri = None
        self.link_device_name = None
        return True


def placeholder_png(size: int = 64) -> bytes:
    """A small valid greyscale PNG (a checkerboard), standing in for the QR code."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(
        b"\x00" + bytes(0 if (x // 8 + y // 8) % 2 else 255 for x in range(size))
        for y in range(size)
    )
    header = struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
