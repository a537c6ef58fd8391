"""Checks of signal-cli-rest-api: reachable, json-rpc mode and version, account, profile.

Outputs name config fields (`signal.bot_number`, `signal.service`), never the number,
the account's ACI or its profile name.
"""

from __future__ import annotations

import ipaddress
import re

from relay.doctor.context import Context
from relay.doctor.result import CheckResult, fail, ok, skipped, warn

MIN_VERSION = (0, 101)
IMAGE = "bbernhard/signal-cli-rest-api"
API_FIX = (
    "start the signal-cli-rest-api container (`docker compose up -d signal-cli-rest-api`), "
    "attach relay to its private Docker network and set signal.service to its host:port; "
    "never publish the API on a public port (it has no authentication)"
)
_SAFE = re.compile(r"[^A-Za-z0-9._+-]")


def _shown(value: object) -> str:
    """A value the API reported (mode, version), made safe to print on one line."""
    return _SAFE.sub("?", str(value))[:40]


async def check_api(ctx: Context) -> CheckResult:
    """`GET /v1/health` answers 204."""
    name = "api"
    reply = await ctx.http.get(ctx.api("/v1/health"))
    if not reply.answered:
        return fail(name, f"nothing answers at signal.service ({reply.error})", API_FIX)
    if reply.status != 204:
        return fail(name, f"GET /v1/health at signal.service answered HTTP {reply.status}, "
                          "not 204: is it signal-cli-rest-api?", API_FIX)
    ctx.api_ok = True
    host = ctx.cfg.signal.service.rpartition(":")[0].strip("[]")
    try:
        public = ipaddress.ip_address(host).is_global
    except ValueError:
        public = False
    if public:
        return warn(name, "signal-cli-rest-api answers at a public address (signal.service)",
                    "keep the REST API on a private network or loopback and remove any "
                    "published port: anyone who reaches it can read reports and send as relay")
    return ok(name, "signal-cli-rest-api answers at signal.service")


def _version(text: str) -> tuple[int, ...] | None:
    parts = text.split(".")
    if not all(p.isdigit() for p in parts):
        return None
    return tuple(int(p) for p in parts)


async def check_about(ctx: Context) -> CheckResult:
    """`GET /v1/about`: mode json-rpc, version 0.101 or newer (what signalbot 2.2.1 needs)."""
    name = "api-mode"
    if not ctx.api_ok:
        return skipped(name, "the REST API is not reachable", "api")
    reply = await ctx.http.get(ctx.api("/v1/about"))
    about = reply.ok_json()
    if not isinstance(about, dict):
        return fail(name, f"GET /v1/about answered HTTP {reply.status} without the expected "
                          "JSON", f"run {IMAGE} 0.101 or newer")
    mode, version = str(about.get("mode", "")), str(about.get("version", ""))
    found = f"mode {_shown(mode)}, version {_shown(version)}"
    failures: list[str] = []
    if mode != "json-rpc":
        failures.append("set MODE=json-rpc on the signal-cli-rest-api container and recreate it")
    parsed = _version(version)
    if parsed is not None and parsed < MIN_VERSION:
        failures.append(f"use {IMAGE}:0.101 or newer (signalbot 2.2.1 refuses older ones)")
    if failures:
        return fail(name, found, "; ".join(failures))
    if version == "unset":
        return warn(name, f"{found}: a local build, so signalbot skips its version check",
                    f"run a released image, {IMAGE}:0.101 or newer")
    if parsed is None:
        return warn(name, f"{found}: not a version number relay understands",
                    f"run a released image, {IMAGE}:0.101 or newer")
    return ok(name, found)


async def check_account(ctx: Context) -> CheckResult:
    """`GET /v1/accounts` lists `signal.bot_number`."""
    name = "account"
    if not ctx.api_ok:
        return skipped(name, "the REST API is not reachable", "api")
    reply = await ctx.http.get(ctx.api("/v1/accounts"))
    accounts = reply.ok_json()
    if not isinstance(accounts, list):
        return warn(name, f"could not list the REST API's accounts (HTTP {reply.status})",
                    f"run {IMAGE} 0.101 or newer and look at its log")
    ctx.registered = ctx.cfg.signal.bot_number in accounts
    if not ctx.registered:
        others = len(accounts)
        return fail(name, f"signal.bot_number is not registered on this REST API "
                          f"({others} other account(s) are)",
                    f"`{ctx.cmd('relay register')}`, then "
                    f"`{ctx.cmd('relay register --code CODE')}` with the code Signal sends")
    return ok(name, "signal.bot_number is registered")


async def check_profile(ctx: Context) -> CheckResult:
    """The account has a profile name (groups cannot be created or messaged without one)."""
    name = "profile"
    if not ctx.api_ok:
        return skipped(name, "the REST API is not reachable", "api")
    if ctx.registered is False:
        return skipped(name, "signal.bot_number is not registered", "account")
    number = ctx.cfg.signal.bot_number
    reply = await ctx.http.get(ctx.api(f"/v1/contacts/{number}/{number}?all_recipients=true"))
    command = 'relay profile set "<name reporters will see>"'
    fix = f"`{ctx.cmd(command)}`"
    if reply.status == 404:
        return fail(name, "the REST API has no profile for signal.bot_number", fix)
    entry = reply.ok_json()
    if not isinstance(entry, dict):
        return warn(name, f"could not read the account's profile (HTTP {reply.status})",
                    f"run {IMAGE} 0.101 or newer and look at its log")
    profile = entry.get("profile")
    given = profile.get("given_name") if isinstance(profile, dict) else None
    if not (isinstance(given, str) and given.strip()):
        return fail(name, "signal.bot_number has no profile name: Signal groups cannot be "
                          "created or messaged without one", fix)
    return ok(name, "signal.bot_number has a profile name")
