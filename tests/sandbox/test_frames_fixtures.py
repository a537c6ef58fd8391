"""Frame builders and simulated phones reproduce the captured fixtures byte for byte."""

from __future__ import annotations

import json

import pytest

from relay.sandbox import QuoteRef, Sandbox, frames
from relay.sandbox.frames import Source
from tests.sandbox.conftest import (
    ALICE_ACI,
    ALICE_NUMBER,
    BASE_TS,
    BOT_ACI,
    BOT_NUMBER,
    INTERNAL_ID,
    REPORTER_ACI,
    connect,
    fixture_text,
    next_frame,
    next_text,
)

ALICE = Source(uuid=ALICE_ACI, number=ALICE_NUMBER, name="Alice")
REPORTER = Source(uuid=REPORTER_ACI, number=None, name="Reporter")
BOT = Source(uuid=BOT_ACI, number=BOT_NUMBER, name="Bot")


def _data(source: Source, ts: int, **kwargs: object) -> str:
    inner = frames.data_message(ts, **kwargs)  # type: ignore[arg-type]
    env = frames.envelope(source, ts, content={"dataMessage": inner})
    return frames.encode_frame(frames.frame(env, BOT_NUMBER))


def _jpeg(*, legacy: bool) -> dict[str, object]:
    return frames.attachment(
        content_type="image/jpeg",
        filename="IMG_0042.jpg",
        attachment_id="Bq3kQ0mR1sT2uV3wX4yZ.jpg",
        size=284113,
        width=1536,
        height=2048,
        upload_timestamp=1767225599200,
        legacy=legacy,
    )


BUILT = {
    "dm_text_number_visible.json": lambda: _data(
        ALICE, BASE_TS, message="There is a problem at site B"
    ),
    "dm_text_number_hidden.json": lambda: _data(REPORTER, BASE_TS, message="anonymous report"),
    "group_text.json": lambda: _data(
        ALICE,
        BASE_TS,
        message="officer note",
        group_info=frames.group_info(INTERNAL_ID, "Officers", 3, "DELIVER"),
    ),
    "group_update.json": lambda: _data(
        ALICE,
        1767225613000,
        message=None,
        group_info=frames.group_info(INTERNAL_ID, "Officers", 4, "UPDATE"),
    ),
    "legacy_group_no_revision.json": lambda: _data(
        ALICE,
        BASE_TS,
        message="hi",
        group_info=frames.group_info(INTERNAL_ID, "Officers", 3, legacy=True),
    ),
    "reaction_dm.json": lambda: _data(
        ALICE,
        1767225606000,
        message=None,
        reaction=frames.reaction("👍", BOT, 1767225600100, remove=False),
    ),
    "attachment_dm.json": lambda: _data(
        REPORTER, 1767225610000, message="photo of the damage", attachments=[_jpeg(legacy=False)]
    ),
    "attachment_dm_no_isVoiceNote.json": lambda: _data(
        REPORTER, 1767225610001, message="photo", attachments=[_jpeg(legacy=True)]
    ),
    "remote_delete_dm.json": lambda: _data(
        REPORTER, 1767225612000, message=None, remote_delete=frames.remote_delete(BASE_TS)
    ),
    "expiration_update_dm.json": lambda: _data(
        ALICE, 1767225614000, message=None, expires_in_seconds=604800, is_expiration_update=True
    ),
    "receipt_delivery.json": lambda: frames.encode_frame(
        frames.frame(
            frames.envelope(
                ALICE,
                1767225608000,
                content={"receiptMessage": frames.receipt_message(1767225608000, [1767225600100])},
            ),
            BOT_NUMBER,
        )
    ),
    "typing_started_group.json": lambda: frames.encode_frame(
        frames.frame(
            frames.envelope(
                ALICE,
                1767225609000,
                content={
                    "typingMessage": frames.typing_message("STARTED", 1767225609000, INTERNAL_ID)
                },
            ),
            BOT_NUMBER,
        )
    ),
    "sync_sent_dm.json": lambda: frames.encode_frame(
        frames.frame(
            frames.envelope(
                BOT,
                1767225607000,
                content={
                    "syncMessage": frames.sync_sent_message(
                        ALICE, frames.data_message(1767225607000, "typed on the phone")
                    )
                },
            ),
            BOT_NUMBER,
        )
    ),
    "rest_error_frame.json": lambda: frames.encode_frame(
        frames.error_frame("some error from signal-cli")
    ),
}


