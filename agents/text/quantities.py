"""Finding the computation in a task written in words: which calc tool to call, with which arguments.

Recognised, most specific first: a loan payment ("monthly payment on a 200,000 loan at 6% over 30
years"), compound growth ("1000 at 5% for 10 years, compounded monthly"), statistics ("mean and
median of 3, 5, 8", "average of 3, 5 and 10"), percentage change ("from 80 to 100"), what percentage
one number is of another ("what percentage of 200 is 50"), a ratio ("the ratio of 3 to 4"), a
percentage applied to an amount in everyday words (a price after a discount: "a $1200 laptop is 15%
off"; after a rise: "rent of 1500 goes up by 3%"; tax or a tip, as the amount or the total: "8% tax on
$45", "the total with a 20% tip on 60"), a percentage of a number ("15% of 240") and plain arithmetic
("(17.5 + 4) * 3", "12 times 7"). Numbers may be written as words ("fifteen percent of two hundred").
Anything else is not a computation.
"""

from __future__ import annotations

import re

from podium.agents.text.computation import Computation
from podium.agents.text.numwords import words_to_numbers
from podium.agents.text.problems import find_problem

NUMBER = r"-?\d+(?:\.\d+)?"
_SCALE = {"k": 1e3, "thousand": 1e3, "m": 1e6, "mn": 1e6, "million": 1e6, "bn": 1e9, "billion": 1e9}
_SCALED = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s?(k|thousand|mn|million|bn|billion|m)\b", re.I)
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_WORD_OPS = [
    (r"(?<=\d)\s*(?:percent|per cent|pct)\b", "%"),
    (r"\bmultiplied by\b", "*"),
    (r"\btimes\b", "*"),
    (r"\bdivided by\b", "/"),
    (r"\bplus\b", "+"),
    (r"\bminus\b", "-"),
    (r"\bto the power of\b", "**"),
    (r"\bsquared\b", "**2"),
    (r"\bcubed\b", "**3"),
    (rf"\bsquare root of\s+({NUMBER})", r"sqrt(\1)"),
    (r"\bsquare root of\b", "sqrt"),
    (r"[×x](?=\s*\d)", "*"),
    (r"÷", "/"),
]
_FUNCS = "sqrt|round|abs|floor|ceil|log10|log|ln|exp|min|max"
_EXPR = re.compile(
    rf"(?:(?:{_FUNCS})\s*\(|[(\s])*{NUMBER}%?(?:[\s()]*(?:\*\*|//|[-+*/^%])[\s(]*(?:(?:{_FUNCS})\s*\()*\s*{NUMBER}%?\)*)+"
)
_STATS = {
    "mean": re.compile(r"\b(mean|average|avg)\b", re.I),
    "median": re.compile(r"\bmedian\b", re.I),
    "stdev": re.compile(r"\b(standard deviation|std\.? ?dev|stdev|sd)\b", re.I),
    "min": re.compile(r"\b(min|minimum|smallest|lowest)\b", re.I),
    "max": re.compile(r"\b(max|maximum|largest|highest)\b", re.I),
    "range": re.compile(r"\brange\b", re.I),
    "mode": re.compile(r"\b(mode|most (?:common|frequent))\b", re.I),
}
_PERCENT_OF = re.compile(rf"({NUMBER})\s*(?:%|percent|per cent)\s+of\s+({NUMBER})", re.I)
_CHANGE = re.compile(
    rf"(?:change|increase|decrease|growth|rise|fall|drop|grew|went)\b.*?from\s+({NUMBER})\s+to\s+({NUMBER})",
    re.I,
)
_WHAT_PERCENT = re.compile(
    rf"({NUMBER})\s+(?:is\s+)?(?:as\s+a\s+)?(?:what\s+)?(?:percent|percentage|%)\s+of\s+({NUMBER})", re.I
)
# "what percentage of 200 is 50" (part second), "what percent is 50 of 200", "50 out of 200 as a percentage"
_WHAT_PERCENT_OF = re.compile(
    rf"what\s+(?:percent|percentage|%|share|proportion)\s+of\s+({NUMBER})\s+(?:is|are|would be|makes up)\s+({NUMBER})",
    re.I,
)
_WHAT_PERCENT_IS = re.compile(
    rf"what\s+(?:percent|percentage|%)\s+(?:is|are)\s+({NUMBER})\s+(?:of|out of)\s+({NUMBER})", re.I
)
_OUT_OF = re.compile(rf"({NUMBER})\s+out\s+of\s+({NUMBER})", re.I)
_RATIO = re.compile(
    rf"ratio\s+(?:of|between)\s+({NUMBER})\s+(?:to|and|:)\s+({NUMBER})|({NUMBER})\s*(?::|\bto\b)\s*({NUMBER})\s+ratio",
    re.I,
)
_PERCENT = re.compile(rf"({NUMBER})\s*%")
_AMOUNT = re.compile(rf"(?<![\w.]){NUMBER}(?![\d.]*\s*%)(?!\w|\.\d)")
# A percentage applied to an amount, by what the words say it is.
_APPLIED: list[tuple[str, re.Pattern[str]]] = [
    ("tax", re.compile(r"\b(tax|taxes|vat|gst|hst|duty)\b", re.I)),
    ("tip", re.compile(r"\b(tip|tips|gratuity|service charge)\b", re.I)),
    (
        "discount",
        re.compile(
            r"%\s*(off|less|cheaper|lower|down)\b|\b(discount\w*|sale|reduc\w*|mark(ed)?\s*down|markdown|"
            r"cut|cuts|decreas\w*|drops?|dropped|falls?|fell|lowered|slashed|coupon)\b",
            re.I,
        ),
    ),
    (
        "increase",
        re.compile(
            r"%\s*(more|higher|extra|up)\b|\b(increas\w*|rises?|rose|risen|raises?|raised|hike\w*|mark(ed)?\s*up|"
            r"markup|goes up|go up|went up|gone up|grows?|grew|inflation|surcharge)\b",
            re.I,
        ),
    ),
]
# The share itself, rather than the amount after it: "how much do I save", "how much is the tip".
_JUST_THE_SHARE = {
    "discount": re.compile(
        r"\b(save|saving|savings|how much (is|of) the discount|discount amount|how much off)\b", re.I
    ),
    "increase": re.compile(
        r"\b(how much (is|of) the (increase|rise|raise|hike)|by how much|increase amount)\b", re.I
    ),
}
# ... and the total, rather than the share, for tax and tips.
_TOTAL = re.compile(
    r"\b(total|totals|altogether|in all|all in|overall|including|included|incl|with (the )?(tax|tip|vat)|after (the )?"
    r"(tax|tip|vat)|plus (the )?(tax|tip|vat)|what do (i|we|you) pay|how much do (i|we|you) pay|comes? to|final)\b",
    re.I,
)
_RATE = re.compile(rf"({NUMBER})\s*(?:%|percent|per cent)", re.I)
_YEARS = re.compile(rf"({NUMBER})\s*(?:-\s*)?(years?|yrs?|months?)\b", re.I)
_PERIODS = {
    "monthly": 12,
    "quarterly": 4,
    "weekly": 52,
    "daily": 365,
    "annually": 1,
    "yearly": 1,
    "annual": 1,
}


