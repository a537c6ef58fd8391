"""`relay health`: ask the running relay's loopback `/healthz`; exit 0 healthy, 1 not.

Made for Docker's HEALTHCHECK and systemd: one line on stdout, and exit 1 for every way
of not being healthy, a broken config included (Docker reserves exit 2).
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import typer

ConfigOpt = typer.Option(Path("relay.toml"), "--config", "-c", help="organisation TOML file")
PROBE_TIMEOUT = 5.0
NOT_RUNNING = "not reachable: is relay running?"


def _failure(name: str, check: dict[str, Any]) -> str:
    """One failing check in words, from its counts and ages."""
    limit = check.get("threshold_s")
    if name == "receiver":
        return "receiver (not connected to signal-cli-rest-api)"
    if name == "database":
        return "database (not answering)"
    if name == "timers":
        return f"timers (last ran {check.get('last_run_age_s')} s ago; limit {limit} s)"
    if name == "outbox":
        return (f"outbox ({check.get('waiting')} waiting to be sent, oldest "
                f"{check.get('oldest_waiting_age_s')} s; limit {limit} s)")
    if name == "dispatcher":
        return (f"dispatcher ({check.get('backlog')} received messages waiting, oldest "
                f"{check.get('oldest_pending_age_s')} s; limit {limit} s)")
    return name


def verdict(status: int, body: bytes) -> tuple[int, str]:
    """(exit code, line) for an answer from `/healthz`."""
    try:
        doc = json.loads(body)
        failing = [str(name) for name in doc["failing"]]
        checks = doc["checks"]
    except (ValueError, KeyError, TypeError):
        return 1, (f"unhealthy: unexpected answer (HTTP {status}) on health.listen; "
                   "is another program using that port?")
    if status == 200 and not failing and doc.get("status") == "ok":
        return 0, "healthy"
    names = failing or ["unknown"]
    return 1, "unhealthy: " + ", ".join(_failure(n, checks.get(n) or {}) for n in names)


def probe(listen: str, timeout: float = PROBE_TIMEOUT) -> tuple[int, str]:
    """GET http://<listen>/healthz, never through a proxy."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"http://{listen}/healthz", timeout=timeout) as resp:
            return verdict(resp.status, resp.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return verdict(exc.code, exc.read())
    except (urllib.error.URLError, OSError, TimeoutError):
        return 1, f"{NOT_RUNNING} (no answer on health.listen {listen})"


def health(config: Path = ConfigOpt) -> None:
    """Probe the running relay's /healthz on loopback: exit 0 healthy, 1 not."""
    from relay.config import ConfigError, load_config

    try:
        cfg = load_config(config, allow_pending_groups=True)
    except ConfigError as exc:
        print(f"not reachable: {exc.source}: {len(exc.problems)} config problem(s)")
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        raise typer.Exit(1) from None
    listen = cfg.health.address
    if listen is None:
        print("not reachable: the health endpoint is off in the config; set [health] "
              'listen = "127.0.0.1:9464" (and enabled = true) to probe relay')
        raise typer.Exit(1)
    if int(listen.rpartition(":")[2]) == 0:
        print("not reachable: health.listen uses port 0 (any free port); "
              "set a fixed port to probe relay")
        raise typer.Exit(1)
    code, line = probe(listen)
    print(line)
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add `relay health` to the `relay` app."""
    app.command("health")(health)
