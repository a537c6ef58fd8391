"""`relay` console script: run, demo, config check, keys."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import typer

from relay.cli.common import load_or_exit
from relay.config import OrgConfig

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="relay: a secure conduct-reporting relay on Signal.")
config_app = typer.Typer(no_args_is_help=True, help="Check an organisation config file.")
keys_app = typer.Typer(no_args_is_help=True, help="Create and inspect encryption keys.")
app.add_typer(config_app, name="config")
app.add_typer(keys_app, name="keys")

ConfigOpt = typer.Option(Path("relay.toml"), "--config", "-c", help="organisation TOML file")


def _catalog_problems(cfg: OrgConfig) -> list[str]:
    from handlers.flows.catalog import Catalog

    return Catalog.check_overrides(cfg.texts)


@config_app.command("check")
def config_check(path: Path = typer.Argument(..., help="the TOML file to check")) -> None:
    """Validate a config file; print one line per problem, naming the field and the fix."""
    cfg = load_or_exit(path, strict=True)
    problems = _catalog_problems(cfg)
    if problems:
        print(f"{path}: {len(problems)} problem(s)", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        raise typer.Exit(2)
    print(f"{path}: ok ({cfg.organisation.name}: {len(cfg.officers)} officers, "
          f"{len(cfg.scopes)} scopes, {len(cfg.categories)} categories)")


@keys_app.command("init")
def keys_init(config: Path = ConfigOpt) -> None:
    """Create the keys directory (0700) with a new root key and epoch key (0600)."""
    from keys import KeyringError
    from relay.clock import SystemClock
    from relay.keysource import create_keyring

    cfg = load_or_exit(config)
    try:
        create_keyring(cfg, SystemClock().now())
    except KeyringError as exc:
        print(f"relay keys init: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    print(f"created keys in {cfg.keys.directory} (keep a separate, encrypted backup)")


@keys_app.command("status")
def keys_status(config: Path = ConfigOpt) -> None:
    """List key ids, epochs and generations (never key bytes)."""
    from keys import KeyringError
    from relay.keysource import load_keyring

    cfg = load_or_exit(config)
    try:
        keyring = load_keyring(cfg)
    except KeyringError as exc:
        print(f"relay keys status: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    for info in keyring.status():
        print(info)


@app.command()
def run(config: Path = ConfigOpt) -> None:
    """Run the relay against the configured signal-cli-rest-api."""
    from relay.runner import run_relay

    cfg = load_or_exit(config, strict=True)
    problems = _catalog_problems(cfg)
    if problems:
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        raise typer.Exit(2)
    raise typer.Exit(asyncio.run(run_relay(cfg)))


@app.command()
def demo(
    interactive: bool = typer.Option(False, "--interactive", help="you type as the reporter"),  # noqa: FBT003
    pace: float = typer.Option(0.6, help="seconds between scripted steps"),
) -> None:
    """Play a full story on the built-in Signal sandbox: no phone number needed."""
    from relay.demo import run_demo

    raise typer.Exit(asyncio.run(run_demo(interactive=interactive, pace=pace)))


audit_app = typer.Typer(no_args_is_help=True, help="Check the tamper-evident audit log.")
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify(config: Path = ConfigOpt) -> None:
    """Recompute the audit hash chain from the first entry; exit 1 if it was altered."""
    from sqlalchemy.exc import SQLAlchemyError

    from relay import audit
    from relay.store.db import make_engine, make_sessionmaker, sqlite_path
    from relay.store.migrate import current_revision

    cfg = load_or_exit(config)
    path = sqlite_path(cfg.storage.url)
    if path is not None and not path.exists():
        print("audit: no database at storage.url; check the path, or create it with "
              "`relay init` / `relay db upgrade`", file=sys.stderr)
        raise typer.Exit(2)
    engine = make_engine(cfg.storage.url)
    try:
        if current_revision(engine) is None:
            print("audit: the database at storage.url has no relay schema yet; "
                  "run `relay db upgrade`", file=sys.stderr)
            raise typer.Exit(2)
        with make_sessionmaker(engine).begin() as s:
            problems = audit.verify(s)
            count = audit.count(s)
    except SQLAlchemyError as exc:
        print(f"audit: database error at storage.url ({type(exc).__name__}); check the URL, "
              "that the server is running, and the file permissions", file=sys.stderr)
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
    if problems:
        for problem in problems:
            print(f"audit: {problem}", file=sys.stderr)
        raise typer.Exit(1)
    print(f"audit: ok ({count} entries, chain intact)")


def main() -> None:
    app()


# Each module registers its own commands; imported last so `app` and helpers exist.
from relay.cli import (  # noqa: E402
    accountcmd,
    doctorcmd,
    groupscmd,
    healthcmd,
    initcmd,
    keyops,
    sandboxcmd,
)

keyops.register(app, keys_app)  # `keys rotate|verify` and `purge`
initcmd.register(app)  # `init`, `db upgrade`
groupscmd.register(app)  # `groups create`
accountcmd.register(app)  # `register`, `link`, `profile`, `pin`
sandboxcmd.register(app)  # `sandbox serve|phone|send|inbox|code`
doctorcmd.register(app)  # `doctor`
healthcmd.register(app)  # `health`