def normalise(text: str) -> str:
    """Numbers as the calculator reads them: ``$2,340`` -> ``2340``, ``200k`` -> ``200000``; word
    operators (``times``, ``divided by``) as symbols."""
    out = words_to_numbers(text.replace("\u2212", "-"))
    out = re.sub(r"[$€£](?=\s?\d)", "", out)
    out = _THOUSANDS.sub("", out)
    out = _SCALED.sub(lambda m: _fmt(float(m.group(1)) * _SCALE[m.group(2).lower()]), out)
    for pattern, symbol in _WORD_OPS:
        out = re.sub(pattern, symbol, out, flags=re.I)
    return out


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def _num(raw: str) -> float:
    return float(raw)


def find(text: str) -> Computation | None:
    """The computation ``text`` asks for, or ``None`` when it asks for none."""
    norm = normalise(text)
    low = norm.lower()
    finders = (
        _loan,
        find_problem,
        _growth,
        _statistics,
        _change,
        _what_percent,
        _ratio,
        _applied,
        _percent_of,
        _arithmetic,
    )
    for finder in finders:
        found = finder(norm, low)
        if found is not None:
            return found
    return None


def leftover(text: str, computation: Computation) -> str:
    """``text`` (normalised) without the computation's span: what else the task talks about."""
    norm = normalise(text)
    start, end = computation.span
    return norm[:start] + " " + norm[end:]


