"""`relay groups create` against the sandbox over loopback: an admin-only group with no
invite link holding exactly the scope's officers, its id written into the config with
every comment kept, and failures that leave the file untouched."""

from __future__ import annotations

import asyncio
import tomllib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from relay.cli.main import app
from relay.config import ConfigError, OrgConfig, load_config
from relay.sandbox import Sandbox, SandboxGroup
from relay.setup.groups import GROUP_NAME_MAX

pytestmark = pytest.mark.asyncio

BOT = "+15550166001"
BOT_ACI = "0b1e5d0c-4f4e-4c1e-9a3a-6f1a2b3c4d5e"


@dataclass
class Org:
    sandbox: Sandbox
    config: Path
    cfg: OrgConfig

    async def relay(self, *args: str) -> Result:
        """Run `relay ...` as a user would, in a thread: the CLI has its own event loop."""
        return await asyncio.to_thread(CliRunner().invoke, app, [*args, "-c", str(self.config)])

    def text(self) -> str:
        return self.config.read_text("utf-8")

    def group(self, group_id: str) -> SandboxGroup:
        return next(g for g in self.sandbox.groups if g.id == group_id)

    def assert_no_identities(self, result: Result) -> None:
        secrets = [BOT, BOT[1:], BOT_ACI, *(o.aci for o in self.cfg.officers)]
        assert not [s for s in secrets if s in result.output]

    async def refused(self, *args: str) -> Result:
        """`relay groups create ARGS` refused: exit 2, no identities shown, file untouched."""
        before = self.config.read_bytes()
        result = await self.relay("groups", "create", *args)
        assert result.exit_code == 2, result.output
        self.assert_no_identities(result)
        assert self.config.read_bytes() == before
        return result


@pytest.fixture
async def sandboxes() -> AsyncIterator[list[Sandbox]]:
    started: list[Sandbox] = []
    yield started
    for sandbox in started:
        await sandbox.stop()


async def start(tmp_path: Path, sandboxes: list[Sandbox], example: str, *,
                unknown_profile_keys: tuple[str, ...] = (), no_phone: tuple[str, ...] = (),
                **sandbox_options: object) -> Org:
    """`relay init` from an example pointed at a fresh sandbox holding the officers' phones."""
    sandbox = Sandbox(BOT, BOT_ACI, **sandbox_options)  # type: ignore[arg-type]
    await sandbox.start()
    sandboxes.append(sandbox)
    config = tmp_path / "relay.toml"
    result = await asyncio.to_thread(CliRunner().invoke, app, [
        "init", "-c", str(config), "--non-interactive", "--example", example,
        "--bot-number", BOT, "--service", sandbox.service,
        "--storage-url", f"sqlite:///{tmp_path / 'relay.db'}", "--keys-dir", str(tmp_path / "k"),
    ])
    assert result.exit_code == 0, result.output
    cfg = load_config(config, allow_pending_groups=True)
    for index, officer in enumerate(cfg.officers):
        if officer.id not in no_phone:
            sandbox.add_phone(officer.id, f"+1555031{index:04d}", aci=officer.aci,
                              profile_key_known=officer.id not in unknown_profile_keys)
    return Org(sandbox, config, cfg)


def comments(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.lstrip().startswith("#")]


async def test_team_group_is_created_admin_only_and_written_into_the_config(
    tmp_path: Path, sandboxes: list[Sandbox],
) -> None:
    org = await start(tmp_path, sandboxes, "mpp", unknown_profile_keys=("rc-aaliyah",))
    before = org.text()
    with pytest.raises(ConfigError):
        load_config(org.config)  # strict: the team scope has no group yet

    result = await org.relay("groups", "create", "regen-group")

    assert result.exit_code == 0, result.output
    org.assert_no_identities(result)
    (group,) = org.sandbox.groups
    bot = org.sandbox.bot
    scope = org.cfg.scope("regen-group")
    assert group.name == "Confidential within the entire…"  # the label, cut to Signal's limit
    assert len(group.name) <= GROUP_NAME_MAX
    assert "regen-group" in group.description
    assert [p is bot for p in group.admins] == [True]
    assert (group.add_members, group.edit_group, group.send_messages) == (
        "only-admins", "only-admins", "every-member")
    assert group.invite_link == ""
    member_acis = {p.aci for p in group.members}
    assert member_acis == {bot.aci} | {o.aci for o in org.cfg.officers
                                       if o.id in scope.officers and o.id != "rc-aaliyah"}
    assert [p.aci for p in group.pending] == [org.cfg.officer("rc-aaliyah").aci]
    # What the officers are told: who is still invited, and why.
    assert "invited, not yet in the group: rc-aaliyah" in result.stdout
    assert "accept the invitation in Signal" in result.stdout
    assert "profile key" in result.stdout
    # The file: group_id on the scope's pending-note line, every other comment kept.
    after = org.text()
    data = tomllib.loads(after)
    assert data["scopes"][0]["group_id"] == group.id
    assert "group_id" not in data["scopes"][1]
    assert comments(after) == [c for c in comments(before) if not c.startswith("# group_id:")]
    block = after.split('id = "regen-group"', 1)[1].split("[[scopes]]", 1)[0]
    assert block.index('kind = "team"') < block.index(f'group_id = "{group.id}"')
    strict = load_config(org.config)  # strict mode passes now
    assert strict.scope("regen-group").group_id == group.id


