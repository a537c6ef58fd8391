"""Organisation configuration: one TOML file, validated strictly."""

from relay.config.load import ConfigError, ConfigProblem, load_config, parse_config
from relay.config.schema import (
    Category,
    HelpKind,
    Officer,
    OrgConfig,
    Role,
    Scope,
    ScopeKind,
)

__all__ = [
    "Category",
    "ConfigError",
    "ConfigProblem",
    "HelpKind",
    "Officer",
    "OrgConfig",
    "Role",
    "Scope",
    "ScopeKind",
    "load_config",
    "parse_config",
]
