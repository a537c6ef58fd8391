"""`relay groups create SCOPE` / `relay groups create --coordination` (registered by
`register`): create the officers' Signal group and write its id into the config.

Prints officer ids and config settings only: never phone numbers or ACIs.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from relay.setup.groups import Created, Target

groups_app = typer.Typer(no_args_is_help=True, help="Create the officers' Signal groups.")

ConfigOpt = typer.Option(Path("relay.toml"), "--config", "-c", help="organisation TOML file")


def _fail(line: str, code: int = 2) -> typer.Exit:
    print(f"relay groups create: {line}", file=sys.stderr)
    return typer.Exit(code)


def create(
    scope: str | None = typer.Argument(None, help="the team scope's id"),
    config: Path = ConfigOpt,
    coordination: bool = typer.Option(
        False, "--coordination",  # noqa: FBT003
        help="create the coordinators' alert group instead"),
    replace: bool = typer.Option(
        False, "--replace",  # noqa: FBT003
        help="make a new group even if the config already names one"),
) -> None:
    """Create the group (admin-only, no invite link) and write its group_id into the config."""
    from relay.cli.common import load_or_exit
    from relay.setup.groups import (
        GroupSetupError,
        coordination_target,
        create_group,
        scope_target,
    )

    if coordination == (scope is not None):
        raise _fail("give either a team scope's id (relay groups create SCOPE) or "
                    "--coordination, not both")
    cfg = load_or_exit(config)
    try:
        target: Target = (coordination_target(cfg, replace=replace) if scope is None
                          else scope_target(cfg, scope, replace=replace))
        created = asyncio.run(create_group(cfg, target, config_flag=f" -c {config}",
                                           wait_seconds=cfg.signal.send_timeout_seconds))
    except GroupSetupError as exc:
        raise _fail(str(exc)) from None
    if created.problems:
        raise _fail(
            "; ".join(created.problems) + f"; {target.what} was left unchanged in {config}. "
            "Delete that group in Signal and run this command again", code=1)
    _write_group_id(config, target.key, created.group_id)
    _report(config, target, created)


def _write_group_id(config: Path, scope_id: str | None, group_id: str) -> None:
    """Put group_id into the scope's [[scopes]] block (or [coordination]), keeping
    comments; the new text is checked before it replaces the file, and read back after."""
    import tomllib

    from relay.cli.common import load_or_exit
    from relay.config import ConfigError, parse_config
    from relay.setup.files import write_text_atomic
    from relay.setup.toml_edit import TomlEditError, set_value

    try:
        text = config.read_text("utf-8")
        data = tomllib.loads(text)
        if scope_id is None:
            new = set_value(text, "coordination", "group_id", group_id, after="channel")
        else:
            index = next(i for i, s in enumerate(data.get("scopes", []))
                         if isinstance(s, dict) and s.get("id") == scope_id)
            new = set_value(text, "scopes", "group_id", group_id, index=index, after="kind")
        parse_config(tomllib.loads(new), str(config), allow_pending_groups=True)
        write_text_atomic(config, new)
    except (OSError, StopIteration, tomllib.TOMLDecodeError, TomlEditError, ConfigError) as exc:
        reason = (str(exc.problems[0]) if isinstance(exc, ConfigError) else
                  str(exc) if isinstance(exc, TomlEditError) else type(exc).__name__)
        where = "[coordination]" if scope_id is None else f"the [[scopes]] block of '{scope_id}'"
        raise _fail(f"the group was created but {config} could not be updated ({reason}); "
                    f'add group_id = "{group_id}" to {where} by hand') from None
    load_or_exit(config)


def _report(config: Path, target: Target, created: Created) -> None:
    where = "coordination.group_id" if target.key is None else f"scope '{target.key}' group_id"
    print(f"created the Signal group for {target.what} and wrote {where} into {config}")
    print("  only admins (the bot) can add members or edit it; no invite link")
    if created.members:
        print(f"  members: {', '.join(created.members)}")
    if not created.checked:
        print(f"  could not read the group back to check it; run `relay doctor -c {config}`")
    if created.pending:
        print(f"  invited, not yet in the group: {', '.join(created.pending)}")
        print("  They must accept the invitation in Signal: Signal only adds someone directly "
              "once the bot knows their profile key, which it learns after they have sent "
              "the bot a message.")
    if created.missing and created.checked:
        print(f"  not in the group at all: {', '.join(created.missing)}; check their aci")
    if target.current_group_id is not None:
        print("  the previous group still exists (relay no longer uses it): delete it in "
              "Signal so nobody keeps writing there")


def register(app: typer.Typer) -> None:
    """Add `groups create` to the `relay` app."""
    groups_app.command("create")(create)
    app.add_typer(groups_app, name="groups")
