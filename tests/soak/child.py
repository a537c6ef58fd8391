"""The relay child of the kill test: `python -m tests.soak.child CONFIG [LOGFILE]`.

It builds the real relay from the config file, logs to LOGFILE (JSON, append), prints
`READY` on stdout once `Relay.start()` has returned, and runs until SIGTERM or SIGINT (or
until its parent is gone), when it stops the relay cleanly and exits 0. The parent may
SIGKILL it at any moment.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from keys import Keyring
from relay.app import build
from relay.clock import SystemClock
from relay.config.load import load_config
from relay.logs import configure_logging

READY = "READY"
ORPHAN_POLL = 0.5  # seconds
STOP_LIMIT = 10.0  # seconds


def _watch_parent(loop: asyncio.AbstractEventLoop, parent: int, stop: asyncio.Event) -> None:
    """Set `stop` once the parent is gone (this process was re-parented): a parent that
    died without stopping its child must not leave a relay running."""
    if os.getppid() != parent:
        stop.set()
        return
    loop.call_later(ORPHAN_POLL, _watch_parent, loop, parent, stop)


async def serve(config_path: Path, log_path: Path) -> int:
    cfg = load_config(config_path)
    with log_path.open("a", encoding="utf-8") as log_stream:
        configure_logging(stream=log_stream, json=True)
        relay = build(cfg, Keyring.load(cfg.keys.directory), SystemClock())
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        run = asyncio.create_task(relay.run_forever(), name="relay")
        ready = asyncio.create_task(relay.ready.wait(), name="ready")
        stopping = asyncio.create_task(stop.wait(), name="stop")
        _watch_parent(loop, os.getppid(), stop)
        await asyncio.wait({run, ready, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if ready.done() and not run.done():
            sys.stdout.write(READY + "\n")
            sys.stdout.flush()
            await asyncio.wait({run, stopping}, return_when=asyncio.FIRST_COMPLETED)
        await relay.stop()
        for task in (ready, stopping):
            task.cancel()
        await asyncio.wait({run}, timeout=STOP_LIMIT)
        run.cancel()  # a stop during startup can leave start() waiting: do not hang
        (outcome,) = await asyncio.gather(run, return_exceptions=True)
        if isinstance(outcome, BaseException) and not isinstance(outcome,
                                                                asyncio.CancelledError):
            sys.stderr.write(f"child: relay failed: {type(outcome).__name__}: {outcome}\n")
            return 1
    return 0


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        sys.stderr.write("usage: python -m tests.soak.child CONFIG [LOGFILE]\n")
        return 2
    config_path = Path(argv[1])
    log_path = Path(argv[2]) if len(argv) == 3 else config_path.with_suffix(".log")
    return asyncio.run(serve(config_path, log_path))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
