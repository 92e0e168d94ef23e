"""Decode JSON that cannot crash the reader: bounded nesting, bounded numbers, finite values.

Python's ``json`` recurses once per nesting level (100,000 ``[`` raise ``RecursionError``),
converts integers of any length (a 5,000-digit one raises ``ValueError``, and smaller ones
break the writer later) and accepts ``NaN`` and ``Infinity``, which are not JSON. Every
document a client or a file hands to isosched goes through :func:`decode_json` instead, which
refuses such input with an :class:`~isosched.errors.IsoschedError` naming the limit.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np

from isosched.errors import IsoschedError

__all__ = [
    "MAX_JSON_DEPTH",
    "MAX_NUMBER_DIGITS",
    "check_json_text",
    "decode_json",
    "no_json_constant",
]

#: Deepest nesting of arrays and objects accepted (graph files need 4, scenarios 3).
MAX_JSON_DEPTH = 64

#: Most digits in a row a number may have (an int64 has 19; floats print at most 17).
MAX_NUMBER_DIGITS = 32

_QUOTE = ord('"')
#: Bytes outside strings: digits become "0", everything else "."; then brackets "(" and ")".
_DIGITS = bytes(0x30 if 0x30 <= b <= 0x39 else 0x2E for b in range(256))
_PARENS = bytes.maketrans(b"[]{}", b"()()")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
#: A ``\\u`` escape of a UTF-16 surrogate pair (12 bytes), or of a lone surrogate (6 bytes).
_SURROGATE = re.compile(
    rb"\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|\\u[dD][89a-fA-F][0-9a-fA-F]{2}"
)


def check_json_text(
    text: str | bytes, what: str, error: type[IsoschedError] = IsoschedError
) -> None:
    r"""Refuse JSON text too deep, with overlong numbers, or with an unpaired surrogate.

    The limits: nesting :data:`MAX_JSON_DEPTH`, :data:`MAX_NUMBER_DIGITS` digits in a number.
    An unpaired surrogate escape (``"\ud800"``) is valid JSON, but no text can hold it, so it
    would fail later, when written out.

    Linear time at C speed on any input: escapes are dropped, string contents masked out by
    the parity of the quotes before each byte, and the innermost bracket pairs peeled once per
    level (brackets left open count as levels too). Other malformed text is left for the
    decoder to report.

    Raises
    ------
    IsoschedError
        Of class ``error``, naming the limit.
    """
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    # backslash pairs from the left, then escaped quotes: every quote left delimits a string
    raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    if b"\\ud" in raw or b"\\uD" in raw:
        for m in _SURROGATE.finditer(raw):
            if m.end() - m.start() == 6:
                lone = m.group().decode()
                raise error(f"{what} holds an unpaired UTF-16 surrogate escape ({lone})")
    arr = np.frombuffer(raw, dtype=np.uint8)
    outside = (np.cumsum(arr == _QUOTE, dtype=np.uint8) & 1) == 0
    bare = arr[outside].tobytes()
    if b"0" * (MAX_NUMBER_DIGITS + 1) in bare.translate(_DIGITS):
        raise error(f"{what} holds a number of more than {MAX_NUMBER_DIGITS} digits")
    brackets = bare.translate(_PARENS, _NOT_BRACKETS)
    for level in range(MAX_JSON_DEPTH):
        if not brackets:
            return
        shorter = brackets.replace(b"()", b"")
        if len(shorter) == len(brackets):
            # unbalanced, ")))(((" is left: a decoder still descends into every open bracket
            if level + brackets.count(b"(") <= MAX_JSON_DEPTH:
                return  # the decoder says where the text is malformed
            break
        brackets = shorter
    if brackets:
        raise error(f"{what} is nested deeper than {MAX_JSON_DEPTH} levels")


def no_json_constant(name: str) -> Any:
    """``parse_constant`` for :func:`json.loads`: ``NaN`` and ``Infinity`` are not JSON numbers."""
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is too large for a 64-bit float")
    return value


def decode_json(
    data: str | bytes, what: str = "document", error: type[IsoschedError] = IsoschedError
) -> Any:
    """Decode one JSON document within the limits of :func:`check_json_text`.

    ``NaN``, ``Infinity`` and numbers that overflow a float are refused too.

    Raises
    ------
    IsoschedError
        Of class ``error``: not UTF-8, not JSON, or over a limit; the message names ``what``.
    """
    if isinstance(data, bytes | bytearray):
        try:
            text = bytes(data).decode(json.detect_encoding(bytes(data)))
        except (UnicodeDecodeError, LookupError):
            raise error(f"{what} is not UTF-8 text") from None
    else:
        text = data
    check_json_text(text, what, error)
    try:
        return json.loads(text, parse_constant=no_json_constant, parse_float=_finite)
    except json.JSONDecodeError as exc:
        raise error(f"{what} is not valid JSON: {exc}") from None
    except RecursionError:  # unbalanced and deep: the pre-check leaves it to the decoder
        raise error(f"{what} is nested deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as exc:
        raise error(f"{what} is not valid JSON: {exc}") from None
