"""The organisation config model: what an organisation writes in its TOML file.

Every model forbids unknown keys, so a typo is an error that names the field, never
a silently ignored setting.
"""

from __future__ import annotations

import re
import uuid
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

E164 = re.compile(r"\+[1-9][0-9]{6,14}")
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
PUBLIC_GROUP_ID = re.compile(r"^group\.[A-Za-z0-9]{59}=$")
_E164_HINT = (
    "expected an E.164 number: '+', country code and number, no spaces or dashes, "
    "e.g. '+4915112345678'"
)
HOST_PORT = re.compile(r"^[A-Za-z0-9.\-]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$")

Slug = Annotated[str, Field(pattern=SLUG.pattern, description="lowercase id: a-z, 0-9, -")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Role(StrEnum):
    OFFICER = "officer"
    SUPPORT = "support"
    COORDINATOR = "coordinator"


class ScopeKind(StrEnum):
    TEAM = "team"
    CHOSEN = "chosen"


class CoordinationChannel(StrEnum):
    GROUP = "group"
    DM = "dm"


class Organisation(_Strict):
    name: str = Field(min_length=1, max_length=120)
    short_name: str = Field(default="", max_length=24)
    timezone: str = "UTC"
    language: str = "en"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                "unknown time zone; use an IANA name such as 'Europe/London'"
            ) from exc
        return value


class SignalSettings(_Strict):
    service: str = Field(
        default="127.0.0.1:8080",
        description="signal-cli-rest-api address as host:port, without http://",
    )
    bot_number: str
    bot_aci: str | None = None
    connection: str = Field(default="http", pattern=r"^(http|https)$")
    webhook_listen: str | None = Field(
        default=None, description="host:port for the RECEIVE_WEBHOOK_URL sink"
    )
    send_timeout_seconds: float = Field(default=20.0, gt=0, le=300)

    @field_validator("service", "webhook_listen")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if "://" in value:
            raise ValueError("write host:port without a scheme, e.g. '127.0.0.1:8080'")
        if not HOST_PORT.match(value):
            raise ValueError("expected host:port, e.g. '127.0.0.1:8080'")
        return value

    @field_validator("bot_number")
    @classmethod
    def _e164(cls, value: str) -> str:
        if not E164.fullmatch(value):
            raise ValueError(_E164_HINT)
        return value

    @field_validator("bot_aci")
    @classmethod
    def _aci(cls, value: str | None) -> str | None:
        return None if value is None else _canonical_uuid(value)


class Storage(_Strict):
    url: str = Field(
        default="sqlite:///relay-data/relay.db",
        description="SQLAlchemy URL: sqlite:///path or postgresql+psycopg://...",
    )

    @field_validator("url")
    @classmethod
    def _supported(cls, value: str) -> str:
        if not value.startswith(("sqlite:///", "postgresql+psycopg://", "postgresql://")):
            raise ValueError(
                "expected 'sqlite:///<path>' or 'postgresql+psycopg://user@host/db'"
            )
        if value.startswith("postgresql://"):
            return "postgresql+psycopg://" + value.removeprefix("postgresql://")
        return value


class KeySettings(_Strict):
    directory: Path = Path("relay-keys")
    source: str = Field(default="directory", pattern=r"^(directory|credentials|passphrase)$")


class Officer(_Strict):
    id: Slug
    display_name: str = Field(min_length=1, max_length=64)
    aci: str
    number: str | None = None
    roles: tuple[Role, ...] = (Role.OFFICER,)

    @field_validator("aci")
    @classmethod
    def _aci(cls, value: str) -> str:
        return _canonical_uuid(value)

    @field_validator("number")
    @classmethod
    def _e164(cls, value: str | None) -> str | None:
        if value is not None and not E164.fullmatch(value):
            raise ValueError(_E164_HINT)
        return value

    @field_validator("roles")
    @classmethod
    def _some_role(cls, value: tuple[Role, ...]) -> tuple[Role, ...]:
        if not value:
            raise ValueError("give at least one role: officer, support or coordinator")
        return tuple(dict.fromkeys(value))


