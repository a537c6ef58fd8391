"""Edit one string setting of a TOML file as text, keeping every comment and blank line.

relay reads TOML with `tomllib` and has no TOML writer: the config files are written for
people, so a command that changes one setting edits that line and leaves the rest alone.
Every edit is checked by parsing the result; an edit that would not read back as
intended raises `TomlEditError` instead of producing a surprising file.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from typing import Any

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\[\]]+?)\s*(\]\]?)\s*$")
_KEY = re.compile(r"""^(\s*)(?:"([^"\\]*)"|'([^']*)'|([A-Za-z0-9_-]+))\s*=""")


class TomlEditError(Exception):
    """The file is not shaped as expected for this edit; nothing was changed."""


@dataclass(frozen=True)
class _Line:
    text: str  # with its line ending
    top: bool  # begins outside any multi-line string or array: may be a header or a key
    done: bool  # ends outside any multi-line string or array
    comment: int | None  # column where a trailing comment starts

    @property
    def code(self) -> str:
        body = self.text.rstrip("\r\n")
        return body if self.comment is None else body[: self.comment]


@dataclass(frozen=True)
class _Block:
    name: str
    array: bool
    header: int  # line index of the header
    end: int  # first line after the block


def toml_string(value: str) -> str:
    """`value` as a TOML basic string (quoted and escaped)."""
    out = []
    for char in value:
        if char in {'"', "\\"}:
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def set_value(text: str, section: str, key: str, value: str, *, index: int | None = None,
              after: str | None = None) -> str:
    """Set `key = "value"` in `[section]` (or in the `index`-th `[[section]]`).

    An existing line is replaced (its trailing comment kept); otherwise a `# key: ...`
    note in the block (see `remove_value`) becomes the line, or the line goes after the
    `after` setting if there is one, else after the block's last setting. A missing
    `[section]` table is appended at the end of the file.
    """
    lines = _scan(text)
    block = _find_block(lines, section, index)
    new = f"{key} = {toml_string(value)}"
    raw = [line.text for line in lines]
    if block is None:
        if index is not None:
            raise TomlEditError(f"no [[{section}]] entry number {index + 1} in the file")
        ending = _ending(raw)
        tail = "" if not raw or raw[-1].endswith(("\n", "\r")) else ending
        raw.append(f"{tail}{ending}[{section}]{ending}{new}{ending}")
    else:
        found = _find_key(lines, block, key)
        if found is not None:
            start, end = found
            first = lines[start]
            comment = ""
            if start == end and first.comment is not None:
                comment = "  " + first.text.rstrip("\r\n")[first.comment:].strip()
            raw[start:end + 1] = [
                f"{_indent(first.text)}{new}{comment}{_line_end(first.text, raw)}"]
        elif (marker := _pending_marker(lines, block, key)) is not None:
            line = lines[marker].text
            raw[marker] = f"{_indent(line)}{new}{_line_end(line, raw)}"
        else:
            anchor = _insert_after(lines, block, after)
            ending = _ending(raw)
            if not raw[anchor].endswith(("\n", "\r")):
                raw[anchor] += ending
            raw.insert(anchor + 1, new + ending)
    result = "".join(raw)
    if _lookup(_parse(result), section, index, key) != value:
        raise TomlEditError(f"could not set {_where(section, index)}.{key} by editing the text")
    return result


def remove_value(text: str, section: str, key: str, *, index: int | None = None,
                 note: str | None = None) -> str:
    """Remove `key` from `[section]` (or the `index`-th `[[section]]`), leaving the
    comment `# note` in its place when given. Absent: the text is returned unchanged."""
    lines = _scan(text)
    block = _find_block(lines, section, index)
    found = None if block is None else _find_key(lines, block, key)
    if found is None:
        return text
    start, end = found
    raw = [line.text for line in lines]
    first = lines[start].text
    replacement = [] if note is None else [f"{_indent(first)}# {note}{_line_end(first, raw)}"]
    raw[start:end + 1] = replacement
    result = "".join(raw)
    if _lookup(_parse(result), section, index, key) is not None:
        raise TomlEditError(f"could not remove {_where(section, index)}.{key} from the text")
    return result


def prepend_comment(text: str, comment_lines: list[str]) -> str:
    """Put `# ...` lines (and a blank line) at the top of the file."""
    ending = _ending(text.splitlines(keepends=True))
    head = "".join(f"# {line}".rstrip() + ending for line in comment_lines)
    return head + ending + text


