"""Checks of relay's own endpoints: the webhook sink and the loopback health endpoint."""

from __future__ import annotations

from relay.cli.healthcmd import verdict
from relay.doctor.context import Context, connect_to, health_listen
from relay.doctor.result import CheckResult, fail, ok, warn
from relay.webhook import SINK_BANNER, WEBHOOK_PATH


def _start(ctx: Context) -> str:
    return f"start relay: `{ctx.cmd('relay run')}` (or `systemctl start relay`)"


async def check_webhook(ctx: Context) -> CheckResult:
    """`signal.webhook_listen` is set and relay's sink answers there."""
    name = "webhook"
    listen = ctx.cfg.signal.webhook_listen
    if listen is None:
        return warn(name, "signal.webhook_listen is not set: messages that arrive while relay "
                          "restarts are lost",
                    'set signal.webhook_listen = "<relay-host>:8081" and, on the REST API, '
                    "RECEIVE_WEBHOOK_URL=http://<relay-host>:8081" + WEBHOOK_PATH)
    reply = await ctx.http.get(f"http://{connect_to(listen)}{WEBHOOK_PATH}")
    if reply.status == 200 and reply.text().strip() == SINK_BANNER:
        return ok(name, "relay's webhook sink answers at signal.webhook_listen")
    if reply.answered:
        return fail(name, f"another program answers at signal.webhook_listen "
                          f"(HTTP {reply.status}), not relay's webhook sink",
                    "stop that program or pick a free port for signal.webhook_listen "
                    "(and the same in RECEIVE_WEBHOOK_URL on the REST API)")
    health = await ctx.relay_health()
    if health is not None and health.answered:
        return fail(name, "relay is running but its webhook sink does not answer at "
                          "signal.webhook_listen",
                    "restart relay and look in its log for a webhook error (is the port "
                    "taken, or the address not on this host?)")
    return warn(name, "nothing answers at signal.webhook_listen: relay is not running",
                _start(ctx))


async def check_relay(ctx: Context) -> CheckResult:
    """relay's `/healthz` on `[health] listen`, when it is configured."""
    name = "relay"
    if health_listen(ctx.cfg) is None:
        return ok(name, "not checked: the health endpoint is off or on port 0 "
                        "([health] listen)")
    reply = await ctx.relay_health()
    if reply is None or not reply.answered:
        return warn(name, "relay is not running (nothing answers at health.listen)",
                    _start(ctx))
    code, line = verdict(reply.status, reply.body)
    if code == 0:
        return ok(name, "relay is running and healthy")
    return fail(name, f"relay is running but {line}",
                f"see `{ctx.cmd('relay health')}` and relay's log (docs/runbook.md)")
