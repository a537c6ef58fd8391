"""What `relay init` needs to know, and how each answer is checked.

Each answer is checked with the config's own models (`relay.config.schema`), so the
wizard re-asks with exactly the reason `relay config check` would give.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from relay.config.load import validation_problems
from relay.config.schema import KeySettings, Officer, Organisation, SignalSettings, Storage

EXAMPLES_DIRS = (
    Path(__file__).resolve().parent.parent / "examples",  # an installed package
    Path(__file__).resolve().parents[2] / "deploy" / "examples",  # a checkout
)
EXAMPLE_NAMES = ("mpp", "score", "caracol", "labour")
CHOICES = (*EXAMPLE_NAMES, "blank")
KEY_SOURCES = ("directory", "credentials", "passphrase")
_VALID_NUMBER = "+15550100001"
_VALID_ACI = "00000000-0000-4000-8000-000000000000"


@dataclass
class Answers:
    """One value per `relay init` flag; None until given or asked."""

    example: str | None = None
    org_name: str | None = None
    short_name: str | None = None
    timezone: str | None = None
    bot_number: str | None = None
    service: str | None = None
    storage_url: str | None = None
    keys_dir: str | None = None
    key_source: str | None = None
    webhook_listen: str | None = None
    coordinator_name: str | None = None
    coordinator_aci: str | None = None


def flag(name: str) -> str:
    """The command-line flag for an answer: `org_name` -> `--org-name`."""
    return "--" + name.replace("_", "-")


def example_path(name: str) -> Path | None:
    for directory in EXAMPLES_DIRS:
        path = directory / f"{name}.toml"
        if path.is_file():
            return path
    return None


def example_data(name: str) -> dict[str, Any]:
    path = example_path(name)
    if path is None:
        return {}
    return tomllib.loads(path.read_text("utf-8"))


def _problem(model: type[BaseModel], data: dict[str, Any], field: str) -> str | None:
    try:
        model.model_validate(data)
    except ValidationError as exc:
        for problem in validation_problems(exc):
            if problem.field == field:
                return problem.message
    return None


def _check_example(value: str) -> str | None:
    if value not in CHOICES:
        return "expected one of: " + ", ".join(CHOICES)
    if value != "blank" and example_path(value) is None:
        return f"the example file {value}.toml is not installed; use 'blank'"
    return None


def _check_keys_dir(value: str) -> str | None:
    return "give a directory path, e.g. 'relay-keys'" if not value.strip() else None


def _check_webhook(value: str) -> str | None:
    if not value:
        return None
    return _problem(SignalSettings, {"bot_number": _VALID_NUMBER, "webhook_listen": value},
                    "webhook_listen")


CHECKS: dict[str, Callable[[str], str | None]] = {
    "example": _check_example,
    "org_name": lambda v: _problem(Organisation, {"name": v}, "name"),
    "short_name": lambda v: _problem(Organisation, {"name": "x", "short_name": v}, "short_name"),
    "timezone": lambda v: _problem(Organisation, {"name": "x", "timezone": v}, "timezone"),
    "bot_number": lambda v: _problem(SignalSettings, {"bot_number": v}, "bot_number"),
    "service": lambda v: _problem(
        SignalSettings, {"bot_number": _VALID_NUMBER, "service": v}, "service"),
    "storage_url": lambda v: _problem(Storage, {"url": v}, "url"),
    "keys_dir": _check_keys_dir,
    "key_source": lambda v: _problem(KeySettings, {"source": v}, "source"),
    "webhook_listen": _check_webhook,
    "coordinator_name": lambda v: _problem(
        Officer, {"id": "x", "display_name": v, "aci": _VALID_ACI}, "display_name"),
    "coordinator_aci": lambda v: _problem(
        Officer, {"id": "x", "display_name": "x", "aci": v}, "aci"),
}

PROMPTS: dict[str, str] = {
    "example": "Start from which example (" + ", ".join(CHOICES) + ")",
    "org_name": "Organisation name",
    "short_name": "Short name used in messages (at most 24 characters)",
    "timezone": "Time zone (IANA name, e.g. Europe/London)",
    "bot_number": "The bot's Signal number (+ country code and number, e.g. +4915112345678)",
    "service": "signal-cli-rest-api address (host:port)",
    "storage_url": "Database URL (sqlite:///path or postgresql+psycopg://user@host/db)",
    "keys_dir": "Keys directory",
    "key_source": "Where the master key comes from (directory, credentials, passphrase)",
    "webhook_listen": "Webhook listen address (host:port, empty for none)",
    "coordinator_name": "First coordinator's display name (what reporters see)",
    "coordinator_aci": "First coordinator's Signal account id (ACI, a UUID)",
}

SECRET_LIKE = frozenset({"bot_number", "coordinator_aci"})
"""Answers never echoed back (phone numbers and ACIs stay off the screen and logs)."""


def check(name: str, value: str) -> str | None:
    """Why `value` is not acceptable for answer `name`, or None."""
    return CHECKS[name](value)


def defaults(answers: Answers) -> dict[str, str]:
    """Defaults for the answers not yet given, from the chosen example (if any)."""
    example = answers.example or "blank"
    data = example_data(example) if example != "blank" else {}
    org = data.get("organisation", {})
    org_name = answers.org_name
    out = {
        "service": "127.0.0.1:8080",
        "timezone": str(org.get("timezone", "UTC")),
        "storage_url": str(data.get("storage", {}).get("url", "sqlite:///relay-data/relay.db")),
        "keys_dir": str(data.get("keys", {}).get("directory", "relay-keys")),
        "key_source": str(data.get("keys", {}).get("source", "directory")),
        "webhook_listen": "",
    }
    if "name" in org:
        out["org_name"] = str(org["name"])
    if (org_name is None or org_name == org.get("name")) and "short_name" in org:
        out["short_name"] = str(org["short_name"])
    if "short_name" not in out:
        name = org_name or ""
        out["short_name"] = name if len(name) <= 24 else ""
    return out


def required(answers: Answers) -> list[str]:
    """The answers that have no default for this example."""
    names = ["bot_number"]
    if (answers.example or "blank") == "blank":
        names = ["org_name", "bot_number", "coordinator_name", "coordinator_aci"]
    return names


def asked(answers: Answers) -> list[str]:
    """The answers the wizard asks for, in order."""
    names = ["example", "org_name", "short_name", "timezone", "bot_number", "service",
             "storage_url", "keys_dir", "key_source"]
    if (answers.example or "blank") == "blank":
        names += ["coordinator_name", "coordinator_aci"]
    return names


def officer_id(display_name: str) -> str:
    """A config id (lowercase slug) made from a person's name."""
    slug = re.sub(r"[^a-z0-9]+", "-", display_name.lower()).strip("-")[:40].strip("-")
    return slug or "coordinator"
