"""What a storable value is: the one definition every body that reaches the record meets.

A recorded value is kept forever and read back through PostgreSQL's jsonb, SQLite's JSON,
orjson and JavaScript clients, so only what all of them give back exactly is stored:

- text: no U+0000 (PostgreSQL's text and jsonb cannot hold it), no lone surrogate (it is
  not UTF-8), at most a bounded number of characters (`TEXT_MAX` unless a field says);
- numbers: finite, with magnitude at most `SAFE_MAX` = 2**53 - 1. Every integer there is
  exact as a double (what PostgreSQL casts jsonb numbers to, and what JavaScript keeps);
  beyond it jsonb gives an integral float back as an integer, which past 2**64 orjson
  cannot even write. Zero has one sign: jsonb has no -0, so -0.0 is taken as 0.0;
- nesting: at most `DEPTH_MAX` levels of objects and arrays.

The edge (serving's fields, the API's schemas and JSON parser) applies these checks, so a
value past them is refused with the field named, never recorded; the transcoder refuses
U+0000 and lone surrogates in any event, whatever path it came by.
"""

from __future__ import annotations

import math
import re
from typing import Any

from ledger.errors import InvalidCommand

SAFE_MAX = 2**53 - 1  # 9,007,199,254,740,991
TEXT_MAX = 1000  # characters of a string feature, a label or a free-form text, by default
ID_MAX = 200  # characters of a request id, an outcome id, a feed or a batch id
NOTE_MAX = 2000  # characters of a reason given for a change
DEPTH_MAX = 32  # levels of nested objects and arrays in a body
CATEGORY_MAX = 100_000  # the most a deployment's schema may allow a category (`max_length`)
DAYS_MAX = 36_500  # a span in days (a policy's window, an outcome's maturity): a century


class Unstorable(InvalidCommand):
    """A value the ledger cannot store and give back exactly (422)."""

    code = "unstorable"


ESCAPED_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")  # \u0000 not itself escaped


def refuse_escaped_nul(data: bytes) -> None:
    """Refuse JSON bytes holding U+0000 (a literal backslash followed by u0000 is fine)."""
    if ESCAPED_NUL.search(data):
        raise Unstorable("a text holds U+0000 (NUL), which the ledger cannot store: remove it")


def text_fault(text: str, max_length: int = TEXT_MAX) -> str | None:
    """Why `text` cannot be stored, or None."""
    if len(text) > max_length:
        return f"is {len(text)} characters long; the limit is {max_length}"
    if "\x00" in text:
        return "holds U+0000 (NUL), which the ledger cannot store: remove it"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "holds a lone surrogate, which is not UTF-8: send whole characters"
    return None


def require_text(text: str, field: str, max_length: int = TEXT_MAX) -> str:
    """`text` if it can be stored, else InvalidCommand naming `field`."""
    why = text_fault(text, max_length)
    if why is not None:
        raise Unstorable(f"{field} {why}", field=field)
    return text


def number_fault(number: int | float) -> str | None:
    """Why `number` (an int or a float, not a bool) cannot be stored, or None."""
    if type(number) is float and not math.isfinite(number):
        return "is not finite (NaN, Infinity, or past the range of a double)"
    if not -SAFE_MAX <= number <= SAFE_MAX:
        return f"is beyond ±{SAFE_MAX:,} (2^53 - 1), the range stored exactly"
    return None


def json_fault(
    value: Any, max_text: int = TEXT_MAX, depth_max: int = DEPTH_MAX
) -> tuple[str, str] | None:
    """(dotted path, why) of the first part of a JSON value that cannot be stored, or None.

    Keys are text too; the path is "" when `value` itself is at fault.
    """
    stack: list[tuple[str, Any, int]] = [("", value, 0)]
    while stack:
        path, item, depth = stack.pop()
        kind = type(item)
        fault: str | None = None
        if kind is str:
            fault = text_fault(item, max_text)
        elif kind is int or kind is float:
            fault = number_fault(item)
        elif kind is dict or kind is list:
            if depth >= depth_max:
                fault = f"is nested deeper than {depth_max} levels"
            elif kind is dict:
                for key, child in item.items():
                    key_fault = text_fault(key, max_text) if type(key) is str else "is no text"
                    if key_fault is not None:
                        return _joined(path, str(key)[:40]), f"(a key) {key_fault}"
                    stack.append((_joined(path, key), child, depth + 1))
            else:
                stack.extend((_joined(path, str(i)), c, depth + 1) for i, c in enumerate(item))
        elif item is not None and kind is not bool:
            fault = "is not a JSON value"
        if fault is not None:
            return path, fault
    return None


def _joined(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
