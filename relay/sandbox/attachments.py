"""Attachment payloads: ``base64_attachments`` parsing, Go base64 errors, MIME sniffing.

``/v2/send`` accepts ``"<b64>"``, ``"data:<mime>;base64,<b64>"`` and
``"data:<mime>;filename=<f>;base64,<b64>"`` (Go ``AttachmentEntry.extractMetaData``).
"""

from __future__ import annotations

import string
import uuid
from dataclasses import dataclass

from relay.sandbox.ids import go_b64decode

_B64_ALPHABET = frozenset(string.ascii_letters + string.digits + "+/")
_EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "application/pdf": ".pdf",
    "audio/aac": ".aac",
    "video/mp4": ".mp4",
    "text/plain": ".txt",
}


@dataclass(frozen=True)
class DecodedAttachment:
    """One decoded ``base64_attachments`` entry."""

    data: bytes
    content_type: str
    filename: str


class AttachmentDataError(ValueError):
    """The entry does not decode; ``str(exc)`` is the REST API's error text."""


def decode_attachment(entry: str) -> DecodedAttachment:
    """Parse one ``base64_attachments`` entry like the REST API (raises
    :class:`AttachmentDataError` with Go's text)."""
    mime, filename, payload = _split(entry)
    if payload == "":
        raise AttachmentDataError("The base64 data does not exist.")
    data = go_b64decode(payload)
    if data is None:
        raise AttachmentDataError(f"illegal base64 data at input byte {_bad_offset(payload)}")
    content_type = mime or sniff_content_type(data).split(";")[0]
    if not filename:
        filename = str(uuid.uuid4()) + extension_for(content_type)
    return DecodedAttachment(data=data, content_type=content_type, filename=filename)


def _split(entry: str) -> tuple[str, str, str]:
    marker = entry.rfind("base64,")
    if "data:" not in entry or marker == -1:
        return "", "", entry
    payload = entry[marker + len("base64,") :]
    if marker == 0:
        return "", "", payload
    mime = filename = ""
    for item in entry[: marker - 1].split(";"):
        if item.startswith("data:"):
            mime = item[len("data:") :]
        elif item.startswith("filename="):
            filename = item[len("filename=") :]
    return mime, filename, payload


def _bad_offset(payload: str) -> int:
    for index, char in enumerate(payload):
        if char not in _B64_ALPHABET and char not in "=\r\n":
            return index
    first_pad = payload.find("=")
    if first_pad != -1 and payload.rstrip("=") != payload[:first_pad]:
        return first_pad
    return len(payload) - len(payload) % 4


def sniff_content_type(data: bytes) -> str:
    """A small stand-in for Go's ``mimetype.Detect`` on the common attachment kinds."""
    signatures: tuple[tuple[bytes, str], ...] = (
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"GIF87a", "image/gif"),
        (b"GIF89a", "image/gif"),
        (b"%PDF-", "application/pdf"),
    )
    for magic, kind in signatures:
        if data.startswith(magic):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp":
        return "video/mp4"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "application/octet-stream"
    return "text/plain; charset=utf-8"


def extension_for(content_type: str) -> str:
    """File extension for a content type (``""`` when unknown)."""
    return _EXTENSIONS.get(content_type.split(";", maxsplit=1)[0].strip(), "")