async def test_no_profile_name_leaves_the_file_untouched(
    tmp_path: Path, sandboxes: list[Sandbox],
) -> None:
    org = await start(tmp_path, sandboxes, "mpp", bot_profile_name=None)
    result = await org.refused("regen-group")
    (line,) = result.stderr.strip().splitlines()
    assert "no profile name" in line
    assert f"`relay profile set NAME -c {org.config}`" in line
    assert org.sandbox.groups == []


async def test_replace_makes_a_new_group_only_when_asked(
    tmp_path: Path, sandboxes: list[Sandbox],
) -> None:
    org = await start(tmp_path, sandboxes, "score")
    first = await org.relay("groups", "create", "igo-team")
    assert first.exit_code == 0, first.output
    old_id = org.sandbox.groups[0].id

    refused = await org.refused("igo-team")
    assert "already has group_id; pass --replace" in refused.stderr
    assert len(org.sandbox.groups) == 1

    replaced = await org.relay("groups", "create", "igo-team", "--replace")
    assert replaced.exit_code == 0, replaced.output
    new_id = org.sandbox.groups[1].id
    assert new_id != old_id
    text = org.text()
    assert old_id not in text
    assert text.count(f'group_id = "{new_id}"') == 1
    assert "previous group still exists" in replaced.stdout
    assert load_config(org.config).scope("igo-team").group_id == new_id


async def test_coordination_group_holds_the_coordinators(
    tmp_path: Path, sandboxes: list[Sandbox],
) -> None:
    org = await start(tmp_path, sandboxes, "labour")
    result = await org.relay("groups", "create", "--coordination")
    assert result.exit_code == 0, result.output
    org.assert_no_identities(result)
    (group,) = org.sandbox.groups
    coordinators = {o.aci for o in org.cfg.coordinators()}
    assert {p.aci for p in group.members} == coordinators | {org.sandbox.bot.aci}
    assert group.add_members == "only-admins"
    assert group.invite_link == ""
    assert tomllib.loads(org.text())["coordination"]["group_id"] == group.id
    with pytest.raises(ConfigError) as caught:
        load_config(org.config)  # the team scope is still pending
    assert [p.field for p in caught.value.problems] == ["scopes[0]"]
    team = await org.relay("groups", "create", "complaints-team")
    assert team.exit_code == 0, team.output
    cfg = load_config(org.config)
    assert cfg.coordination.group_id == group.id
    assert cfg.scope("complaints-team").group_id == org.sandbox.groups[1].id


async def test_refusals_name_the_problem(tmp_path: Path, sandboxes: list[Sandbox]) -> None:
    org = await start(tmp_path, sandboxes, "mpp")
    before = org.config.read_bytes()
    chosen = await org.relay("groups", "create", "connected-person")
    assert chosen.exit_code == 2
    assert "only 'team' scopes get a group" in chosen.stderr
    unknown = await org.relay("groups", "create", "regen")
    assert unknown.stderr.strip() == (
        "relay groups create: no scope 'regen' in [[scopes]]; team scopes: regen-group")
    dm = await org.relay("groups", "create", "--coordination")
    assert 'coordination.channel is "dm"' in dm.stderr
    neither = await org.relay("groups", "create")
    assert neither.exit_code == 2
    assert org.config.read_bytes() == before
    assert org.sandbox.groups == []


async def test_an_officer_who_is_not_on_signal_is_named(
    tmp_path: Path, sandboxes: list[Sandbox],
) -> None:
    org = await start(tmp_path, sandboxes, "mpp", no_phone=("rc-ines",))
    result = await org.refused("regen-group")
    assert "officer 'rc-ines' is not a Signal account" in result.stderr


async def test_unregistered_bot_and_unreachable_api(
    tmp_path: Path, sandboxes: list[Sandbox],
) -> None:
    org = await start(tmp_path, sandboxes, "mpp", registered=False)
    result = await org.refused("regen-group")
    assert f"run `relay register -c {org.config}` first" in result.stderr
    await org.sandbox.stop()
    down = await org.refused("regen-group")
    (line,) = down.stderr.strip().splitlines()
    assert line.startswith("relay groups create: cannot reach signal-cli-rest-api at ")
