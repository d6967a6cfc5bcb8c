"""Numbers written as words, as digits: ``two hundred and fifty`` -> ``250``, ``twenty-five`` -> ``25``,
``three point five`` -> ``3.5``, ``a thousand`` -> ``1000``.

Only whole runs of number words are replaced, and a run ends where English would start a new number, so a
list stays a list (``three, five and ten`` -> ``3, 5 and 10``; ``and`` joins only after a hundred, thousand,
... as in ``two hundred and five``). Ordinals and fractions are left alone.
"""

from __future__ import annotations

import re

UNITS = {
    word: value
    for value, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen".split()
    )
}
TENS = {
    word: 10 * i for i, word in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split(), 2)
}
SCALES = {"thousand": 10**3, "million": 10**6, "billion": 10**9}
_NUMBERISH = "|".join([*UNITS, *TENS, "hundred", *SCALES])
_HAS_WORD = re.compile(rf"\b({_NUMBERISH})\b", re.I)
_TOKEN = re.compile(r"([A-Za-z]+(?:-[A-Za-z]+)*)|(\s+)|([^A-Za-z\s]+)")


def words_to_numbers(text: str) -> str:
    """``text`` with every run of English number words replaced by its value in digits."""
    if not _HAS_WORD.search(text):
        return text
    tokens = [m.group() for m in _TOKEN.finditer(text)]
    out: list[str] = []
    i = 0
    while i < len(tokens):
        value, used = _parse(tokens, i) if not tokens[i].isspace() else ("", 0)
        if used:
            out.append(value)
            i += used
        else:
            out.append(tokens[i])
            i += 1
    return "".join(out)


def _kind(word: str) -> str | None:
    w = word.lower()
    if w in UNITS:
        return "unit"
    if w in TENS:
        return "tens"
    if "-" in w:
        first, _, second = w.partition("-")
        if first in TENS and second in UNITS and 0 < UNITS[second] < 10:
            return "tens-unit"
        return None
    if w == "hundred":
        return "hundred"
    if w in SCALES:
        return "scale"
    return None


def _value(word: str) -> int:
    w = word.lower()
    if "-" in w:
        first, _, second = w.partition("-")
        return TENS[first] + UNITS[second]
    return UNITS.get(w) or TENS.get(w) or 0


def _parse(tokens: list[str], start: int) -> tuple[str, int]:
    """The number starting at ``tokens[start]`` and how many tokens it spans (0: no number there)."""
    total = current = last_scale = 0
    last: str | None = None  # kind of the last number word taken
    end = start  # one past the last token that belongs to the number
    i = start
    seen = False
    while i < len(tokens):
        token = tokens[i]
        if token.isspace():
            i += 1
            continue
        low = token.lower()
        kind = _kind(token)
        if kind is None and low == "a" and not seen:
            nxt = _next_word(tokens, i)
            if nxt is not None and _kind(tokens[nxt]) in ("hundred", "scale"):
                current, last, seen, i, end = 1, "unit", True, nxt, nxt
                continue
            break
        if kind is None and low == "and" and last in ("hundred", "scale"):
            nxt = _next_word(tokens, i)
            if nxt is not None and _kind(tokens[nxt]) in ("unit", "tens", "tens-unit"):
                i = nxt
                continue
            break
        if (
            kind is None
            and low == "point"
            and seen
            and last in ("unit", "tens", "tens-unit", "hundred", "scale")
        ):
            digits, j = _decimals(tokens, i + 1)
            if digits:
                return f"{total + current}.{digits}", j - start
            break
        if kind is None:
            break
        if kind == "unit":
            if last in ("unit", "tens-unit") or (last == "tens" and _value(token) >= 10):
                break
            current += _value(token)
        elif kind == "tens":
            if last in ("unit", "tens", "tens-unit"):
                break
            current += _value(token)
        elif kind == "tens-unit":
            if last in ("unit", "tens", "tens-unit"):
                break
            current += _value(token)
        elif kind == "hundred":
            if last not in ("unit", "tens", "tens-unit") or current >= 100:
                break
            current *= 100
        else:  # thousand, million, billion: after a number, and each smaller than the one before
            scale = SCALES[low]
            if last not in ("unit", "tens", "tens-unit", "hundred") or (last_scale and scale >= last_scale):
                break
            total += current * scale
            current, last_scale = 0, scale
        last, seen = kind, True
        i += 1
        end = i
    if not seen:
        return "", 0
    return str(total + current), end - start


def _next_word(tokens: list[str], i: int) -> int | None:
    j = i + 1
    while j < len(tokens) and tokens[j].isspace():
        j += 1
    return j if j < len(tokens) and tokens[j][:1].isalpha() else None


def _decimals(tokens: list[str], i: int) -> tuple[str, int]:
    """Digits spoken one by one after "point" (``point two five`` -> ``25``), and where they end."""
    digits = ""
    end = i
    while i < len(tokens):
        if tokens[i].isspace():
            i += 1
            continue
        if tokens[i].lower() in UNITS and UNITS[tokens[i].lower()] < 10:
            digits += str(UNITS[tokens[i].lower()])
            i += 1
            end = i
            continue
        break
    return digits, end