class Scope(_Strict):
    id: Slug
    label: str = Field(min_length=1, max_length=160, description="what reporters see")
    kind: ScopeKind
    group_id: str | None = Field(default=None, description="team scopes: Signal group id")
    officers: tuple[Slug, ...] = Field(min_length=1)
    support: tuple[Slug, ...] = ()

    @field_validator("group_id")
    @classmethod
    def _group_id(cls, value: str | None) -> str | None:
        return _public_group_id(value)

    @model_validator(mode="after")
    def _kind_fields(self, info: ValidationInfo) -> Self:
        if self.kind is ScopeKind.TEAM and self.group_id is None and not _pending_ok(info):
            raise ValueError(
                f"team scope '{self.id}' needs group_id and has no Signal group yet; "
                f"run `relay groups create {self.id}`"
            )
        if self.kind is ScopeKind.CHOSEN and self.group_id is not None:
            raise ValueError("a 'chosen' scope is delivered 1:1; remove group_id")
        if self.kind is ScopeKind.CHOSEN and not self.support:
            raise ValueError("a 'chosen' scope needs at least one support person in 'support'")
        return self


class HelpKind(_Strict):
    id: Slug
    label: str = Field(min_length=1, max_length=60)
    description: str = Field(default="", max_length=200)


class Category(_Strict):
    id: Slug
    label: str = Field(min_length=1, max_length=120)
    immediate_review: bool = False


class Coordination(_Strict):
    channel: CoordinationChannel = CoordinationChannel.DM
    group_id: str | None = None

    @field_validator("group_id")
    @classmethod
    def _group_id(cls, value: str | None) -> str | None:
        return _public_group_id(value)

    @model_validator(mode="after")
    def _group(self, info: ValidationInfo) -> Self:
        if (self.channel is CoordinationChannel.GROUP and self.group_id is None
                and not _pending_ok(info)):
            raise ValueError(
                "channel 'group' needs group_id and the coordinators' Signal group does not "
                'exist yet; run `relay groups create --coordination` (or set channel = "dm")'
            )
        return self


PENDING_GROUPS = "allow_pending_groups"
"""Validation-context key: team scopes and the coordination group may lack group_id
(a new organisation before `relay groups create`)."""


def _pending_ok(info: ValidationInfo) -> bool:
    context = info.context
    return isinstance(context, dict) and context.get(PENDING_GROUPS) is True


class Intake(_Strict):
    draft_expiry_hours: int = Field(default=48, ge=1, le=24 * 30)
    allow_anonymous: bool = True
    ask_exclusions: bool = True
    max_report_messages: int = Field(default=50, ge=1, le=500)


class Retention(_Strict):
    closed_case_days: int = Field(default=365, ge=1)
    reporter_link_days: int = Field(default=30, ge=0)
    epoch: str = Field(default="quarter", pattern=r"^(month|quarter|year)$")


CLOCK_TIME = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


