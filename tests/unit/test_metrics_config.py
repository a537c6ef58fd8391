"""`[health]` config (loopback only) and how `relay health` words an answer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from relay.cli.healthcmd import verdict
from relay.cli.main import app
from relay.config import ConfigError, parse_config
from relay.config.schema import Health
from relay.sandbox_org import example_path, org_config_data


def config_with(tmp_path: Path, health: dict[str, object]) -> dict[str, object]:
    data = org_config_data("mpp", service="127.0.0.1:8080", data_dir=tmp_path)
    data["health"] = health
    return data


@pytest.mark.parametrize("listen", [
    "127.0.0.1:9464", "127.0.0.5:80", "localhost:9464", "LOCALHOST:1", "[::1]:9464",
    "127.0.0.1:0",
])
def test_loopback_addresses_are_accepted(tmp_path: Path, listen: str) -> None:
    cfg = parse_config(config_with(tmp_path, {"listen": listen}))
    assert cfg.health.address == listen


@pytest.mark.parametrize("listen", [
    "0.0.0.0:9464", "192.168.1.10:9464", "[::]:9464", "metrics.example.org:9464",
    "10.0.0.1:9464",
])
def test_a_non_loopback_listen_is_a_config_problem_naming_the_field(
    tmp_path: Path, listen: str,
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(config_with(tmp_path, {"listen": listen}))
    [problem] = caught.value.problems
    assert problem.field == "health.listen"
    assert "loopback" in problem.message
    assert "no authentication" in problem.message


@pytest.mark.parametrize(("listen", "why"), [
    ("http://127.0.0.1:9464", "without a scheme"),
    ("127.0.0.1", "host:port"),
    ("127.0.0.1:70000", "host:port"),
])
def test_a_malformed_listen_says_what_to_write(tmp_path: Path, listen: str, why: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(config_with(tmp_path, {"listen": listen}))
    assert why in str(caught.value.problems[0])


def test_the_endpoint_is_on_by_default_and_can_be_turned_off(tmp_path: Path) -> None:
    data = config_with(tmp_path, {})
    assert parse_config(data).health.address == "127.0.0.1:9464"
    assert parse_config(config_with(tmp_path, {"listen": ""})).health.address is None
    assert parse_config(config_with(tmp_path, {"enabled": False})).health.address is None
    assert Health(listen=None).address is None


def test_thresholds_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(config_with(tmp_path, {"timers_stale_seconds": 10,
                                            "outbox_stale_seconds": 0}))
    fields = {p.field for p in caught.value.problems}
    assert fields == {"health.timers_stale_seconds", "health.outbox_stale_seconds"}


def test_config_check_prints_the_loopback_problem(tmp_path: Path) -> None:
    path = tmp_path / "relay.toml"
    path.write_text(example_path("mpp").read_text("utf-8")
                    + '\n[health]\nlisten = "0.0.0.0:9464"\n', "utf-8")
    result = CliRunner().invoke(app, ["config", "check", str(path)])
    assert result.exit_code == 2
    assert "health.listen: must be a loopback address" in result.output


# -- relay health's wording -----------------------------------------------------------------


def body(failing: list[str], **checks: dict[str, object]) -> bytes:
    return json.dumps({"status": "unhealthy" if failing else "ok", "failing": failing,
                       "checks": checks}).encode()


def test_verdict_healthy() -> None:
    assert verdict(200, body([], receiver={"ok": True})) == (0, "healthy")


def test_verdict_names_each_failing_check_with_its_numbers() -> None:
    code, line = verdict(503, body(
        ["receiver", "outbox"], receiver={"ok": False},
        outbox={"ok": False, "waiting": 3, "oldest_waiting_age_s": 812.5, "threshold_s": 600}))
    assert code == 1
    assert line == ("unhealthy: receiver (not connected to signal-cli-rest-api), "
                    "outbox (3 waiting to be sent, oldest 812.5 s; limit 600 s)")


@pytest.mark.parametrize(("status", "raw"), [(503, b"<html>busy</html>"), (200, b"{}"),
                                             (404, b"404: Not Found")])
def test_verdict_on_something_else_answering_is_unhealthy(status: int, raw: bytes) -> None:
    code, line = verdict(status, raw)
    assert code == 1
    assert line.startswith("unhealthy: unexpected answer")


def write_config(tmp_path: Path, health: str) -> Path:
    path = tmp_path / "relay.toml"
    path.write_text(example_path("mpp").read_text("utf-8") + f"\n[health]\n{health}\n", "utf-8")
    return path


def test_relay_run_refuses_a_non_loopback_listen(tmp_path: Path) -> None:
    path = write_config(tmp_path, 'listen = "0.0.0.0:9464"')
    result = CliRunner().invoke(app, ["run", "-c", str(path)])
    assert result.exit_code == 2
    assert "health.listen: must be a loopback address" in result.output


@pytest.mark.parametrize(("health", "said"), [
    ("enabled = false", "not reachable: the health endpoint is off in the config"),
    ('listen = ""', "not reachable: the health endpoint is off in the config"),
    ('listen = "127.0.0.1:0"', "not reachable: health.listen uses port 0"),
])
def test_relay_health_without_a_fixed_port_exits_1(tmp_path: Path, health: str,
                                                   said: str) -> None:
    result = CliRunner().invoke(app, ["health", "-c", str(write_config(tmp_path, health))])
    assert result.exit_code == 1
    assert result.stdout.startswith(said)


def test_relay_health_with_a_broken_config_exits_1_not_2(tmp_path: Path) -> None:
    """Docker reserves exit code 2: a broken config is just "not healthy"."""
    result = CliRunner().invoke(app, ["health", "-c", str(write_config(tmp_path, "port = 1"))])
    assert result.exit_code == 1
    assert "health.port: unknown setting" in result.stderr
    missing = CliRunner().invoke(app, ["health", "-c", str(tmp_path / "nope.toml")])
    assert missing.exit_code == 1
