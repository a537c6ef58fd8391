"""Deployment files: deploy/compose.yaml, deploy/Dockerfile, the systemd units, the scripts.

compose.yaml is validated by compose itself (`docker compose config`, or Debian's
docker-compose 1.29) and its resolved form is checked for what keeps reports private: no
published ports, json-rpc mode, terse logs, the webhook pointed at relay, a read-only
non-root relay with its secrets as files. The units pass `systemd-analyze verify`, and a
broken copy does not. Without compose or systemd-analyze the tests skip, except under
CI=true, where they fail.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy.engine import make_url

from keys.layout import CREDENTIAL_NAME
from relay.config import load_config
from relay.webhook import WEBHOOK_PATH

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
RELAY_BIN = Path(sys.executable).parent / "relay"
MIN_REST = (0, 101)


def _missing(tool: str) -> None:
    message = f"{tool} is not installed"
    if IN_CI:
        pytest.fail(message + ": CI=true requires it (.ci/run installs it with apt-get)")
    pytest.skip(message + ": deployment check SKIPPED")


def _run(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, check=False)


# -- compose -------------------------------------------------------------------------------


def _compose_command() -> list[str]:
    docker = shutil.which("docker")
    if docker and _run(docker, "compose", "version").returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy:
        return [legacy]
    _missing("neither `docker compose` nor `docker-compose`")
    raise AssertionError  # unreachable: _missing skips or fails


@pytest.fixture(scope="module")
def compose_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of deploy/ with the dummy secret files and directories the set-up creates."""
    root = tmp_path_factory.mktemp("compose")
    deploy = root / "deploy"
    deploy.mkdir()
    for name in ("compose.yaml", "Dockerfile", "relay.compose.toml"):
        shutil.copy(DEPLOY / name, deploy / name)
    (deploy / "secrets").mkdir(mode=0o700)
    for name in ("relay-root", "relay-pgpass", "postgres-password"):
        (deploy / "secrets" / name).write_bytes(b"dummy")
    for name in ("config", "state/keys", "state/signal-cli"):
        (deploy / name).mkdir(parents=True)
    shutil.copy(DEPLOY / "relay.compose.toml", deploy / "config" / "relay.toml")
    return deploy