class Checkins(_Strict):
    """Neutral check-ins with reporters who agreed to them at intake."""

    enabled: bool = True
    offsets_days: tuple[int, ...] = Field(default=(1, 3, 7, 14), min_length=1)
    repeat_days: int = Field(default=14, ge=1, le=365)
    quiet_start: str = Field(default="21:00", pattern=CLOCK_TIME,
                             description="no check-in after this local time (HH:MM)")
    quiet_end: str = Field(default="09:00", pattern=CLOCK_TIME,
                           description="... nor before this local time (HH:MM)")
    pause_days: int = Field(default=14, ge=1, le=365)

    @field_validator("offsets_days")
    @classmethod
    def _increasing(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(v < 1 for v in value) or list(value) != sorted(set(value)):
            raise ValueError("expected increasing whole days, each at least 1, e.g. [1, 3, 7]")
        return value


class Escalation(_Strict):
    """When coordinators are alerted. Alerts carry no report text and no identities."""

    immediate_review: bool = True
    reporter_distress: bool = True
    unclaimed: bool = True
    same_person: bool = True
    sla_hours: float = Field(default=24, gt=0, le=24 * 30)
    immediate_sla_hours: float = Field(default=2, gt=0, le=24 * 30)
    realert_hours: float = Field(default=12, gt=0, le=24 * 30)
    immediate_realert_hours: float = Field(default=2, gt=0, le=24 * 30)


class Moderation(_Strict):
    """The moderators' warning ledger and removal vote (MPP's "Moderation." agreement).

    Warnings name a person only through a keyed blind index; relay never contacts them.
    """

    enabled: bool = False
    moderators: tuple[Slug, ...] = Field(
        default=(), description="officer ids; empty: every officer with the 'officer' role"
    )
    warning_expiry_days: int = Field(default=182, ge=1, le=3650)
    warnings_for_vote: int = Field(default=3, ge=1, le=100)
    vote_hours: int = Field(default=72, ge=1, le=24 * 30)

    @field_validator("moderators")
    @classmethod
    def _once_each(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(value))

    def moderator_ids(self, officers: tuple[Officer, ...]) -> tuple[str, ...]:
        """Who may warn and vote: the listed officers, else every officer with the role."""
        if self.moderators:
            return self.moderators
        return tuple(o.id for o in officers if Role.OFFICER in o.roles)

    @staticmethod
    def check_officers(value: Moderation, info: ValidationInfo) -> Moderation:
        """Every listed moderator is an officer; an enabled ledger has a moderator."""
        officers: tuple[Officer, ...] | None = info.data.get("officers")
        if officers is None:
            return value  # the officers themselves are wrong: reported there
        known = {o.id for o in officers}
        problems = [
            f"'{ref}' in moderators is not in [[officers]]; add an [[officers]] entry with "
            f'id = "{ref}" or fix the spelling'
            for ref in value.moderators
            if ref not in known
        ]
        if value.enabled and not problems and not value.moderator_ids(officers):
            problems.append("nobody would be a moderator; list officer ids in moderators")
        if problems:
            raise ValueError("; ".join(problems))
        return value


_LOOPBACK_HINT = (
    "must be a loopback address (127.0.0.1, [::1] or localhost): /healthz and /metrics "
    "have no authentication; to scrape from elsewhere, put an authenticating proxy in front"
)


class Health(_Strict):
    """The health and metrics endpoint (`GET /healthz`, `GET /metrics`): counts and ages
    only, never content or identities. It has no authentication, so loopback only."""

    enabled: bool = True
    listen: str | None = Field(
        default="127.0.0.1:9464",
        description="loopback host:port; port 0 picks a free port; '' turns it off",
    )
    outbox_stale_seconds: float = Field(
        default=600, gt=0, le=7 * 86400,
        description="unhealthy when a message has waited to be sent longer than this",
    )
    timers_stale_seconds: float = Field(
        default=180, ge=60, le=7 * 86400,
        description="unhealthy when the timer loop (every 30 s) has not run for this long",
    )
    inbox_stale_seconds: float = Field(
        default=300, gt=0, le=7 * 86400,
        description="unhealthy when a received message has waited this long to be handled",
    )

    @field_validator("listen")
    @classmethod
    def _loopback(cls, value: str | None) -> str | None:
        import ipaddress

        if not value:
            return value
        if "://" in value:
            raise ValueError("write host:port without a scheme, e.g. '127.0.0.1:9464'")
        if not HOST_PORT.match(value) or int(value.rpartition(":")[2]) > 65535:
            raise ValueError("expected host:port, e.g. '127.0.0.1:9464'")
        host = value.rpartition(":")[0].strip("[]")
        if host.lower() == "localhost":
            return value
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError(_LOOPBACK_HINT)
        return value

    @property
    def address(self) -> str | None:
        """host:port to serve on, or None when the endpoint is turned off."""
        return self.listen if self.enabled and self.listen else None


def _default_help_kinds() -> tuple[HelpKind, ...]:
    return (
        HelpKind(id="support", label="Support",
                 description="A person to talk to when you're having a hard time"),
        HelpKind(id="prevention", label="Prevention",
                 description="I am concerned about this person's behaviour"),
        HelpKind(id="intervention", label="Intervention",
                 description="Help me talk to this person"),
        HelpKind(id="redress", label="Redress",
                 description="I have hard feelings towards this person"),
        HelpKind(id="transformation", label="Transformation",
                 description="Address it from a restorative perspective"),
    )


class OrgConfig(_Strict):
    organisation: Organisation
    signal: SignalSettings
    storage: Storage = Storage()
    keys: KeySettings = KeySettings()
    intake: Intake = Intake()
    retention: Retention = Retention()
    coordination: Coordination = Coordination()
    checkins: Checkins = Checkins()
    escalation: Escalation = Escalation()
    officers: tuple[Officer, ...] = Field(min_length=1)
    scopes: tuple[Scope, ...] = Field(min_length=1)
    help_kinds: tuple[HelpKind, ...] = Field(default_factory=_default_help_kinds, min_length=1)
    categories: tuple[Category, ...] = Field(min_length=1)
    texts: dict[str, str] = Field(
        default_factory=dict, description="overrides of catalog strings, by message id"
    )
    moderation: Annotated[Moderation, AfterValidator(Moderation.check_officers)] = Moderation()
    health: Health = Health()

    @model_validator(mode="after")
    def _references(self) -> Self:
        # One "field: message" per line; load.py turns each line into a ConfigProblem.
        problems = [
            *_duplicate_ids("officers", [o.id for o in self.officers]),
            *_duplicate_acis(self.officers),
            *_scope_problems(self.scopes, self.officers),
            *_duplicate_ids("help_kinds", [h.id for h in self.help_kinds]),
            *_duplicate_ids("categories", [c.id for c in self.categories]),
        ]
        if self.signal.bot_aci is not None:
            problems.extend(
                f"officers[{index}].aci: '{officer.id}' has the bot's own aci; "
                "the bot's account cannot also be an officer"
                for index, officer in enumerate(self.officers)
                if officer.aci == self.signal.bot_aci
            )
        if not any(Role.COORDINATOR in o.roles for o in self.officers):
            problems.append(
                "officers: nobody has the 'coordinator' role; add \"coordinator\" to at least "
                "one officer's roles so escalations reach someone"
            )
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def officer(self, officer_id: str) -> Officer:
        return next(o for o in self.officers if o.id == officer_id)

    def officer_by_aci(self, aci: str) -> Officer | None:
        return next((o for o in self.officers if o.aci == aci), None)

    def scope(self, scope_id: str) -> Scope:
        return next(s for s in self.scopes if s.id == scope_id)

    def category(self, category_id: str) -> Category:
        return next(c for c in self.categories if c.id == category_id)

    def help_kind(self, help_id: str) -> HelpKind:
        return next(h for h in self.help_kinds if h.id == help_id)

    def coordinators(self) -> tuple[Officer, ...]:
        return tuple(o for o in self.officers if Role.COORDINATOR in o.roles)

    def team_scope_for_group(self, public_group_id: str) -> Scope | None:
        return next((s for s in self.scopes if s.group_id == public_group_id), None)


def _public_group_id(value: str | None) -> str | None:
    if value is not None and not PUBLIC_GROUP_ID.match(value):
        raise ValueError(
            "expected a public group id: 'group.' followed by 60 characters (the 'id' "
            "signal-cli-rest-api lists for the group, not its 'internal_id')"
        )
    return value


def _canonical_uuid(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError as exc:
        raise ValueError("expected a Signal ACI (a UUID like 7a3c2f1e-8b9d-...)") from exc


def _duplicate_ids(section: str, ids: list[str]) -> list[str]:
    first: dict[str, int] = {}
    problems: list[str] = []
    for index, value in enumerate(ids):
        if value in first:
            problems.append(
                f"{section}[{index}].id: id '{value}' is already used by "
                f"{section}[{first[value]}]; give each entry its own id"
            )
        else:
            first[value] = index
    return problems


def _duplicate_acis(officers: tuple[Officer, ...]) -> list[str]:
    # Name the officers by id, never print the aci itself: config errors reach stderr.
    first: dict[str, Officer] = {}
    problems: list[str] = []
    for index, officer in enumerate(officers):
        if officer.aci in first:
            problems.append(
                f"officers[{index}].aci: '{officer.id}' has the same aci as "
                f"'{first[officer.aci].id}'; each officer needs their own Signal account"
            )
        else:
            first[officer.aci] = officer
    return problems


def _scope_problems(scopes: tuple[Scope, ...], officers: tuple[Officer, ...]) -> list[str]:
    problems = _duplicate_ids("scopes", [s.id for s in scopes])
    by_id = {o.id: o for o in officers}
    group_owner: dict[str, Scope] = {}
    for index, scope in enumerate(scopes):
        where = f"scopes[{index}]"
        for field, refs in (("officers", scope.officers), ("support", scope.support)):
            problems.extend(
                f"{where}.{field}: officer '{ref}' (scope '{scope.id}') is not in [[officers]]; "
                f'add an [[officers]] entry with id = "{ref}" or fix the spelling'
                for ref in refs
                if ref not in by_id
            )
        problems.extend(
            f"{where}.support: '{ref}' (scope '{scope.id}') is listed as support but lacks "
            "the 'support' role; add \"support\" to their roles"
            for ref in scope.support
            if ref in by_id and Role.SUPPORT not in by_id[ref].roles
        )
        if scope.group_id is not None:
            owner = group_owner.setdefault(scope.group_id, scope)
            if owner is not scope:
                problems.append(
                    f"{where}.group_id: scope '{scope.id}' uses the same Signal group as "
                    f"'{owner.id}'; each team scope needs its own group"
                )
    return problems
