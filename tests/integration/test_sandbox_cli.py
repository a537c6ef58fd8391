"""`relay sandbox serve` as a real process, driven by `relay sandbox phone|send|inbox|code`."""

from __future__ import annotations

import socket
from pathlib import Path

from relay.config import load_config
from tests.integration.sandbox_proc import http, relay, serve, write_config

BOT = "+15550100001"


def test_serve_with_officer_phones_send_inbox_and_groups(tmp_path: Path) -> None:
    config = write_config(tmp_path, "127.0.0.1:1")
    officers = load_config(config).officers
    rowan = next(o for o in officers if o.id == "rc-rowan")
    with serve("--phones-from", str(config)) as sandbox:
        url = ["--url", sandbox.url]
        assert http(f"{sandbox.url}/v1/accounts") == (200, [BOT])

        sent = relay("sandbox", "send", "rc-rowan", "hello from rowan", *url)
        assert sent.returncode == 0, sent.stderr
        assert "sent (timestamp " in sent.stdout
        status, contacts = http(f"{sandbox.url}/v1/contacts/{BOT}")
        assert status == 200
        assert [c["uuid"] for c in contacts] == [rowan.aci]
        assert contacts[0]["profile"]["given_name"] == rowan.display_name

        # auto_phones: officers by ACI and a number nobody created are accepted as members.
        members = [o.aci for o in officers] + ["+15550100999"]
        status, created = http(
            f"{sandbox.url}/v1/groups/{BOT}", "POST", {"name": "Officers", "members": members}
        )
        assert status == 201, created
        status, group = http(f"{sandbox.url}/v1/groups/{BOT}/{created['id']}")
        assert status == 200
        assert "+15550100999" in group["members"]

        empty = relay("sandbox", "inbox", "rc-rowan", *url)
        assert empty.returncode == 0
        assert "nothing for rc-rowan yet" in empty.stdout
        reply = {"message": "thanks, got it", "number": BOT, "recipients": [rowan.aci]}
        assert http(f"{sandbox.url}/v2/send", "POST", reply)[0] == 201
        box = relay("sandbox", "inbox", "rc-rowan", "--wait", "5", *url)
        assert box.returncode == 0, box.stderr
        assert "message: thanks, got it" in box.stdout

        made = relay("sandbox", "phone", "Zed", "--number", "+15550100077", *url)
        assert made.returncode == 0, made.stderr
        assert "phone Zed: number +15550100077" in made.stdout
        assert relay("sandbox", "send", "Zed", "hi", *url).returncode == 0
        duplicate = relay("sandbox", "phone", "Zed", *url)
        assert duplicate.returncode == 1
        assert "already exists" in duplicate.stderr

        nobody = relay("sandbox", "send", "Nobody", "hi", *url)
        assert nobody.returncode == 1
        assert "no phone named Nobody" in nobody.stderr
        waited = relay("sandbox", "inbox", "Zed", "--wait", "0.5", *url)
        assert waited.returncode == 1
        assert "nothing arrived for Zed within 0.5 s" in waited.stderr
        no_code = relay("sandbox", "code", *url)
        assert no_code.returncode == 1
        assert "no registration is pending; run `relay register` first" in no_code.stderr

        code, rest = sandbox.stop()
        assert code == 0
        assert "sandbox stopped." in rest


def test_serve_unregistered_explains_how_to_get_the_code() -> None:
    with serve("--unregistered", "--number", "+15550100042") as sandbox:
        assert http(f"{sandbox.url}/v1/accounts") == (200, [])
        assert f"relay sandbox code --url {sandbox.url}" in sandbox.banner
        assert "relay register" in sandbox.banner
        code, rest = sandbox.stop()
    assert code == 0
    assert "sandbox stopped." in rest


def test_client_commands_name_an_unreachable_sandbox() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = relay("sandbox", "code", "--url", f"http://127.0.0.1:{port}")
    assert result.returncode == 1
    assert f"the sandbox is not reachable at http://127.0.0.1:{port}" in result.stderr
    assert "relay sandbox serve" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_on_a_busy_port_says_so() -> None:
    with serve() as first:
        port = first.service.rsplit(":", 1)[1]
        second = relay("sandbox", "serve", "--port", port, within=30)
    assert second.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in second.stderr
    assert "--port" in second.stderr
    assert "Traceback" not in second.stderr


def test_phones_from_a_broken_config_names_the_problem(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text('[signal]\nbot_number = "12345"\n', "utf-8")
    result = relay("sandbox", "serve", "--port", "0", "--phones-from", str(broken))
    assert result.returncode == 2
    assert "signal.bot_number" in result.stderr
    assert "broken.toml: " in result.stderr  # the file, then one line per problem