@pytest.mark.parametrize("name", sorted(BUILT))
def test_builders_reproduce_fixture_bytes(name: str) -> None:
    expected = fixture_text(name)
    built = BUILT[name]()
    assert json.loads(built) == json.loads(expected)
    assert built == expected  # same key order, compact, emoji unescaped


def test_every_fixture_is_covered() -> None:
    from tests.sandbox.conftest import FIXTURES

    assert {p.name for p in FIXTURES.glob("*.json")} == set(BUILT)


def test_legacy_shape_turns_current_frames_into_the_legacy_fixtures() -> None:
    group = json.loads(BUILT["group_text.json"]())
    group["envelope"]["dataMessage"]["message"] = "hi"
    legacy = frames.legacy_shape(group)
    assert frames.encode_frame(legacy) == fixture_text("legacy_group_no_revision.json")
    attach = json.loads(BUILT["attachment_dm.json"]())
    stripped = frames.legacy_shape(attach, no_revision=False)
    assert "isVoiceNote" not in stripped["envelope"]["dataMessage"]["attachments"][0]
    bare = frames.legacy_shape(attach, no_voice_note=False, no_server_timestamps=True)
    assert "serverReceivedTimestamp" not in bare["envelope"]


async def test_phones_emit_fixture_bytes(sandbox: Sandbox) -> None:
    alice = sandbox.add_phone("Alice", ALICE_NUMBER, aci=ALICE_ACI)
    reporter = sandbox.add_phone("Reporter", "+4917699999999", aci=REPORTER_ACI, hide_number=True)
    grp = sandbox.create_group("Officers", members=[alice], internal_id=INTERNAL_ID, revision=3)
    ws = await connect(sandbox)
    try:
        await alice.send("There is a problem at site B", timestamp=BASE_TS)
        assert await next_text(ws) == fixture_text("dm_text_number_visible.json")
        await reporter.send("anonymous report", timestamp=BASE_TS)
        assert await next_text(ws) == fixture_text("dm_text_number_hidden.json")
        await alice.send_group(grp, "officer note", timestamp=BASE_TS)
        assert await next_text(ws) == fixture_text("group_text.json")
        await alice.react(
            "👍", QuoteRef(1767225600100, sandbox.bot.source), timestamp=1767225606000
        )
        assert await next_text(ws) == fixture_text("reaction_dm.json")
        await alice.send_receipt([1767225600100], timestamp=1767225608000)
        assert await next_text(ws) == fixture_text("receipt_delivery.json")
        await alice.start_typing(grp, timestamp=1767225609000)
        assert await next_text(ws) == fixture_text("typing_started_group.json")
        await reporter.remote_delete(BASE_TS, timestamp=1767225612000)
        assert await next_text(ws) == fixture_text("remote_delete_dm.json")
        await alice.set_disappearing(604800, timestamp=1767225614000)
        assert await next_text(ws) == fixture_text("expiration_update_dm.json")

        await sandbox.add_member(grp, sandbox.add_phone("Carol", "+4917611111111"), by=alice)
        update = await next_frame(ws)
        expected = json.loads(fixture_text("group_update.json"))
        _same_ignoring_timestamps(update, expected)
    finally:
        await ws.close()


async def test_phone_attachment_matches_fixture_shape(sandbox: Sandbox) -> None:
    reporter = sandbox.add_phone("Reporter", "+4917699999999", aci=REPORTER_ACI, hide_number=True)
    data = b"\xff\xd8\xff\xe0" + b"\0" * 100
    ws = await connect(sandbox)
    try:
        from relay.sandbox import OutgoingAttachment

        jpeg = OutgoingAttachment(data, "image/jpeg", "IMG_0042.jpg", width=1536, height=2048)
        await reporter.send("photo of the damage", attachments=[jpeg], timestamp=1767225610000)
        got = await next_frame(ws)
    finally:
        await ws.close()
    expected = json.loads(fixture_text("attachment_dm.json"))
    item = got["envelope"]["dataMessage"]["attachments"][0]
    want = expected["envelope"]["dataMessage"]["attachments"][0]
    assert list(item) == list(want)
    assert item["id"].endswith(".jpg")
    assert len(item["id"]) == len(want["id"])
    assert item["size"] == len(data)
    assert sandbox.attachments[item["id"]].data == data
    for key in ("id", "size", "uploadTimestamp"):
        item[key] = want[key]
    assert got == expected


def _same_ignoring_timestamps(got: dict[str, object], expected: dict[str, object]) -> None:
    def scrub(value: object) -> object:
        if isinstance(value, dict):
            return {k: (0 if "imestamp" in k else scrub(v)) for k, v in value.items()}
        return value

    assert json.dumps(scrub(got)) == json.dumps(scrub(expected))