# -- scanning -----------------------------------------------------------------------------


def _scan(text: str) -> list[_Line]:
    """Split into lines, tracking multi-line strings and arrays so that only real
    headers and keys are recognised."""
    out: list[_Line] = []
    multi: str | None = None  # the open multi-line string delimiter
    depth = 0
    for raw in text.splitlines(keepends=True):
        top = multi is None and depth == 0
        body = raw.rstrip("\r\n")
        comment: int | None = None
        i = 0
        while i < len(body):
            if multi is not None:
                if multi == '"""' and body[i] == "\\":
                    i += 2
                elif body.startswith(multi, i):
                    i += 3
                    while body.startswith(multi[0], i):  # closing may hold 1-2 extra quotes
                        i += 1
                    multi = None
                else:
                    i += 1
                continue
            char = body[i]
            if char == "#":
                comment = i
                break
            if body.startswith(('"""', "'''"), i):
                multi = body[i:i + 3]
                i += 3
            elif char in {'"', "'"}:
                i = _skip_string(body, i)
            else:
                depth += (char in "[{") - (char in "]}")
                i += 1
        out.append(_Line(raw, top, multi is None and depth <= 0, comment))
        depth = max(depth, 0)
    return out


def _skip_string(body: str, start: int) -> int:
    quote = body[start]
    i = start + 1
    while i < len(body):
        if quote == '"' and body[i] == "\\":
            i += 2
            continue
        if body[i] == quote:
            return i + 1
        i += 1
    return i


def _blocks(lines: list[_Line]) -> list[_Block]:
    heads: list[tuple[int, str, bool]] = []
    for number, line in enumerate(lines):
        if not line.top:
            continue
        match = _HEADER.match(line.code)
        if match and len(match.group(1)) == len(match.group(3)):
            name = ".".join(part.strip().strip("\"'") for part in match.group(2).split("."))
            heads.append((number, name, len(match.group(1)) == 2))
    ends = [start for start, _, _ in heads[1:]] + [len(lines)]
    return [_Block(name, array, start, end)
            for (start, name, array), end in zip(heads, ends, strict=True)]


def _find_block(lines: list[_Line], section: str, index: int | None) -> _Block | None:
    matching = [b for b in _blocks(lines) if b.name == section and b.array == (index is not None)]
    if index is None:
        return matching[0] if matching else None
    return matching[index] if 0 <= index < len(matching) else None


def _settings(lines: list[_Line], block: _Block) -> list[tuple[str, int, int]]:
    """(key, first line, last line) of each setting directly in the block."""
    found: list[tuple[str, int, int]] = []
    number = block.header + 1
    while number < block.end:
        line = lines[number]
        match = _KEY.match(line.code) if line.top else None
        if match is None:
            number += 1
            continue
        key = next(g for g in match.groups()[1:] if g is not None)
        last = number
        while not lines[last].done and last + 1 < block.end:
            last += 1
        found.append((key, number, last))
        number = last + 1
    return found


def _find_key(lines: list[_Line], block: _Block, key: str) -> tuple[int, int] | None:
    for name, first, last in _settings(lines, block):
        if name == key:
            return first, last
    return None


def _pending_marker(lines: list[_Line], block: _Block, key: str) -> int | None:
    """A `# key: ...` comment (left by `remove_value(..., note=...)`) to put the key on."""
    pattern = re.compile(rf"^\s*#\s*{re.escape(key)}:")
    for number in range(block.header + 1, block.end):
        if lines[number].top and pattern.match(lines[number].text):
            return number
    return None


def _insert_after(lines: list[_Line], block: _Block, after: str | None) -> int:
    settings = _settings(lines, block)
    for name, _, last in settings:
        if name == after:
            return last
    return settings[-1][2] if settings else block.header


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def _line_end(line: str, raw: list[str]) -> str:
    return line[len(line.rstrip("\r\n")):] or _ending(raw)


def _ending(raw: list[str]) -> str:
    return "\r\n" if raw and raw[0].endswith("\r\n") else "\n"


def _parse(text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TomlEditError(f"the edited file would not be valid TOML ({exc})") from None


def _lookup(data: dict[str, Any], section: str, index: int | None, key: str) -> Any:
    table: Any = data.get(section)
    if index is not None:
        table = table[index] if isinstance(table, list) and index < len(table) else None
    return table.get(key) if isinstance(table, dict) else None


def _where(section: str, index: int | None) -> str:
    return section if index is None else f"{section}[{index}]"