def _loan(norm: str, low: str) -> Computation | None:
    if not re.search(r"\b(loan|mortgage|borrow\w*|amortis\w*|amortiz\w*)\b", low):
        return None
    rate, years = _RATE.search(norm), _YEARS.search(norm)
    amounts = [
        m for m in re.finditer(rf"(?<![\w.%]){NUMBER}(?![\d.]*\s*(?:%|percent|years?|yrs?|months?))", norm)
    ]
    if not (rate and years and amounts):
        return None
    principal = max(_num(m.group()) for m in amounts)
    n_years = _num(years.group(1)) / (12 if years.group(2).lower().startswith("month") else 1)
    per_year = 12
    for word, count in _PERIODS.items():
        if re.search(rf"\b{word}\b", low) and word not in ("annual",):
            per_year = count
            break
    args = {
        "principal": principal,
        "annual_rate_percent": _num(rate.group(1)),
        "years": n_years,
        "periods_per_year": per_year,
    }
    label = f"payment on a {_fmt(principal)} loan at {rate.group(1)}% over {years_text(n_years)}"
    return Computation("loan", "loan_payment", args, label, (0, len(norm)))


def _growth(norm: str, low: str) -> Computation | None:
    if not re.search(
        r"\b(compound\w*|grow\w*|invest\w*|interest|deposit\w*|future value|accumulat\w*)\b", low
    ):
        return None
    rate, years = _RATE.search(norm), _YEARS.search(norm)
    if not (rate and years):
        return None
    spans = (rate.span(), years.span())
    amounts = [
        m
        for m in re.finditer(rf"(?<![\w.]){NUMBER}(?![\d.])", norm)
        if not any(a <= m.start() < b for a, b in spans)
    ]
    if not amounts:
        return None
    principal = _num(amounts[0].group())
    n_years = _num(years.group(1)) / (12 if years.group(2).lower().startswith("month") else 1)
    per_year = 1
    compounded = re.search(r"compounded\s+(\w+)|(\w+)\s+compounding", low)
    if compounded:
        per_year = _PERIODS.get(compounded.group(1) or compounded.group(2), 1)
    args = {
        "principal": principal,
        "rate_percent": _num(rate.group(1)),
        "years": n_years,
        "periods_per_year": per_year,
    }
    label = f"compound growth of {_fmt(principal)} at {rate.group(1)}% for {years_text(n_years)}"
    return Computation("growth", "compound_growth", args, label, (0, len(norm)))


def _statistics(norm: str, low: str) -> Computation | None:
    wanted = [name for name, pattern in _STATS.items() if pattern.search(low)]
    if not wanted:
        return None
    found = re.search(rf"(?:of|for|:)\s*\[?\s*({NUMBER}(?:\s*(?:,\s*and|,|;|and|&|\s)\s*{NUMBER})+)", norm)
    # or a list written anywhere ("my scores were 82, 90 and 77"): three or more numbers
    found = found or re.search(rf"(?<![\w.])({NUMBER}(?:\s*(?:,\s*and|,|;|and|&)\s*{NUMBER}){{2,}})", norm)
    if not found:
        return None
    values = [_num(v) for v in re.findall(NUMBER, found.group(1))]
    if len(values) < 2:
        return None
    label = f"{', '.join(wanted)} of {', '.join(_fmt(v) for v in values)}"
    return Computation("statistics", "statistics", {"values": values}, label, (0, found.end()), wanted)


def _change(norm: str, low: str) -> Computation | None:
    found = _CHANGE.search(norm)
    if not found or not re.search(r"percent|%|percentage|rate", low):
        return None
    a, b = found.group(1), found.group(2)
    expr = f"({b} - {a}) / {a} * 100"
    return Computation(
        "percent_change", "evaluate", {"expression": expr}, f"percentage change from {a} to {b}", found.span()
    )


