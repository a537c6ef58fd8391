"""Load and validate the organisation TOML, turning every problem into a clear line."""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from relay.config.schema import PENDING_GROUPS, SLUG, OrgConfig


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with a config file: where it is and what is expected."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class ConfigError(Exception):
    """The config file cannot be used; `problems` lists each reason."""

    def __init__(self, source: str, problems: list[ConfigProblem]) -> None:
        super().__init__(f"{source}: {len(problems)} problem(s)")
        self.source = source
        self.problems = problems


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


# Top-level settings written as TOML arrays of tables ([[officers]] ...).
_TABLE_ARRAYS = ("officers", "scopes", "help_kinds", "categories")
_CHOICES = re.compile(r"^\^\(([a-z|]+)\)\$$")


def _problems_from(exc: ValidationError) -> list[ConfigProblem]:
    errors = exc.errors(include_url=False, include_input=False)
    # Locations that contain another error, e.g. ("officers",) for ("officers", 0, "aci").
    parents = {tuple(err["loc"][:i]) for err in errors for i in range(1, len(err["loc"]))}
    problems: list[ConfigProblem] = []
    for err in errors:
        loc = tuple(err["loc"])
        kind = err["type"]
        msg = str(err["msg"]).removeprefix("Value error, ")
        if kind == "value_error" and not loc:
            problems.extend(_split_references(msg))
            continue
        if kind == "too_short" and loc in parents:
            # pydantic also reports "at least 1 item" when the only entry is invalid.
            continue
        problems.append(ConfigProblem(_location(loc), _explain(kind, loc, msg, err)))
    return problems


def _explain(kind: str, loc: tuple[int | str, ...], msg: str, err: ErrorDetails) -> str:
    name = str(loc[-1]) if loc else ""
    if kind == "extra_forbidden":
        hint = difflib.get_close_matches(name, _known_settings(loc[:-1]), n=1)
        did_you_mean = f" (did you mean '{hint[0]}'?)" if hint else ""
        return f"unknown setting; remove it or check its spelling{did_you_mean}"
    if kind == "string_pattern_mismatch":
        return _explain_pattern(str(err.get("ctx", {}).get("pattern", ""))) or msg
    return _explain_shape(kind, loc, name) or msg


def _explain_shape(kind: str, loc: tuple[int | str, ...], name: str) -> str | None:
    """Missing or mis-shaped settings: say what to write instead."""
    table_array = len(loc) == 1 and name in _TABLE_ARRAYS
    if kind == "missing":
        if table_array:
            return f"required setting is missing; add at least one [[{name}]] entry"
        if len(loc) == 1:
            return f"required section is missing; add a [{name}] section"
        return f"required setting is missing; add {name} = ..."
    if table_array and kind in {"too_short", "tuple_type", "list_type"}:
        return f"write each entry under its own [[{name}]] header (at least one)"
    if kind in {"tuple_type", "list_type"}:
        return 'expected a list in square brackets, e.g. ["officer", "support"]'
    return None


def _explain_pattern(pattern: str) -> str | None:
    if pattern == SLUG.pattern:
        return (
            "expected a lowercase id: letters a-z, digits and '-', at most 40 "
            "characters, e.g. 'regen-team'"
        )
    choices = _CHOICES.match(pattern)
    if choices:
        return "expected one of: " + ", ".join(f"'{c}'" for c in choices.group(1).split("|"))
    return None


def _known_settings(parent: tuple[int | str, ...]) -> list[str]:
    """The setting names allowed at `parent`, for "did you mean" hints."""
    model: type[BaseModel] | None = OrgConfig
    for part in parent:
        if model is None:
            return []
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        model = None if field is None else _model_in(field.annotation)
    return [] if model is None else list(model.model_fields)


def _model_in(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _split_references(msg: str) -> list[ConfigProblem]:
    # The cross-reference check writes one "field: message" per line.
    problems = []
    for line in msg.splitlines():
        field, _, rest = line.partition(": ")
        problems.append(ConfigProblem(field, rest) if rest else ConfigProblem("", line))
    return problems


def validation_problems(exc: ValidationError) -> list[ConfigProblem]:
    """The lines `load_config` would print for `exc` (also for one section's model)."""
    return _problems_from(exc)


def parse_config(data: dict[str, Any], source: str = "<config>", *,
                 allow_pending_groups: bool = False) -> OrgConfig:
    """Validate parsed TOML. `allow_pending_groups`: team scopes and a 'group'
    coordination channel may lack group_id (before `relay groups create`)."""
    try:
        return OrgConfig.model_validate(
            data, context={PENDING_GROUPS: allow_pending_groups})
    except ValidationError as exc:
        raise ConfigError(source, _problems_from(exc)) from None


def load_config(path: Path, *, allow_pending_groups: bool = False) -> OrgConfig:
    """Read and validate the TOML file. Strict by default (`relay run`, `config check`);
    `allow_pending_groups=True` for set-up commands (`init`, `groups create`, `doctor`)."""
    source = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            source, [ConfigProblem("", "file not found; pass --config PATH or run 'relay init'")]
        ) from None
    except OSError as exc:
        raise ConfigError(
            source, [ConfigProblem("", f"cannot read the file ({type(exc).__name__})")]
        ) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(source, [ConfigProblem("", "file is not UTF-8 text")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [ConfigProblem("", f"not valid TOML: {exc}")]) from None
    return parse_config(data, source, allow_pending_groups=allow_pending_groups)
