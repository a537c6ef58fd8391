"""`relay init` (config, keys, database) and `relay db upgrade` (registered by `register`).

Output names files, settings and revisions only: never the bot's number, ACIs or keys.
Every user error is one line on stderr naming the problem and the fix; exit 2.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from relay.cli.common import load_or_exit

if TYPE_CHECKING:
    from relay.config import OrgConfig
    from relay.setup.answers import Answers

ConfigOpt = typer.Option(Path("relay.toml"), "--config", "-c", help="organisation TOML file")
db_app = typer.Typer(no_args_is_help=True, help="Manage the database schema.")


def _fail(command: str, line: str, code: int = 2) -> typer.Exit:
    print(f"relay {command}: {line}", file=sys.stderr)
    return typer.Exit(code)


def init(
    config: Path = ConfigOpt,
    example: str | None = typer.Option(
        None, "--example", help="start from mpp, score, caracol, labour or blank"),
    org_name: str | None = typer.Option(None, "--org-name", help="organisation name"),
    short_name: str | None = typer.Option(None, "--short-name", help="short name (<= 24)"),
    timezone: str | None = typer.Option(None, "--timezone", help="IANA time zone"),
    bot_number: str | None = typer.Option(None, "--bot-number", help="the bot's Signal number"),
    service: str | None = typer.Option(None, "--service", help="signal-cli-rest-api host:port"),
    storage_url: str | None = typer.Option(None, "--storage-url", help="database URL"),
    keys_dir: str | None = typer.Option(None, "--keys-dir", help="keys directory"),
    key_source: str | None = typer.Option(
        None, "--key-source", help="directory, credentials or passphrase"),
    webhook_listen: str | None = typer.Option(
        None, "--webhook-listen", help="host:port for the receive webhook"),
    coordinator_name: str | None = typer.Option(
        None, "--coordinator-name", help="blank: the first coordinator's display name"),
    coordinator_aci: str | None = typer.Option(
        None, "--coordinator-aci", help="blank: the first coordinator's Signal ACI"),
    non_interactive: bool = typer.Option(
        False, "--non-interactive",  # noqa: FBT003
        help="never ask; every required value from flags"),
    force: bool = typer.Option(
        False, "--force", help="overwrite an existing config file"),  # noqa: FBT003
) -> None:
    """Write a config, create the keys and the database, and print the next steps."""
    from relay.setup.answers import Answers, asked

    if config.is_dir():
        raise _fail("init", f"{config} is a directory; pass -c PATH/relay.toml")
    if config.exists() and not force:
        raise _fail("init", f"{config} already exists; pass --force to overwrite it, or "
                            "-c PATH to write a new file")
    given = Answers(example, org_name, short_name, timezone, bot_number, service, storage_url,
                    keys_dir, key_source, webhook_listen, coordinator_name, coordinator_aci)
    missing = any(getattr(given, name) is None for name in asked(given))
    interactive = not non_interactive and (sys.stdin.isatty() or missing)
    answers, text, cfg = _prepare(config, given, interactive=interactive)
    passphrase = _passphrase(cfg, interactive=interactive)
    _write(config, text)
    failures = _keys(cfg, config, passphrase) + _database(cfg, config)
    load_or_exit(config)
    if failures:
        for line in failures:
            print(f"relay init: {line}", file=sys.stderr)
        raise typer.Exit(2)
    _next_steps(config, answers, cfg)


def _prepare(config: Path, given: Answers, *, interactive: bool
             ) -> tuple[Answers, str, OrgConfig]:
    """Complete the answers, render the text and check it before anything is written."""
    import tomllib

    from relay.config import ConfigError, parse_config
    from relay.setup.templates import TemplateError, render
    from relay.setup.toml_edit import TomlEditError
    from relay.setup.wizard import AnswersError, ask_missing, complete_from_flags, summary

    try:
        answers = ask_missing(given) if interactive else complete_from_flags(given)
    except AnswersError as exc:
        for line in exc.problems:
            print(f"relay init: {line}", file=sys.stderr)
        raise typer.Exit(2) from None
    try:
        text = render(answers)
        cfg = parse_config(tomllib.loads(text), str(config), allow_pending_groups=True)
    except (TemplateError, TomlEditError) as exc:
        raise _fail("init", str(exc)) from None
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"relay init: {problem}", file=sys.stderr)
        raise typer.Exit(2) from None
    if interactive:
        print(f"\nrelay init will write {config}:")
        for line in summary(answers):
            print(line)
        if not typer.confirm("Write it, create the keys and the database?", default=True):
            raise _fail("init", "nothing written", code=1)
    return answers, text, cfg


def _passphrase(cfg: OrgConfig, *, interactive: bool) -> str | None:
    """A new passphrase for keys.source = 'passphrase' (asked twice, hidden)."""
    from relay.setup.keydir import has_keys, passphrase_problem

    if cfg.keys.source != "passphrase" or has_keys(cfg):
        return None
    while interactive:
        first = str(typer.prompt("New relay passphrase (at least 12 characters)",
                                 hide_input=True))
        second = str(typer.prompt("Repeat the passphrase", hide_input=True))
        problem = passphrase_problem(first, second)
        if problem is None:
            return first
        typer.echo(f"  {problem}; please try again", err=True)
    if sys.stdin.isatty():
        first = getpass.getpass("New relay passphrase: ")
        second = getpass.getpass("Repeat the passphrase: ")
    else:  # the same rule as `relay run`: one line on standard input
        first = second = sys.stdin.readline().rstrip("\n")
    if not first:
        raise _fail("init", "keys.source is 'passphrase': give the new passphrase as one line "
                            "on standard input, e.g. `relay init ... < passphrase-file`")
    problem = passphrase_problem(first, second)
    if problem is not None:
        raise _fail("init", f"{problem}; nothing was written")
    return first


def _write(config: Path, text: str) -> None:
    from relay.setup.files import write_text_atomic

    try:
        write_text_atomic(config, text)
    except OSError as exc:
        raise _fail("init", f"cannot write {config} ({type(exc).__name__}); check the "
                            "directory exists and is writable") from None
    print(f"config: wrote {config}")


def _keys(cfg: OrgConfig, config: Path, passphrase: str | None) -> list[str]:
    from keys import KeyringError
    from relay.clock import SystemClock
    from relay.setup.keydir import create, has_keys

    directory = cfg.keys.directory
    if has_keys(cfg):
        print(f"keys: {directory} already holds keys; kept them")
        return []
    try:
        create(cfg, SystemClock().now(), passphrase)
    except KeyringError as exc:
        return [f"keys: {exc}; then run `relay keys init -c {config}`"]
    except OSError as exc:
        return [(f"keys: cannot create {directory} ({type(exc).__name__}); check "
                 f"keys.directory and its parent's permissions, then run "
                 f"`relay keys init -c {config}`")]
    print(f"keys: created {directory} (directory 0700, files 0600); keep a separate, "
          "encrypted backup")
    return []


def _database(cfg: OrgConfig, config: Path) -> list[str]:
    from relay.setup.database import DatabaseSetupError, describe, upgrade_to_head

    try:
        result = upgrade_to_head(cfg.storage.url)
    except DatabaseSetupError as exc:
        return [f"database: {exc}; then run `relay db upgrade -c {config}`"]
    state = "created" if result.before is None else (
        "upgraded" if result.changed else "already current")
    print(f"database: {describe(cfg.storage.url)} {state} (schema revision {result.after})")
    return []


def _next_steps(config: Path, answers: Answers, cfg: OrgConfig) -> None:
    from relay.config import ScopeKind

    c = f"-c {config}"
    steps: list[tuple[str, list[str]]] = []
    if answers.example != "blank":
        steps.append(((f"Replace the placeholder [[officers]] in {config} with your officers "
                       "(until their groups exist, config check names them as still to create)"),
                      [f"relay config check {config}"]))
    steps += [
        (("Register the bot's number (captcha: https://signalcaptchas.org/registration/"
          "generate.html)"), [f"relay register {c} --captcha TOKEN",
                            f"relay register {c} --code CODE"]),
        ("Give the bot a profile name (Signal groups need one)", [f"relay profile set NAME {c}"]),
    ]
    groups = [f"relay groups create {s.id} {c}" for s in cfg.scopes
              if s.kind is ScopeKind.TEAM and s.group_id is None]
    if cfg.coordination.channel.value == "group" and cfg.coordination.group_id is None:
        groups.append(f"relay groups create --coordination {c}")
    if groups:
        steps.append(("Create the officers' Signal groups", groups))
    steps += [("Check everything", [f"relay doctor {c}"]), ("Start relay", [f"relay run {c}"])]
    print("\nNext steps:")
    for number, (what, commands) in enumerate(steps, start=1):
        print(f"  {number}. {what}:")
        for command in commands:
            print(f"       {command}")


def db_upgrade(config: Path = ConfigOpt) -> None:
    """Migrate the database in storage.url to the current schema."""
    from relay.setup.database import DatabaseSetupError, describe, upgrade_to_head

    cfg = load_or_exit(config)
    try:
        result = upgrade_to_head(cfg.storage.url)
    except DatabaseSetupError as exc:
        raise _fail("db upgrade", str(exc)) from None
    where = describe(cfg.storage.url)
    if not result.changed:
        print(f"database {where}: already current (schema revision {result.after})")
    else:
        print(f"database {where}: upgraded from {result.before or 'empty'} to "
              f"schema revision {result.after}")


def register(app: typer.Typer) -> None:
    """Add `init` and `db upgrade` to the `relay` app."""
    app.command("init")(init)
    db_app.command("upgrade")(db_upgrade)
    app.add_typer(db_app, name="db")