def _what_percent(norm: str, low: str) -> Computation | None:
    found = _WHAT_PERCENT_OF.search(norm)
    if found:  # "what percentage of B is A"
        a, b = found.group(2), found.group(1)
    else:
        found = _WHAT_PERCENT_IS.search(norm) or _WHAT_PERCENT.search(norm)
        if not found or "what" not in low:
            found = _OUT_OF.search(norm)
            if not found or not re.search(r"percent|percentage|%", low):
                return None
        a, b = found.group(1), found.group(2)
    return Computation(
        "what_percent",
        "evaluate",
        {"expression": f"{a} / {b} * 100"},
        f"{a} as a percentage of {b}",
        found.span(),
    )


def _ratio(norm: str, low: str) -> Computation | None:
    found = _RATIO.search(norm)
    if not found:
        return None
    a, b = (found.group(1), found.group(2)) if found.group(1) else (found.group(3), found.group(4))
    return Computation(
        "ratio", "evaluate", {"expression": f"{a} / {b}"}, f"ratio of {a} to {b}", found.span()
    )


def _applied(norm: str, low: str) -> Computation | None:
    """One percentage applied to one amount: a discount, a rise, tax or a tip (the share or the result)."""
    percents = _PERCENT.findall(norm)
    kind = next((name for name, pattern in _APPLIED if pattern.search(norm)), None)
    if kind is None or len(set(percents)) != 1:
        return None
    amounts = list(dict.fromkeys(m.group() for m in _AMOUNT.finditer(norm)))
    if len(amounts) != 1:  # none, or several and no telling which the percentage applies to
        return None
    p, amount = percents[0], amounts[0]
    if kind in ("tax", "tip"):
        if _TOTAL.search(low):
            return Computation("increase", "evaluate", {"expression": f"{amount} + {p}%"},
                               f"{amount} plus {p}% {kind}", everyday=True)  # fmt: skip
        return Computation("percentage", "evaluate", {"expression": f"{p}% * {amount}"},
                           f"{p}% {kind} on {amount}", everyday=True)  # fmt: skip
    if _JUST_THE_SHARE[kind].search(low):
        what = "saving" if kind == "discount" else "increase"
        return Computation("percentage", "evaluate", {"expression": f"{p}% * {amount}"},
                           f"the {what} of {p}% on {amount}", everyday=True)  # fmt: skip
    sign, word = ("-", "less") if kind == "discount" else ("+", "plus")
    return Computation(kind, "evaluate", {"expression": f"{amount} {sign} {p}%"},
                       f"{amount} {word} {p}%", everyday=True)  # fmt: skip


def years_text(years: float) -> str:
    """``1 year``, ``2.5 years``: a count of years in words that agree."""
    return f"{_fmt(years)} year{'' if years == 1 else 's'}"


def _percent_of(norm: str, low: str) -> Computation | None:
    found = _PERCENT_OF.search(norm)
    if not found:
        return None
    p, of = found.group(1), found.group(2)
    return Computation(
        "percentage", "evaluate", {"expression": f"{p}% * {of}"}, f"{p}% of {of}", found.span()
    )


def _arithmetic(norm: str, low: str) -> Computation | None:
    best = None
    for match in _EXPR.finditer(norm):
        expr = match.group().strip()
        if best is None or len(expr) > len(best.group().strip()):
            best = match
    if best is None:
        call = re.search(rf"\b(?:{_FUNCS})\s*\(\s*{NUMBER}\s*(?:,\s*{NUMBER}\s*)?\)", norm)
        if call is None:  # a lone function of a number ("the square root of 2") is arithmetic too
            return None
        return Computation("arithmetic", "evaluate", {"expression": call.group()}, call.group(), call.span())
    expr = _balance(best.group().strip())
    if not re.search(r"\d\s*\)*\s*(\*\*|//|[-+*/^%])\s*[(\w]", expr):
        return None
    expr = expr.replace("^", "**")
    return Computation("arithmetic", "evaluate", {"expression": expr}, expr, best.span())


def _balance(expr: str) -> str:
    """Drop unmatched parentheses the pattern picked up from the surrounding prose."""
    while expr.count("(") > expr.count(")") and expr.startswith("("):
        expr = expr[1:].strip()
    while expr.count(")") > expr.count("(") and expr.endswith(")"):
        expr = expr[:-1].strip()
    return expr
