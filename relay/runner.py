"""`relay run`: keys first (fail closed), then the database, then Signal."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys

from sqlalchemy.exc import SQLAlchemyError

from relay.clock import SystemClock
from relay.config import OrgConfig
from relay.logs import configure_logging, get_logger


def _say(text: str) -> None:
    """One line for the operator on stderr (never content, never identities)."""
    sys.stderr.write(text + "\n")


async def run_relay(cfg: OrgConfig) -> int:
    from keys import KeyringError
    from relay.app import build, freeze_heap
    from relay.gateway import ServiceCheckError
    from relay.keysource import load_keyring

    configure_logging(stream=sys.stderr, json=True, level=logging.INFO)
    log = get_logger("runner")
    try:
        keyring = load_keyring(cfg)
    except KeyringError as exc:
        _say(f"relay: refusing to start: {exc}")
        return 2
    try:
        relay = build(cfg, keyring, SystemClock())
    except SQLAlchemyError as exc:
        _say(f"relay: cannot open the database at storage.url ({type(exc).__name__}); "
             "check the URL, that the server is running, and the file permissions")
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await relay.start()
    except ServiceCheckError as exc:
        _say(f"relay: {exc}")
        await relay.stop()
        return 2
    freeze_heap()
    log.info("runner.started")
    await stop.wait()
    await relay.stop()
    return 0
