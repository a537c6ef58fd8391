"""A new organisation has no Signal groups yet: set-up commands load its config, while
`relay run` and `relay config check` refuse it with the command that fixes it."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from relay.cli.main import app
from relay.config import ConfigError, load_config
from tests.unit.config.test_problems import GROUP, OTHER_GROUP, VALID


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "org.toml"
    path.write_text(text, encoding="utf-8")
    return path


NO_TEAM_GROUP = VALID.replace(f'group_id = "{GROUP}"\n', "")
COORDINATION_GROUP = VALID + '\n[coordination]\nchannel = "group"\n'


def test_strict_mode_names_the_scope_and_the_command(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, NO_TEAM_GROUP))
    assert [str(p) for p in caught.value.problems] == [(
        "scopes[0]: team scope 'team' needs group_id and has no Signal group yet; "
        "run `relay groups create team`")]


def test_strict_mode_names_the_coordination_command(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, COORDINATION_GROUP))
    (problem,) = caught.value.problems
    assert problem.field == "coordination"
    assert "relay groups create --coordination" in problem.message


def test_pending_groups_load_when_allowed(tmp_path: Path) -> None:
    text = NO_TEAM_GROUP + '\n[coordination]\nchannel = "group"\n'
    cfg = load_config(_write(tmp_path, text), allow_pending_groups=True)
    assert cfg.scope("team").group_id is None
    assert cfg.coordination.group_id is None


def test_allowing_pending_groups_hides_no_other_problem(tmp_path: Path) -> None:
    text = NO_TEAM_GROUP.replace('support = ["ben"]', 'support = ["bne"]')
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, text), allow_pending_groups=True)
    assert [p.field for p in caught.value.problems] == ["scopes[1].support"]


def test_a_chosen_scope_with_group_id_is_still_refused_when_pending_allowed(
    tmp_path: Path,
) -> None:
    text = VALID.replace('kind = "chosen"\n', f'kind = "chosen"\ngroup_id = "{OTHER_GROUP}"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, text), allow_pending_groups=True)
    (problem,) = caught.value.problems
    assert "remove group_id" in problem.message


def test_config_check_refuses_pending_groups(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["config", "check", str(_write(tmp_path, NO_TEAM_GROUP))])
    assert result.exit_code == 2
    assert "run `relay groups create team`" in result.stderr
