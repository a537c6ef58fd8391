"""Run every doctor check in order; a failure never stops the checks that do not need it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from relay.config import ConfigError, OrgConfig, load_config
from relay.doctor import checks_groups, checks_local, checks_relay, checks_signal
from relay.doctor.context import Context, DiskLimits
from relay.doctor.probe import Http
from relay.doctor.result import CheckResult, fail, ok, skipped

__all__ = ["DiskLimits", "check_config", "run_checks"]

AsyncCheck = Callable[[Context], Awaitable[CheckResult]]
SyncCheck = Callable[[Context], CheckResult]
GroupCheck = Callable[[Context, checks_groups.OfficerGroup], CheckResult]

SIGNAL_CHECKS: tuple[tuple[str, AsyncCheck], ...] = (
    ("api", checks_signal.check_api),
    ("api-mode", checks_signal.check_about),
    ("account", checks_signal.check_account),
    ("profile", checks_signal.check_profile),
    ("webhook", checks_relay.check_webhook),
)
LOCAL_CHECKS: tuple[tuple[str, SyncCheck], ...] = (
    ("keys", checks_local.check_keys),
    ("database", checks_local.check_database),
    ("disk", checks_local.check_disk),
)
LATER = (*(n for n, _ in SIGNAL_CHECKS), "groups", *(n for n, _ in LOCAL_CHECKS), "relay")


def check_config(path: Path) -> tuple[OrgConfig | None, CheckResult]:
    """The config loads (team groups may still be pending) and its [texts] are valid."""
    from handlers.flows.catalog import Catalog

    name = "config"
    try:
        cfg = load_config(path, allow_pending_groups=True)
    except ConfigError as exc:
        problems = [str(p) for p in exc.problems]
        fix = (f"each problem names its fix; `relay config check {path}` lists them one a line"
               if path.is_file() else "create it with `relay init`, or pass -c PATH")
        return None, fail(name, f"{path}: {len(problems)} problem(s): " + "; ".join(problems),
                          fix)
    problems = Catalog.check_overrides(cfg.texts)
    if problems:
        return cfg, fail(name, f"{path}: {len(problems)} problem(s): " + "; ".join(problems),
                         "correct or remove each [texts] entry named")
    return cfg, ok(name, f"{path}: {len(cfg.officers)} officer(s), {len(cfg.scopes)} "
                         "scope(s)")


def _crashed(name: str, exc: Exception) -> CheckResult:
    """A check that crashes becomes one FAIL line, never a traceback."""
    return fail(name, f"the check itself failed ({type(exc).__name__})",
                "report this to relay's maintainers with the doctor's output")


async def _guarded(name: str, result: Awaitable[CheckResult]) -> CheckResult:
    try:
        return await result
    except Exception as exc:
        return _crashed(name, exc)


def _guarded_group(name: str, check: GroupCheck, ctx: Context,
                   group: checks_groups.OfficerGroup) -> CheckResult:
    try:
        return check(ctx, group)
    except Exception as exc:
        return _crashed(name, exc)


async def run_checks(path: Path, *, limits: DiskLimits | None = None,
                     environ: dict[str, str] | None = None,
                     http_timeout: float = 10.0) -> list[CheckResult]:
    """Every check's result, in the order printed."""
    cfg, config_result = check_config(path)
    if cfg is None:
        return [config_result, *(skipped(n, "the config did not load", "config") for n in LATER)]
    results = [config_result]
    async with Http(http_timeout) as http:
        ctx = Context(path, cfg, http, limits or DiskLimits())
        if environ is not None:
            ctx.environ = environ
        for name, check in SIGNAL_CHECKS:
            results.append(await _guarded(name, check(ctx)))
        results.extend(await _group_checks(ctx))
        for name, local in LOCAL_CHECKS:
            results.append(await _guarded(name, asyncio.to_thread(local, ctx)))
        results.append(await _guarded("relay", checks_relay.check_relay(ctx)))
    return results


async def _group_checks(ctx: Context) -> list[CheckResult]:
    groups = checks_groups.officer_groups(ctx.cfg)
    if not groups:
        return [ok("groups", "no officer groups in the config (no team scopes; coordinators "
                             "by direct message)")]
    if ctx.api_ok and ctx.registered is not False:
        await checks_groups.load_groups(ctx)
    checks: tuple[tuple[str, GroupCheck], ...] = (("group", checks_groups.check_group),
                                                  ("roster", checks_groups.check_roster))
    return [_guarded_group(f"{prefix}:{group.label}", check, ctx, group)
            for prefix, check in checks for group in groups]
