"""`relay doctor`: check the whole set-up, one line per check with the fix; exit 1 on FAIL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

ConfigOpt = typer.Option(Path("relay.toml"), "--config", "-c", help="organisation TOML file")
JsonOpt = typer.Option(False, "--json",  # noqa: FBT003
                       help="print a JSON list of {check, status, detail, fix}")


def doctor(config: Path = ConfigOpt, as_json: bool = JsonOpt) -> None:
    """Check config, signal-cli-rest-api, account, groups, keys, database, disk and relay.

    Prints one line per check (ok, warn or FAIL) with the fix; exits 1 if any check failed.
    """
    from relay.doctor import exit_code, render_json, render_lines, run_checks

    results = asyncio.run(run_checks(config))
    if as_json:
        print(render_json(results))
    else:
        for line in render_lines(results):
            print(line)
    raise typer.Exit(exit_code(results))


def register(app: typer.Typer) -> None:
    """Add `relay doctor` to the `relay` app."""
    app.command("doctor")(doctor)
