"""Word problems: everyday quantitative questions read as one calculator expression and the rule it applies.

Recognised: unit conversions ("convert 5 kg to pounds", "how many seconds are in 3 hours"), map scales
("1:50000, 8 cm"), speed, distance and time ("300 km in 2.5 hours, what is its speed"), which of two
offers is cheaper per unit, unit prices ("3 kg cost $7.50, price per kg"), rates over a time ("24 pages
per minute, in 15 minutes"), proportions ("250 g for 4 people, how much for 10 people") and inverse
proportions ("3 workers take 12 days, how long would 4 workers take"), chained percentages ("marked up
25% then discounted 20%"), simple interest, and the score needed for a target average. Each finder
returns a :class:`~podium.agents.text.quantities.Computation` whose ``why`` names the rule and whose
expression the calc server evaluates and shows step by step.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from podium.agents.text.computation import Computation
from podium.agents.text.units import NUMBER, UNIT_WORDS, Quantity, conversion, find_unit, quantities

__all__ = ["find_problem"]

_UNIT = rf"(?:{UNIT_WORDS})"
_ALONE = rf"(?<![\w.]){NUMBER}(?!\d|\.\d)"  # a number on its own (a full stop may follow)
_CONVERT = [
    re.compile(
        rf"(?:convert|change|turn|express)\s+({NUMBER})\s*({_UNIT})\s+(?:to|into|in)\s+({_UNIT})\b", re.I
    ),
    re.compile(
        rf"how\s+many\s+({_UNIT})\s+(?:is|are|in|make|makes|equals?|equal to)\s+(?:there\s+)?(?:in\s+)?({NUMBER})\s*({_UNIT})\b",
        re.I,
    ),
    re.compile(
        rf"({NUMBER})\s*({_UNIT})\s+(?:in|to|into|as|is how many|equals how many)\s+({_UNIT})\b", re.I
    ),
]
_MOTION = re.compile(
    r"\b(travel\w*|driv\w*|drove|cycl\w*|run\w*|ran|walk\w*|fl(?:y|ies|ew)|cover\w*|goes|go|went|sail\w*|"
    r"swim\w*|speed|fast|far|distance|journey|trip|ride|rode)\b",
    re.I,
)
_ASKS_SPEED = re.compile(r"\b(speed|how fast|velocity|pace)\b|km/h|mph|per hour", re.I)
_ASKS_DISTANCE = re.compile(r"\b(how far|distance|how many (?:km|kilomet\w+|miles?|met\w+))\b", re.I)
_ASKS_TIME = re.compile(r"\b(how long|how much time|how many (?:hours?|minutes?)|time)\b", re.I)
_SCALE = re.compile(r"\b1\s*:\s*(\d+)\b")
_CHEAPER = re.compile(
    r"\b(cheaper|better (?:value|deal|buy)|best (?:value|deal|buy)|lower unit price)\b", re.I
)
_OFFER = re.compile(rf"({NUMBER})\s*({_UNIT})\s+(?:for|at|costs?|is)\s+({NUMBER})", re.I)
_PER = re.compile(r"\b(?:per|each|a single|one|1|apiece|unit price|for one|for 1)\b", re.I)
_COST = re.compile(r"\b(costs?|price\w*|pay\w*|spend|spent|sells?|sold|charged?)\b", re.I)
# words that follow a number without being what it counts ("1000 at 5%", "3 of them")
_NOT_COUNTED = frozenset(
    "at for in of and or to per by from on is are was were times than each the a an".split()
)
_RATE = re.compile(rf"({NUMBER})\s+([a-z]+)\s+(?:per|an|a|each|every)\s+({_UNIT})\b", re.I)
_COUNTED = re.compile(rf"(?<![\w.])({NUMBER})\s*-?\s*([a-z]{{2,}})\b", re.I)
_AGENTS = re.compile(
    r"^(workers?|men|women|people|persons?|painters?|builders?|pumps?|machines?|taps?|pipes?|printers?|cooks?|"
    r"farmers?|robots?|trucks?|lorries|employees?|staff|cleaners?|typists?|teams?|horses?|cows?|labou?rers?)$",
    re.I,
)
_CHAIN_UP = re.compile(
    r"\b(mark(?:s|ed)?\s*up|markup|rais\w*|increas\w*|ris\w*|rose|up|more|higher|grow\w*|grew|add\w*|hike\w*|"
    r"inflat\w*|surcharge)\b",
    re.I,
)
_CHAIN_DOWN = re.compile(
    r"\b(discount\w*|off|decreas\w*|reduc\w*|cut\w*|fall\w*|fell|drop\w*|down|less|lower\w*|mark(?:s|ed)?\s*down|"
    r"markdown|sale|slash\w*|deduct\w*)\b",
    re.I,
)
_AGAIN = re.compile(r"\b(another|further|again|a second|additional)\b", re.I)
_PERCENT = re.compile(rf"({NUMBER})\s*%")
_TARGET_AVERAGE = re.compile(rf"\b(?:to average|an average of|average of|mean of)\s+({NUMBER})", re.I)
_SCORES = re.compile(rf"({NUMBER}(?:\s*(?:,\s*and|,|and|&)\s*{NUMBER})+)")
_TOTAL = re.compile(
    r"\b(total|altogether|in all|amount|final|how much will|will (?:i|we|you) have|balance|owe)\b", re.I
)


def _mk(operation: str, expr: str, label: str, unit: str, why: str, digits: int = 12) -> Computation:
    return Computation(
        operation, "evaluate", {"expression": expr}, label, unit=unit, why=why, digits=digits, word=True
    )


def _convert(norm: str, low: str) -> Computation | None:
    for index, pattern in enumerate(_CONVERT):
        match = pattern.search(norm)
        if not match:
            continue
        if index == 1:
            target, value, source = match.group(1), match.group(2), match.group(3)
        else:
            value, source, target = match.group(1), match.group(2), match.group(3)
        src, tgt = find_unit(source), find_unit(target)
        if src is None or tgt is None or src == tgt:
            continue
        found = conversion(value, src, tgt)
        if found is None:
            continue
        expr, rule = found
        return _mk(
            "conversion",
            expr,
            f"{value} {src.symbol if src.symbol != 'mile' else 'miles'} in {tgt.plural}",
            tgt.symbol,
            rule,
            8,
        )
    return None


_TO_HOURS = {"s": " / 3600", "min": " / 60", "h": "", "day": " * 24", "week": " * 168"}


def _in_hours(time: Quantity) -> str:
    return f"{time.value}{_TO_HOURS[time.unit.symbol]}"


def _speed(norm: str, low: str) -> Computation | None:
    found = quantities(norm)
    lengths = [q for q in found if q.unit.dimension == "length"]
    times = [q for q in found if q.unit.dimension == "time"]
    speeds = [q for q in found if q.unit.dimension == "speed"]
    if not (_MOTION.search(low) or speeds):
        return None
    if len(lengths) == 1 and len(times) == 1 and not speeds and _ASKS_SPEED.search(low):
        d, t = lengths[0], times[0]
        unit = {"km": "km/h", "mile": "mph", "m": "m/h"}.get(d.unit.symbol, f"{d.unit.symbol}/h")
        if d.unit.symbol == "m" and t.unit.symbol == "s":
            return _mk("speed", f"{d.value} / {t.value}", "the average speed", "m/s",
                       f"speed = distance ÷ time = {d} ÷ {t}")  # fmt: skip
        hours = _in_hours(t)
        expr = f"{d.value} / {hours}" if t.unit.symbol == "h" else f"{d.value} / ({hours})"
        return _mk("speed", expr, "the average speed", unit, f"speed = distance ÷ time = {d} ÷ {t}"
                   + ("" if t.unit.symbol == "h" else f" ({t} = {hours} h)"))  # fmt: skip
    if len(speeds) == 1 and len(times) == 1 and not lengths:
        s, t = speeds[0], times[0]
        unit = {"km/h": "km", "mph": "miles", "m/s": "m"}[s.unit.symbol]
        if s.unit.symbol == "m/s":
            seconds = t.value if t.unit.symbol == "s" else f"{t.value} * {t.unit.size}"
            return _mk(
                "distance",
                f"{s.value} * {seconds}",
                "the distance",
                unit,
                f"distance = speed × time = {s} × {t}",
            )
        hours = _in_hours(t)
        expr = f"{s.value} * {hours}" if t.unit.symbol == "h" else f"{s.value} * ({hours})"
        return _mk("distance", expr, "the distance", unit, f"distance = speed × time = {s} × {t}")
    if len(speeds) == 1 and len(lengths) == 1 and not times and _ASKS_TIME.search(low):
        s, d = speeds[0], lengths[0]
        per = {"km/h": "km", "mph": "mile", "m/s": "m"}[s.unit.symbol]
        if d.unit.symbol != per:
            return None
        unit = "s" if per == "m" else "hours"
        return _mk("time", f"{d.value} / {s.value}", "the time", unit, f"time = distance ÷ speed = {d} ÷ {s}")
    return None


def _scale(norm: str, low: str) -> Computation | None:
    scale = _SCALE.search(norm)
    if not scale or not re.search(r"\b(map|scale|plan|model|drawing)\b", low):
        return None
    lengths = [q for q in quantities(norm) if q.unit.dimension == "length"]
    if len(lengths) != 1:
        return None
    length = lengths[0]
    wanted = re.search(
        rf"(?:how many|in)\s+({_UNIT})\b", norm[length.span[1] :] + " " + norm[: length.span[0]], re.I
    )
    target = find_unit(wanted.group(1)) if wanted else None
    target = target if target is not None and target.dimension == "length" else length.unit
    real = f"{length.value} * {scale.group(1)}"
    expr, rule = conversion(f"({real})", length.unit, target) or (real, "")
    why = f"real distance = map distance × scale = {length} × {scale.group(1)}" + (
        f"; {rule}" if target != length.unit else ""
    )
    return _mk("scale", expr, "the real distance", target.plural, why)


def _cheaper(norm: str, low: str) -> Computation | None:
    if not _CHEAPER.search(low):
        return None
    offers = _OFFER.findall(norm)
    if len(offers) != 2:
        return None
    (q1, u1, p1), (q2, u2, p2) = offers
    a, b = find_unit(u1), find_unit(u2)
    if a is None or b is None or a != b:
        return None
    expr = f"{p1} / {q1} - {p2} / {q2}"
    label = f"{q1} {a.symbol} for {p1}|{q2} {b.symbol} for {p2}"
    return _mk("cheaper", expr, label, f"per {a.symbol}", "unit price = price ÷ quantity, for each offer")


def _unit_price(norm: str, low: str) -> Computation | None:
    if not (_PER.search(low) and _COST.search(low)):
        return None
    numbers = [m for m in re.finditer(_ALONE, norm)]
    if len(numbers) not in (2, 3):
        return None
    found = quantities(norm)
    counted = [
        m
        for m in _COUNTED.finditer(norm)
        if not find_unit(m.group(2)) and m.group(2).lower() not in _NOT_COUNTED
    ]
    if len(found) == 1 and len(numbers) >= 2:
        q = found[0]
        price = next((m.group() for m in numbers if not q.span[0] <= m.start() < q.span[1]), None)
        if price is None or not re.search(
            rf"per\s+{_UNIT}|per\s+{re.escape(q.unit.symbol)}|a\s+{_UNIT}", norm, re.I
        ):
            return None
        return _mk("unit_price", f"{price} / {q.value}", f"the price per {q.unit.symbol}", f"per {q.unit.symbol}",
                   f"price per {q.unit.symbol} = total price ÷ quantity = {price} ÷ {q}")  # fmt: skip
    if counted and len(numbers) >= 2:
        count = counted[0]
        price = next((m.group() for m in numbers if m.start() != count.start() and m.group() != "1"), None)
        if price is None or count.group(1) == "1":
            return None
        noun = count.group(2).lower()
        return _mk("unit_price", f"{price} / {count.group(1)}", "the price of one", "each",
                   f"price of one = total price ÷ count = {price} ÷ {count.group(1)} ({noun})")  # fmt: skip
    return None


def _rate_times(norm: str, low: str) -> Computation | None:
    rate = _RATE.search(norm)
    if not rate:
        return None
    per = find_unit(rate.group(3))
    times = [
        q for q in quantities(norm[rate.end() :]) if per is not None and q.unit.dimension == per.dimension
    ]
    if per is None or len(times) != 1:
        return None
    t = times[0]
    amount = t.value if t.unit == per else f"({conversion(t.value, t.unit, per)[0]})"  # type: ignore[index]
    what = rate.group(2)
    return _mk("rate", f"{rate.group(1)} * {amount}", f"the number of {what}", what,
               f"total = rate × time = {rate.group(1)} {what} per {per.symbol} × {t}")  # fmt: skip


def _proportion(norm: str, low: str) -> Computation | None:
    pairs = [
        (m.group(1), m.group(2).lower(), m.start())
        for m in _COUNTED.finditer(norm)
        if m.group(2).lower() not in _NOT_COUNTED
    ]
    by_noun: dict[str, list[tuple[str, int]]] = {}
    for value, noun, start in pairs:
        by_noun.setdefault(noun.rstrip("s"), []).append((value, start))
    repeated = [(noun, seen) for noun, seen in by_noun.items() if len(seen) == 2 and seen[0][0] != seen[1][0]]
    if len(repeated) != 1:
        return None
    noun, ((n1, s1), (n2, s2)) = repeated[0]
    others = [m for m in re.finditer(_ALONE, norm) if m.start() not in (s1, s2)]
    if len(others) != 1:
        return None
    given = others[0]
    quantity = next((q for q in quantities(norm) if q.span[0] == given.start()), None)
    unit = quantity.unit.plural if quantity else ""
    q = given.group()
    count_noun = next(n for v, n, st in pairs if st == s1)
    inverse = bool(_AGENTS.match(count_noun)) and quantity is not None and quantity.unit.dimension == "time"
    if inverse:
        return _mk("inverse", f"{q} * {n1} / {n2}", f"the time for {n2} {count_noun}", unit,
                   f"inverse proportion: the work is {n1} × {q} {unit} = {n1} {count_noun} × {q} {unit}; "
                   f"shared by {n2} it takes {q} × {n1} ÷ {n2}")  # fmt: skip
    return _mk("proportion", f"{q} / {n1} * {n2}", f"the amount for {n2} {count_noun}", unit,
               f"direct proportion: {q}{' ' + unit if unit else ''} for {n1} is {q} ÷ {n1} for one, × {n2}")  # fmt: skip


def _chained(norm: str, low: str) -> Computation | None:
    percents = list(_PERCENT.finditer(norm))
    if len(percents) < 2:
        return None
    spans = [m.span() for m in percents]
    amounts = [
        m
        for m in re.finditer(rf"(?<![\w.]){NUMBER}(?![\d.]*\s*%)(?!\d|\.\d)", norm)
        if not any(a <= m.start() < b for a, b in spans)
    ]
    if len(amounts) != 1:
        return None
    expr, words, previous, start = amounts[0].group(), [], "", amounts[0].end()
    for i, match in enumerate(percents):
        end = percents[i + 1].start() if i + 1 < len(percents) else len(norm)
        before, after = norm[0 if i == 0 else start : match.start()], norm[match.end() : end]
        sign = _direction(before, after) or (previous if _AGAIN.search(before) or previous else "")
        if not sign:
            return None
        expr += f" {sign} {match.group(1)}%"
        words.append(f"{'+' if sign == '+' else '−'}{match.group(1)}%")
        previous, start = sign, match.end()
    return _mk("chained", expr, "the final amount", "",
               f"each percentage applies to the amount after the one before: {amounts[0].group()} then {', then '.join(words)}")  # fmt: skip


def _direction(before: str, after: str) -> str:
    """``-`` or ``+``: the word right after the percentage ("20% off"), else the last such word before it."""
    near = re.match(r"\s*(\w+)", after)
    if near and _CHAIN_DOWN.fullmatch(near.group(1)):
        return "-"
    if near and _CHAIN_UP.fullmatch(near.group(1)):
        return "+"
    downs, ups = list(_CHAIN_DOWN.finditer(before)), list(_CHAIN_UP.finditer(before))
    last_down = downs[-1].start() if downs else -1
    last_up = ups[-1].start() if ups else -1
    if last_down == last_up == -1:
        return ""
    return "-" if last_down > last_up else "+"


def _simple_interest(norm: str, low: str) -> Computation | None:
    if "simple interest" not in low and not re.search(
        r"\binterest\b.*\bsimple\b|\bsimple\b.*\binterest\b", low
    ):
        return None
    rate = re.search(rf"({NUMBER})\s*%", norm)
    years = re.search(rf"({NUMBER})\s*(?:-\s*)?(years?|yrs?|months?)\b", norm)
    if not (rate and years):
        return None
    spans = (rate.span(), years.span())
    principal = next(
        (m.group() for m in re.finditer(_ALONE, norm) if not any(a <= m.start() < b for a, b in spans)),
        None,
    )
    if principal is None:
        return None
    t = years.group(1) if not years.group(2).lower().startswith("month") else f"{years.group(1)} / 12"
    interest = f"{principal} * {rate.group(1)}% * {t}"
    rule = f"simple interest = principal × rate × years = {principal} × {rate.group(1)}% × {years.group(1)} {years.group(2)}"
    if _TOTAL.search(low.replace("simple interest", "")):
        return _mk("simple_total", f"{principal} + {interest}", "the total after simple interest", "",
                   f"total = principal + {rule.removeprefix('simple interest = ')}")  # fmt: skip
    return _mk("simple_interest", interest, "the simple interest", "", rule)


def _needed_score(norm: str, low: str) -> Computation | None:
    target = _TARGET_AVERAGE.search(norm)
    scores = _SCORES.search(norm[: target.start()] if target else "")
    if not target or not scores or not re.search(r"\b(need|must|has to|have to|what score|next)\b", low):
        return None
    values = re.findall(NUMBER, scores.group(1))
    n = len(values) + 1
    expr = f"{target.group(1)} * {n} - ({' + '.join(values)})"
    return _mk("needed", expr, "the score needed", "",
               f"needed = target average × {n} scores − the sum of the {n - 1} so far")  # fmt: skip


FINDERS: tuple[Callable[[str, str], Computation | None], ...] = (
    _simple_interest,
    _scale,
    _convert,
    _speed,
    _cheaper,
    _needed_score,
    _rate_times,
    _chained,
    _unit_price,
    _proportion,
)


def find_problem(norm: str, low: str) -> Computation | None:
    """The word problem ``norm`` (normalised text; ``low`` lower-cased) poses, or ``None``."""
    for finder in FINDERS:
        found = finder(norm, low)
        if found is not None:
            return found
    return None
