"""An organisation living on the sandbox: its officers and groups as simulated phones.

The demo, the end-to-end tests and the benchmarks all start from an example config
(`deploy/examples/*.toml`), point it at a sandbox, give every configured officer a
phone with the configured ACI, and create each team scope's Signal group with the
group id the config names.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relay.config import OrgConfig, ScopeKind, parse_config
from relay.sandbox import Phone, Sandbox, SandboxGroup
from relay.sandbox.ids import single_decode_group_id

EXAMPLES = Path(__file__).resolve().parent.parent / "deploy" / "examples"
BOT_NUMBER = "+15550100999"
BOT_ACI = "0b1e5d0c-4f4e-4c1e-9a3a-6f1a2b3c4d5e"


def example_path(name: str) -> Path:
    path = EXAMPLES / f"{name}.toml"
    if not path.exists():
        raise FileNotFoundError(f"example config {path} not found; run from a relay checkout")
    return path


@dataclass
class SandboxOrg:
    sandbox: Sandbox
    cfg: OrgConfig
    officers: dict[str, Phone]
    groups: dict[str, SandboxGroup]
    _reporters: int = field(default=0)

    def reporter(self, name: str | None = None, *, hide_number: bool = True,
                 profile_name: str | None = None) -> Phone:
        self._reporters += 1
        label = name or f"reporter{self._reporters}"
        number = f"+1555020{self._reporters:04d}"
        return self.sandbox.add_phone(label, number, profile_name=profile_name or label,
                                      hide_number=hide_number)

    def officer(self, officer_id: str) -> Phone:
        return self.officers[officer_id]

    def group(self, scope_id: str) -> SandboxGroup:
        return self.groups[scope_id]


def org_config_data(example: str, *, service: str, data_dir: Path,
                    database_url: str | None = None,
                    webhook_listen: str | None = None) -> dict[str, Any]:
    data = tomllib.loads(example_path(example).read_text("utf-8"))
    signal = data.setdefault("signal", {})
    signal.update({"service": service, "bot_number": BOT_NUMBER, "bot_aci": BOT_ACI,
                   "connection": "http"})
    if webhook_listen is not None:
        signal["webhook_listen"] = webhook_listen
    data["storage"] = {"url": database_url or f"sqlite:///{data_dir / 'relay.db'}"}
    data["keys"] = {"directory": str(data_dir / "keys"), "source": "directory"}
    # any free loopback port: sandbox organisations never collide on health.listen
    data.setdefault("health", {})["listen"] = "127.0.0.1:0"
    return data


async def start_sandbox_org(example: str, data_dir: Path, *, database_url: str | None = None,
                            webhook: bool = False) -> SandboxOrg:
    """A running sandbox holding the example organisation's officers and groups."""
    sandbox = Sandbox(BOT_NUMBER, BOT_ACI)
    await sandbox.start()
    webhook_listen = None
    if webhook:
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            webhook_listen = f"127.0.0.1:{probe.getsockname()[1]}"
    data = org_config_data(example, service=sandbox.service, data_dir=data_dir,
                           database_url=database_url, webhook_listen=webhook_listen)
    cfg = parse_config(data, f"example:{example}")
    if webhook_listen is not None:
        sandbox.hub.webhook_url = f"http://{webhook_listen}/v1/receive-webhook"
    officers: dict[str, Phone] = {}
    for index, officer in enumerate(cfg.officers):
        officers[officer.id] = sandbox.add_phone(
            officer.id, officer.number or f"+1555030{index:04d}", aci=officer.aci,
            profile_name=officer.display_name,
        )
    groups: dict[str, SandboxGroup] = {}
    for scope in cfg.scopes:
        if scope.kind is ScopeKind.TEAM and scope.group_id is not None:
            groups[scope.id] = sandbox.create_group(
                f"{scope.id} (conduct team)",
                members=[officers[o] for o in scope.officers],
                internal_id=single_decode_group_id(scope.group_id),
                add_members="only-admins", edit_group="only-admins",
            )
    return SandboxOrg(sandbox, cfg, officers, groups)
