"""Pure text hygiene for what people send and what the bot relays (SECURITY.md section 7, 3-6).

Report text is only stripped of invisible controls and capped: it is never normalised, so
officers read exactly what was written. Names are normalised (NFKC) and stripped of every
format, private-use, surrogate and unassigned character.
"""

from __future__ import annotations

import unicodedata

# Bidi embedding, override and isolate controls, plus the implicit marks (LRM, RLM, ALM).
_BIDI = (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))
_C0_C1 = (*range(0x20), 0x7F, *range(0x80, 0xA0))
_KEEP = (ord("\n"), ord("\t"))
# Lone surrogates cannot be encoded to UTF-8, so they could never be sealed or sent.
_SURROGATES = range(0xD800, 0xE000)
_TEXT_TABLE: dict[int, None] = dict.fromkeys(
    [c for c in (*_BIDI, *_C0_C1, *_SURROGATES) if c not in _KEEP]
)
_NAME_DROP = frozenset({"Cc", "Cf", "Co", "Cs", "Cn"})

QUOTE_PREFIX = "\u2502 "


def clean_text(s: str, max_len: int) -> str:
    """Report text without bidi/C0/C1 controls (newline and tab stay), at most ``max_len`` long.

    Carriage returns become newlines so line breaks survive. ZWJ and ZWNJ stay: emoji
    sequences and several scripts need them. No NFKC: what people wrote is kept as written.
    """
    s = s.replace("\r\n", "\n").replace("\r", "\n")
    return s.translate(_TEXT_TABLE)[:max_len]


def clean_name(s: str, max_len: int = 64) -> str:
    """A display name: NFKC, one line, no Cc/Cf/Co/Cs/Cn, capped before and after NFKC."""
    s = unicodedata.normalize("NFKC", s[:max_len])
    s = " ".join(s.split())
    s = "".join(ch for ch in s if unicodedata.category(ch) not in _NAME_DROP)
    return " ".join(s.split())[:max_len].rstrip()


def quote_block(text: str) -> str:
    """Relayed text with every line prefixed by ``│ ``, so it can never pass for a bot line.

    Splits on every line boundary a client may render (also U+2028, U+2029, VT, FF, NEL).
    """
    return "\n".join(QUOTE_PREFIX + line for line in text.splitlines() or [""])


def answer_key(s: str) -> str:
    """How a short answer is compared: NFKC, case-folded, single-spaced, ends trimmed.

    Punctuation, emoji and spaces around the answer are dropped ("  2. " and "Yes! \U0001f642"
    read as "2" and "yes"); used for matching only, never stored.
    """
    s = " ".join(unicodedata.normalize("NFKC", s).casefold().replace("\u2019", "'").split())
    start, end = 0, len(s)
    while start < end and not s[start].isalnum():
        start += 1
    while end > start and not s[end - 1].isalnum():
        end -= 1
    return s[start:end]
