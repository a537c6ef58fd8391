"""`relay doctor` on officer groups: the bot an admin member, only the roster inside, safe
settings. Groups live in the sandbox and change the way officers' phones change them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from relay.doctor import exit_code
from relay.sandbox import SandboxGroup
from relay.sandbox.ids import public_group_id, single_decode_group_id
from tests.integration.doctor_org import DoctorOrg, doctor_org

pytestmark = pytest.mark.asyncio

SCOPE = "regen-group"
OTHER_GROUP = public_group_id("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")


@pytest.fixture
async def labour(tmp_path: Path) -> AsyncIterator[DoctorOrg]:
    """labour.toml: alerts go to a coordinators' group, created here as the config names."""
    made = await doctor_org(tmp_path, "labour")
    cfg = made.org.cfg
    group_id = cfg.coordination.group_id
    assert group_id is not None
    made.org.groups["coordination"] = made.org.sandbox.create_group(
        "coordinators", members=[made.org.officer(o.id) for o in cfg.coordinators()],
        internal_id=single_decode_group_id(group_id), add_members="only-admins")
    yield made
    await made.stop()


def group(org: DoctorOrg) -> SandboxGroup:
    return org.org.group(SCOPE)


async def test_a_clean_group_with_the_bot_as_admin_passes(org: DoctorOrg) -> None:
    lines = await org.lines()
    assert lines[f"group:{SCOPE}"].startswith(f"ok    group:{SCOPE}")
    assert "the bot is an admin member of the group of scope 'regen-group'" in lines[
        f"group:{SCOPE}"]
    roster = lines[f"roster:{SCOPE}"]
    assert roster.startswith("ok")
    assert "7 member(s), all on the roster; only admins add members; no group link" in roster
    assert "holds" not in roster
    assert exit_code(await org.run()) == 0


async def test_the_bot_not_an_admin_fails_with_both_fixes(org: DoctorOrg) -> None:
    rowan = org.org.officer("rc-rowan")
    await org.org.sandbox.set_admin(group(org), org.org.sandbox.bot, admin=False, by=rowan)
    results = await org.run()
    line = (await org.lines())[f"group:{SCOPE}"]
    assert line.startswith(f"FAIL  group:{SCOPE}")
    assert "the bot is in the group of scope 'regen-group' but not an admin" in line
    assert "Make admin" in line
    assert f"`relay groups create {SCOPE} --replace -c {org.path}`" in line
    assert exit_code(results) == 1


async def test_the_bot_removed_fails_and_the_roster_check_is_skipped(org: DoctorOrg) -> None:
    rowan = org.org.officer("rc-rowan")
    await org.org.sandbox.remove_member(group(org), org.org.sandbox.bot, by=rowan)
    lines = await org.lines()
    assert lines[f"group:{SCOPE}"].startswith("FAIL")
    assert "the bot was removed from the group of scope 'regen-group'" in lines[
        f"group:{SCOPE}"]
    assert f"relay groups create {SCOPE} --replace" in lines[f"group:{SCOPE}"]
    assert "skipped: the bot cannot see this group" in lines[f"roster:{SCOPE}"]
    assert f"see 'group:{SCOPE}' above" in lines[f"roster:{SCOPE}"]


async def test_a_group_the_bot_is_not_in_fails(org: DoctorOrg) -> None:
    org.set("scopes", "group_id", OTHER_GROUP, index=0)
    line = (await org.lines())[f"group:{SCOPE}"]
    assert line.startswith("FAIL")
    assert "the bot is not in the group of scope 'regen-group' (the REST API does not list" \
        in line


async def test_a_pending_group_fails_with_relay_groups_create(org: DoctorOrg) -> None:
    org.remove("scopes", "group_id", index=0)
    results = await org.run()
    lines = await org.lines()
    assert lines["config"].startswith("ok")  # a new organisation's config is fine
    line = lines[f"group:{SCOPE}"]
    assert line.startswith("FAIL")
    assert "the group of scope 'regen-group' does not exist yet (no group_id)" in line
    assert line.endswith(f"fix: `relay groups create {SCOPE} -c {org.path}`")
    assert exit_code(results) == 1


async def test_a_failing_group_listing_fails(org: DoctorOrg) -> None:
    org.org.sandbox.faults.groups_list_400(times=None)
    line = (await org.lines())[f"group:{SCOPE}"]
    assert line.startswith("FAIL")
    assert "could not list the bot's groups (HTTP 400)" in line


