"""A sandbox organisation written to a real relay.toml, for `relay doctor` tests.

The config file is the example's own text edited the way `relay init` edits it, pointed at
a sandbox on loopback, with real keys (`create_keyring`) and a real migrated database.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from relay.config import load_config
from relay.doctor import CheckResult, DiskLimits, render_lines, run_checks
from relay.keysource import create_keyring
from relay.sandbox_org import BOT_ACI, BOT_NUMBER, SandboxOrg, example_path, start_sandbox_org
from relay.setup.toml_edit import remove_value, set_value
from relay.store.db import make_engine
from relay.store.migrate import ensure_schema

NOW = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
ROOMY = DiskLimits(fail_below=1, warn_below=2)  # any real filesystem passes


def free_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


@dataclass
class DoctorOrg:
    org: SandboxOrg
    path: Path
    example: str

    @property
    def text(self) -> str:
        return self.path.read_text("utf-8")

    def set(self, section: str, key: str, value: str, index: int | None = None) -> None:
        self.path.write_text(set_value(self.text, section, key, value, index=index), "utf-8")

    def remove(self, section: str, key: str, index: int | None = None) -> None:
        self.path.write_text(remove_value(self.text, section, key, index=index), "utf-8")

    async def run(self, limits: DiskLimits = ROOMY,
                  environ: dict[str, str] | None = None) -> list[CheckResult]:
        return await run_checks(self.path, limits=limits, environ=environ or {})

    async def lines(self, limits: DiskLimits = ROOMY,
                    environ: dict[str, str] | None = None) -> dict[str, str]:
        """Each check's printed line, by check name."""
        results = await self.run(limits, environ)
        return {r.check: line for r, line in zip(results, render_lines(results), strict=True)}

    async def stop(self) -> None:
        await self.org.sandbox.stop()


def write_config(path: Path, example: str, *, service: str, data_dir: Path,
                 database_url: str, webhook_listen: str | None,
                 health_listen: str) -> None:
    text = example_path(example).read_text("utf-8")
    for section, key, value in (
        ("signal", "service", service), ("signal", "bot_number", BOT_NUMBER),
        ("signal", "bot_aci", BOT_ACI), ("storage", "url", database_url),
        ("keys", "directory", str(data_dir / "keys")), ("keys", "source", "directory"),
        ("health", "listen", health_listen),
    ):
        text = set_value(text, section, key, value)
    if webhook_listen is not None:
        text = set_value(text, "signal", "webhook_listen", webhook_listen)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, "utf-8")


async def doctor_org(tmp_path: Path, example: str = "mpp", *, db_url: str | None = None,
                     webhook: bool = False, health_listen: str = "127.0.0.1:0",
                     setup: bool = True) -> DoctorOrg:
    """A sandbox org and its relay.toml; with `setup`, keys created and the DB migrated."""
    data_dir = tmp_path / example
    database_url = db_url or f"sqlite:///{data_dir / 'relay.db'}"
    org = await start_sandbox_org(example, data_dir, database_url=database_url, webhook=webhook)
    path = tmp_path / "relay.toml"
    write_config(path, example, service=org.sandbox.service, data_dir=data_dir,
                 database_url=database_url, webhook_listen=org.cfg.signal.webhook_listen,
                 health_listen=health_listen)
    if setup:
        cfg = load_config(path)
        create_keyring(cfg, NOW)
        engine = make_engine(cfg.storage.url)
        try:
            ensure_schema(engine)
        finally:
            engine.dispose()
    return DoctorOrg(org, path, example)
