"""What every `relay` command shares: loading the config, and failing with one line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import typer

from relay.config import ConfigError, OrgConfig, load_config


def load_or_exit(path: Path, *, strict: bool = False) -> OrgConfig:
    """The config, or its problems on stderr (one line each) and exit 2.

    Only `run` and `config check` are `strict`; the other commands work before the
    officers' groups exist (`relay groups create` is what makes them)."""
    try:
        return load_config(path, allow_pending_groups=not strict)
    except ConfigError as exc:
        print(f"{exc.source}: {len(exc.problems)} problem(s)", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        raise typer.Exit(2) from None


def fail(command: str, message: str, code: int = 1) -> NoReturn:
    """`relay COMMAND: message` on stderr, then exit with `code`."""
    print(f"relay {command}: {message}", file=sys.stderr)
    raise typer.Exit(code)