async def test_a_stranger_in_the_group_fails_and_relay_holds_messages(org: DoctorOrg) -> None:
    stranger = org.org.reporter("stranger")
    await org.org.sandbox.add_member(group(org), stranger, by=org.org.officer("rc-devi"))
    results = await org.run()
    line = (await org.lines())[f"roster:{SCOPE}"]
    assert line.startswith(f"FAIL  roster:{SCOPE}")
    assert "1 stranger(s) in the group" in line
    assert "relay holds case messages to this group until it is clean" in line
    assert ("fix: in the group's settings on the phone of an officer who is a group admin: "
            "remove the strangers") in line
    assert exit_code(results) == 1


async def test_an_invited_stranger_fails_and_relay_holds_messages(org: DoctorOrg) -> None:
    stranger = org.org.reporter("stranger")
    await org.org.sandbox.invite(group(org), stranger, by=org.org.officer("rc-devi"))
    line = (await org.lines())[f"roster:{SCOPE}"]
    assert line.startswith("FAIL")
    assert "1 stranger(s) invited or asking to join" in line
    assert "relay holds case messages" in line
    assert "revoke their invitations and deny their requests" in line


async def test_an_officer_who_has_not_accepted_warns_by_id(org: DoctorOrg) -> None:
    aaliyah = org.org.officer("rc-aaliyah")
    devi = org.org.officer("rc-devi")
    await org.org.sandbox.remove_member(group(org), aaliyah, by=devi)
    await org.org.sandbox.invite(group(org), aaliyah, by=devi)
    results = await org.run()
    line = (await org.lines())[f"roster:{SCOPE}"]
    assert line.startswith("warn")
    assert "not yet accepted: rc-aaliyah" in line
    assert "ask them to accept the group invitation in Signal" in line
    assert "holds" not in line  # relay's rule: a roster officer's invite is not a stranger
    assert exit_code(results) == 0


async def test_a_missing_officer_warns_by_id(org: DoctorOrg) -> None:
    await org.org.sandbox.remove_member(group(org), org.org.officer("rc-ines"),
                                        by=org.org.officer("rc-devi"))
    line = (await org.lines())[f"roster:{SCOPE}"]
    assert line.startswith("warn")
    assert "roster officers not in the group: rc-ines" in line
    assert "group admin: add rc-ines" in line
    assert f"relay groups create {SCOPE} --replace" in line


async def test_members_adding_members_fails(org: DoctorOrg) -> None:
    group(org).add_members = "every-member"
    results = await org.run()
    line = (await org.lines())[f"roster:{SCOPE}"]
    assert line.startswith("FAIL")
    assert "add_members is 'every-member': members can add anyone" in line
    assert "set 'Add members' to 'Only admins'" in line
    assert exit_code(results) == 1


async def test_the_mirrored_edit_group_permission_is_not_a_failure(org: DoctorOrg) -> None:
    # The REST API reports send_messages as edit_group (WIRE §3.3): every-member there is
    # what any normal group shows, whatever its real edit permission.
    group(org).send_messages = "every-member"
    group(org).edit_group = "only-admins"
    line = (await org.lines())[f"roster:{SCOPE}"]
    assert line.startswith("ok")


async def test_a_group_link_fails(org: DoctorOrg) -> None:
    group(org).invite_link = "https://signal.group/#CjQKIHN0YWNrZWQ"
    line = (await org.lines())[f"roster:{SCOPE}"]
    assert line.startswith("FAIL")
    assert "the group link is on: anyone who has it can ask to join" in line
    assert "turn off the group link" in line
    assert "signal.group/#" not in line


async def test_the_coordinators_group_is_checked_like_a_team_group(labour: DoctorOrg) -> None:
    lines = await labour.lines()
    assert lines["group:coordination"].startswith("ok")
    assert "the bot is an admin member of the coordinators' group" in lines["group:coordination"]
    assert lines["roster:coordination"].startswith("ok")
    # a non-coordinator officer in the coordinators' group is a stranger there
    group_ = labour.org.groups["coordination"]
    await labour.org.sandbox.add_member(group_, labour.org.officer("ct-fergus"),
                                        by=labour.org.officer("ct-harriet"))
    line = (await labour.lines())["roster:coordination"]
    assert line.startswith("FAIL")
    assert "1 stranger(s) in the group" in line
    assert "holds" not in line  # relay holds team-group case messages, not alerts


async def test_a_pending_coordinators_group_names_the_coordination_command(
        labour: DoctorOrg) -> None:
    labour.remove("coordination", "group_id")
    line = (await labour.lines())["group:coordination"]
    assert line.startswith("FAIL")
    assert "the coordinators' group does not exist yet" in line
    assert f"`relay groups create --coordination -c {labour.path}`" in line
