"""Request decoding and responses the way the Go (gin) REST API does them.

* Bodies are JSON whatever the ``Content-Type`` (signalbot sends ``text/plain``). Like
  ``encoding/json``: the first JSON value is read and the rest ignored, ``null`` is an
  empty object, keys match case-insensitively, unknown keys are ignored, and a wrong type
  (a float or string for an int, …) fails the whole body. Failures answer
  ``400 {"error":"Couldn't process request - invalid request"}``; gin has already
  written the status by then, so net/http sniffs that body as ``text/plain``.
* ``c.JSON`` output is compact and HTML-escaped (``<`` → ``\\u003c`` …), as Go's
  ``json.Marshal`` does; content type ``application/json; charset=utf-8``.
* Unknown routes: plain-text ``404 page not found``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

INVALID_REQUEST = "Couldn't process request - invalid request"
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)

Spec = str | Mapping[str, Any] | list[Any]
"""A field spec: ``"str" | "int" | "bool" | "str_list" | "any"``, a nested object schema
(a mapping), or ``[schema]`` for a list of such objects."""
Schema = Mapping[str, Spec]


class BadBodyError(ValueError):
    """The body does not decode into the handler's Go struct."""


def _reject_constant(name: str) -> Any:
    raise BadBodyError(name)


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def decode_body(raw: bytes, schema: Schema) -> dict[str, Any]:
    """Decode ``raw`` like gin's ``BindJSON`` into a dict keyed by ``schema``'s names.

    Absent and ``null`` fields are left out. Raises :class:`BadBodyError`.
    """
    text = raw.decode("utf-8", errors="replace")
    start = len(text) - len(text.lstrip(" \t\r\n"))
    if start >= len(text):
        raise BadBodyError("EOF")
    try:
        value, _ = _DECODER.raw_decode(text, start)
    except json.JSONDecodeError as exc:
        raise BadBodyError(str(exc)) from exc
    if value is None:
        return {}
    return _object(value, schema)


def _object(value: Any, schema: Schema) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadBodyError("not an object")
    out: dict[str, Any] = {}
    lowered = {name.lower(): name for name in schema}
    for key, item in value.items():
        name = key if key in schema else lowered.get(key.lower())
        if name is None or item is None:
            continue
        out[name] = _field(item, schema[name])
    return out


def _field(item: Any, spec: Spec) -> Any:
    if isinstance(spec, Mapping):
        return _object(item, spec)
    if isinstance(spec, list):
        if not isinstance(item, list):
            raise BadBodyError("not a list")
        return [{} if element is None else _object(element, spec[0]) for element in item]
    return _scalar(item, spec)


def _check_str(item: Any) -> bool:
    return isinstance(item, str)


def _check_bool(item: Any) -> bool:
    return isinstance(item, bool)


def _check_int(item: Any) -> bool:
    return isinstance(item, int) and not isinstance(item, bool) and INT64_MIN <= item <= INT64_MAX


def _check_str_list(item: Any) -> bool:
    return isinstance(item, list) and all(e is None or isinstance(e, str) for e in item)


_CHECKS = {
    "any": lambda _item: True,
    "str": _check_str,
    "bool": _check_bool,
    "int": _check_int,
    "str_list": _check_str_list,
}


def _scalar(item: Any, kind: str) -> Any:
    if not _CHECKS[kind](item):
        raise BadBodyError(f"not a {kind}")
    if kind == "str_list":
        return ["" if element is None else element for element in item]
    return item


def go_json(value: Any) -> bytes:
    """Go ``json.Marshal`` output: compact, UTF-8, with HTML characters escaped."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (
        ("&", "\\u0026"),
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escaped)
    return text.encode("utf-8")


def json_response(status: int, value: Any) -> web.Response:
    """gin ``c.JSON(status, value)``."""
    return web.Response(
        status=status, body=go_json(value), content_type="application/json", charset="utf-8"
    )


def error_response(status: int, text: str) -> web.Response:
    """``{"error": text}`` with ``status``."""
    return json_response(status, {"error": text})


def bind_error() -> web.Response:
    """The ``BindJSON`` failure answer (status written first, body sniffed as text)."""
    return web.Response(
        status=400,
        body=go_json({"error": INVALID_REQUEST}),
        content_type="text/plain",
        charset="utf-8",
    )


def no_content() -> web.Response:
    """gin ``c.Status(204)``."""
    return web.Response(status=204)


def empty_ok() -> web.Response:
    """A handler that returns without writing: 200 with an empty body."""
    return web.Response(status=200, body=b"")


def page_not_found() -> web.Response:
    """gin's default 404 for unknown routes (also for a wrong method)."""
    return web.Response(status=404, body=b"404 page not found", content_type="text/plain")


class Reply(Exception):  # noqa: N818 - not an error: the answer, raised from deep checks
    """Raised by a route to answer with ``response`` (caught by the sandbox middleware)."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


def fail(status: int, text: str) -> Reply:
    """``raise fail(400, "…")``: answer ``{"error": text}`` with ``status``."""
    return Reply(error_response(status, text))


async def read_body(request: web.Request, schema: Schema) -> dict[str, Any]:
    """Read and decode the request body; raises :class:`Reply` with :func:`bind_error`."""
    raw = await request.read()
    try:
        return decode_body(raw, schema)
    except BadBodyError as exc:
        raise Reply(bind_error()) from exc
