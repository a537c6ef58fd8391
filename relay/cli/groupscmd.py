"""Placeholder: commands registered by `register` (filled in by issue 7 work)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `relay` app."""
    del app