@pytest.fixture(scope="module")
def compose(compose_dir: Path) -> dict[str, Any]:
    """compose.yaml as compose resolves it (every profile), after `config -q` passes."""
    command = [*_compose_command(), "-f", "compose.yaml", "--profile", "setup"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RELAY_", "COMPOSE_"))}
    quiet = subprocess.run([*command, "config", "-q"], cwd=compose_dir, env=env,
                           capture_output=True, text=True, timeout=120, check=False)
    assert quiet.returncode == 0, quiet.stderr
    full = subprocess.run([*command, "config"], cwd=compose_dir, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert full.returncode == 0, full.stderr
    yaml = importlib.import_module("yaml")  # PyYAML: a dependency of signalbot
    data: dict[str, Any] = yaml.safe_load(full.stdout)
    return data


def _service(compose: dict[str, Any], name: str) -> dict[str, Any]:
    service: dict[str, Any] = compose["services"][name]
    return service


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # KEY=VALUE strings
        return dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _mounts(service: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(source, target, read_only) for each volume, in compose v1 or v2 rendering."""
    mounts = []
    for volume in service.get("volumes") or []:
        if isinstance(volume, str):
            parts = volume.split(":")
            mode = parts[2] if len(parts) > 2 else "rw"
            mounts.append((parts[0], parts[1], "ro" in mode.split(",")))
        else:
            mounts.append((str(volume.get("source", "")), str(volume["target"]),
                           bool(volume.get("read_only", False))))
    return mounts


def _secret_names(service: dict[str, Any]) -> set[str]:
    return {s if isinstance(s, str) else s["source"] for s in service.get("secrets") or []}


def test_no_service_publishes_a_port(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"signal-cli-rest-api", "relay", "relay-setup",
                                        "postgres"}
    for name, service in compose["services"].items():
        assert not service.get("ports"), f"{name} publishes a port"
        assert service.get("network_mode") != "host", name


def test_signal_cli_rest_api_is_pinned_json_rpc_quiet_and_feeds_the_webhook(
    compose: dict[str, Any],
) -> None:
    rest = _service(compose, "signal-cli-rest-api")
    image, _, tag = rest["image"].rpartition(":")
    assert image == "bbernhard/signal-cli-rest-api"
    version = re.match(r"^(\d+)\.(\d+)", tag)
    assert version, f"pin an exact release, not '{tag}'"
    assert (int(version[1]), int(version[2])) >= MIN_REST, "signalbot 2.2.1 needs >= 0.101"
    env = _env(rest)
    assert env["MODE"] == "json-rpc"
    assert env["LOG_LEVEL"] == "warn"
    assert env["JSON_RPC_TRUST_NEW_IDENTITIES"] == "on-first-use"
    assert "JSON_RPC_IGNORE_ATTACHMENTS" not in env  # would lose messages (WIRE.md F13)
    webhook = urlsplit(env["RECEIVE_WEBHOOK_URL"])
    assert (webhook.scheme, webhook.hostname, webhook.path) == ("http", "relay", WEBHOOK_PATH)
    cfg = load_config(DEPLOY / "relay.compose.toml", allow_pending_groups=True)
    assert cfg.signal.webhook_listen is not None
    assert webhook.port == int(cfg.signal.webhook_listen.rpartition(":")[2])
    assert cfg.signal.service == "signal-cli-rest-api:8080"
    targets = [target for _, target, _ in _mounts(rest)]
    assert "/home/.local/share/signal-cli" in targets


def test_relay_runs_read_only_unprivileged_with_file_secrets(compose: dict[str, Any]) -> None:
    dockerfile_user = _final_user()
    for name in ("relay", "relay-setup"):
        relay = _service(compose, name)
        assert relay["read_only"] is True, name
        assert str(relay["user"]) == dockerfile_user, name
        assert str(relay["user"]).split(":")[0] not in ("0", "root"), name
        assert relay["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in relay["security_opt"], name
        assert any(str(t).startswith("/tmp") for t in relay["tmpfs"]), name
        env = _env(relay)
        assert env["CREDENTIALS_DIRECTORY"] == "/run/secrets"
        assert CREDENTIAL_NAME in _secret_names(relay), "keysource reads relay-root"
        assert env["PGPASSFILE"] == "/run/secrets/relay-pgpass"
        assert "relay-pgpass" in _secret_names(relay)
        assert not [k for k in env if "PASSWORD" in k.upper() and not k.endswith("_FILE")]
        assert relay["depends_on"]["postgres"]["condition"] == "service_healthy"
    relay = _service(compose, "relay")
    assert relay["command"] == ["run", "-c", "/etc/relay/relay.toml"]
    assert relay["healthcheck"]["test"][1:3] == ["relay", "health"]
    mounts = {target: read_only for _, target, read_only in _mounts(relay)}
    assert mounts["/etc/relay"] is True, "relay's config is mounted read-only"
    cfg = load_config(DEPLOY / "relay.compose.toml", allow_pending_groups=True)
    assert cfg.keys.source == "credentials"
    assert mounts[str(cfg.keys.directory)] is False, "keys.directory is a writable volume"
    url = make_url(cfg.storage.url)
    assert (url.host, url.password) == ("postgres", None), "no password in storage.url"
    for name, secret in compose["secrets"].items():
        assert secret.get("file"), f"secret {name} must be a file"


def test_postgres_is_pinned_private_and_gets_its_password_from_a_file(
    compose: dict[str, Any],
) -> None:
    pg = _service(compose, "postgres")
    assert re.fullmatch(r"postgres:\d+(\.\d+)?(-[a-z]+)?", pg["image"]), pg["image"]
    env = _env(pg)
    assert env["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres-password"
    assert "POSTGRES_PASSWORD" not in env
    assert "pg_isready" in pg["healthcheck"]["test"]
    internal = {name for name, net in compose["networks"].items() if (net or {}).get("internal")}
    for name in ("relay", "postgres"):
        assert set(_service(compose, name)["networks"]) <= internal, f"{name} must not egress"


# -- Dockerfile ----------------------------------------------------------------------------


def _instructions() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text("utf-8").replace("\\\n", " ")
    pairs = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            word, _, rest = stripped.partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


def _final_stage() -> list[tuple[str, str]]:
    steps = _instructions()
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def _final_user() -> str:
    return [rest for word, rest in _final_stage() if word == "USER"][-1]


def test_dockerfile_is_multi_stage_non_root_and_checks_health() -> None:
    steps = _instructions()
    assert sum(word == "FROM" for word, _ in steps) >= 2, "multi-stage"
    assert re.search(r"python:3\.11-slim", (DEPLOY / "Dockerfile").read_text("utf-8"))
    user = _final_user()
    assert re.fullmatch(r"[1-9]\d{3,}:[1-9]\d{3,}", user), f"fixed non-root uid:gid, not {user}"
    assert not [rest for word, rest in steps if word == "ADD"], "use COPY, never ADD (URLs)"
    final = _final_stage()
    assert not [r for w, r in final if w == "RUN" and re.search(r"gcc|build-essential|pip ", r)]
    only_the_venv = "--from=build /opt/relay/.venv /opt/relay/.venv"
    assert [r for w, r in final if w == "COPY"] == [only_the_venv]
    health = [rest for word, rest in final if word == "HEALTHCHECK"]
    assert len(health) == 1
    assert '"relay", "health"' in health[0]
    assert ("ENTRYPOINT", '["relay"]') in final


def test_dockerignore_sends_only_the_sources_the_dockerfile_copies() -> None:
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text("utf-8").splitlines()
                if line.strip() and not line.startswith("#")]
    assert patterns[0] == "*", "deny everything, then re-include"
    included = {p.removeprefix("!").rstrip("/") for p in patterns if p.startswith("!")}
    copied = {source for word, rest in _instructions()
              if word == "COPY" and not rest.startswith("--from")
              for source in rest.split()[:-1]}
    assert copied == included
    assert not included & {".venv", ".git", "deploy", "tests"}


# -- systemd -------------------------------------------------------------------------------


def _analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        _missing("systemd-analyze")
        raise AssertionError  # unreachable
    return tool


@pytest.fixture
def units(tmp_path: Path) -> Path:
    """The units, with ExecStart pointing at this venv's real `relay` (verify needs it)."""
    for unit in (DEPLOY / "systemd").iterdir():
        text = unit.read_text("utf-8").replace("/opt/relay/.venv/bin/relay", str(RELAY_BIN))
        (tmp_path / unit.name).write_text(text, "utf-8")
    return tmp_path


def _verify(directory: Path) -> tuple[int, list[str]]:
    names = sorted(p.name for p in directory.iterdir())
    result = _run(_analyze(), "verify", "--man=no", "--generators=no", *names, cwd=directory)
    # verify only warns (exit 0) on an unknown or misspelt setting: count those too.
    complaints = [line for line in (result.stdout + result.stderr).splitlines()
                  if any(name in line for name in names)]
    return result.returncode, complaints


def _parse_unit(path: Path) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in path.read_text("utf-8").splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def test_systemd_units_pass_verify(units: Path) -> None:
    assert sorted(p.name for p in units.iterdir()) == [
        "relay-purge.service", "relay-purge.timer", "relay.service"]
    returncode, complaints = _verify(units)
    assert (returncode, complaints) == (0, [])


def test_verify_catches_a_misspelt_setting_and_a_missing_binary(units: Path) -> None:
    unit = units / "relay.service"
    good = unit.read_text("utf-8")
    unit.write_text(good.replace("ProtectSystem=strict", "ProtectSytem=strict"), "utf-8")
    _, complaints = _verify(units)
    assert any("ProtectSytem" in line for line in complaints)
    unit.write_text(good.replace(str(RELAY_BIN), str(units / "no-such-relay")), "utf-8")
    returncode, _ = _verify(units)
    assert returncode != 0


def test_relay_service_is_hardened_and_loads_the_root_credential() -> None:
    unit = _parse_unit(DEPLOY / "systemd" / "relay.service")
    assert unit["ExecStart"] == ["/opt/relay/.venv/bin/relay run -c /etc/relay/relay.toml"]
    assert unit["User"] == ["relay"]
    credentials = unit.get("LoadCredentialEncrypted", []) + unit.get("LoadCredential", [])
    assert [c.split(":")[0] for c in credentials] == [CREDENTIAL_NAME]
    for key, value in {
        "ProtectSystem": "strict", "NoNewPrivileges": "yes", "PrivateTmp": "yes",
        "ProtectHome": "yes", "StateDirectory": "relay", "Restart": "on-failure",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6", "UMask": "0077",
    }.items():
        assert unit[key] == [value], key
    purge = _parse_unit(DEPLOY / "systemd" / "relay-purge.service")
    assert purge["ExecStart"] == ["/opt/relay/.venv/bin/relay purge -c /etc/relay/relay.toml"]
    assert purge["LoadCredentialEncrypted"] == unit["LoadCredentialEncrypted"]


def test_no_restart_status_is_what_relay_returns_for_a_key_error(tmp_path: Path) -> None:
    """RestartPreventExitStatus=2: relay exits 2 when its keys are missing (no restart loop)."""
    unit = _parse_unit(DEPLOY / "systemd" / "relay.service")
    example = (DEPLOY / "examples" / "mpp.toml").read_text("utf-8")
    config = tmp_path / "relay.toml"
    config.write_text(example.replace('directory = "relay-keys/mpp"',
                                      f'directory = "{tmp_path / "no-keys"}"'), "utf-8")
    result = _run(RELAY_BIN, "run", "-c", config, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "refusing to start" in result.stderr
    assert unit["RestartPreventExitStatus"] == [str(result.returncode)]


# -- backup and restore scripts --------------------------------------------------------------


@pytest.mark.parametrize("script", ["backup.sh", "restore.sh"])
def test_scripts_are_strict_and_explain_their_usage(script: str) -> None:
    path = DEPLOY / script
    assert os.access(path, os.X_OK)
    body = path.read_text("utf-8")
    assert re.search(r"^set -E?euo pipefail$", body, re.MULTILINE)
    assert re.search(r"^umask 077$", body, re.MULTILINE)
    assert _run("bash", "-n", path).returncode == 0
    shown = _run("bash", path, "--help")
    assert shown.returncode == 0
    assert shown.stdout.startswith(f"usage: {script}")
    wrong = _run("bash", path, "--bogus")
    assert wrong.returncode == 1
    assert "unknown argument '--bogus'" in wrong.stderr
    shellcheck = shutil.which("shellcheck")
    if shellcheck is not None:
        linted = _run(shellcheck, "-x", path)  # -x: also lints the sourced config-paths.sh
        assert linted.returncode == 0, linted.stdout
