"""Units of measure in everyday words, and the quantities (a number and its unit) a task mentions.

Each unit belongs to a dimension (length, mass, volume, time, temperature, speed) and has its size in
the dimension's base unit as an exact decimal (a mile is 1609.344 m, a pound 0.45359237 kg), so a
conversion is one exact multiplication or division the calculator shows. Temperatures convert by formula.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

__all__ = ["NUMBER", "UNITS", "UNIT_WORDS", "Quantity", "Unit", "conversion", "find_unit", "quantities"]


@dataclass(frozen=True, slots=True)
class Unit:
    symbol: str  # how the answer writes it: km, kg, h
    dimension: str  # length, mass, volume, time, temperature, speed
    size: Decimal  # in the dimension's base unit (m, kg, l, s, -, m/h for speeds)
    plural: str


def _u(symbol: str, dimension: str, size: str, plural: str = "") -> Unit:
    return Unit(symbol, dimension, Decimal(size), plural or symbol)


# unit -> the words that name it (singular and plural, abbreviations), most specific first
_TABLE: list[tuple[Unit, str]] = [
    (
        _u("km/h", "speed", "1000", "km/h"),
        r"km\s*/\s*h|kph|kmh|km\s*/\s*hr|kilomet(?:re|er)s?\s+(?:per|an|a)\s+hour",
    ),
    (_u("mph", "speed", "1609.344", "mph"), r"mph|miles?\s+(?:per|an|a)\s+hour"),
    (_u("m/s", "speed", "3600", "m/s"), r"m\s*/\s*s|met(?:re|er)s?\s+(?:per|a)\s+second"),
    (_u("km", "length", "1000"), r"km|kms|kilomet(?:re|er)s?"),
    (_u("cm", "length", "0.01"), r"cm|centimet(?:re|er)s?"),
    (_u("mm", "length", "0.001"), r"mm|millimet(?:re|er)s?"),
    (_u("mile", "length", "1609.344", "miles"), r"miles?|mi"),
    (_u("yard", "length", "0.9144", "yards"), r"yards?|yds?"),
    (_u("foot", "length", "0.3048", "feet"), r"feet|foot|ft"),
    (_u("inch", "length", "0.0254", "inches"), r"inch(?:es)?|in\.(?=\s)"),
    (_u("m", "length", "1"), r"m|met(?:re|er)s?"),
    (_u("kg", "mass", "1"), r"kg|kgs|kilo(?:gram(?:me)?)?s?"),
    (_u("mg", "mass", "0.000001"), r"mg|milligram(?:me)?s?"),
    (_u("g", "mass", "0.001"), r"g|grams?|grammes?"),
    (_u("lb", "mass", "0.45359237", "lb"), r"lbs?|pounds?(?!\s*sterling)"),
    (_u("oz", "mass", "0.028349523125", "oz"), r"oz|ounces?"),
    (_u("tonne", "mass", "1000", "tonnes"), r"tonnes?|metric tons?"),
    (_u("ml", "volume", "0.001"), r"ml|millilit(?:re|er)s?"),
    (_u("l", "volume", "1"), r"l|lit(?:re|er)s?"),
    (_u("gallon", "volume", "3.785411784", "gallons"), r"gallons?|gal"),
    (_u("pint", "volume", "0.473176473", "pints"), r"pints?"),
    (_u("cup", "volume", "0.2365882365", "cups"), r"cups?"),
    (_u("s", "time", "1", "seconds"), r"s|secs?|seconds?"),
    (_u("min", "time", "60", "minutes"), r"mins?|minutes?"),
    (_u("h", "time", "3600", "hours"), r"h|hrs?|hours?"),
    (_u("day", "time", "86400", "days"), r"days?"),
    (_u("week", "time", "604800", "weeks"), r"weeks?|wks?"),
    (_u("°C", "temperature", "1", "°C"), r"°\s*c|degrees?\s+c(?:elsius)?|celsius|centigrade|c(?=\s|$|[?.,])"),
    (_u("°F", "temperature", "1", "°F"), r"°\s*f|degrees?\s+f(?:ahrenheit)?|fahrenheit|f(?=\s|$|[?.,])"),
    (_u("K", "temperature", "1", "K"), r"kelvins?|k(?=\s|$|[?.,])"),
]
UNITS: dict[str, Unit] = {unit.symbol: unit for unit, _ in _TABLE}
_NAMES = [(unit, re.compile(rf"(?:{words})", re.I)) for unit, words in _TABLE]
UNIT_WORDS = _ALL = "|".join(f"(?:{words})" for _, words in _TABLE)
NUMBER = r"-?\d+(?:\.\d+)?"
# a number and the unit right after it: "300 km", "2.5 hours", "-40 °F", "250g"
_QUANTITY = re.compile(rf"(?<![\w.])({NUMBER})\s*(?:-\s*)?({_ALL})(?![\w/])", re.I)


@dataclass(frozen=True, slots=True)
class Quantity:
    value: str  # as written (digits), so the calculator sees the number the user wrote
    unit: Unit
    span: tuple[int, int]

    def __str__(self) -> str:
        return f"{self.value} {self.unit.symbol}"


def find_unit(word: str) -> Unit | None:
    """The unit ``word`` names (``kilometres`` -> km, ``lb`` -> lb), or ``None``."""
    word = word.strip()
    for unit, pattern in _NAMES:
        if pattern.fullmatch(word):
            return unit
    return None


def quantities(text: str) -> list[Quantity]:
    """Every number-with-a-unit in ``text``, in order (``300 km in 2.5 hours`` -> 300 km, 2.5 h)."""
    found = []
    for match in _QUANTITY.finditer(text):
        unit = find_unit(match.group(2))
        if unit is None:
            continue
        found.append(Quantity(match.group(1), unit, match.span()))
    return found


def conversion(value: str, source: Unit, target: Unit) -> tuple[str, str] | None:
    """The calculator expression converting ``value`` ``source`` units into ``target`` units, and the rule
    in words; ``None`` when the two measure different things."""
    if source.dimension != target.dimension:
        return None
    if source.dimension == "temperature":
        return _temperature(value, source.symbol, target.symbol)
    ratio, inverse = _short(source.size, target.size), _short(target.size, source.size)
    if ratio is not None and (inverse is None or ratio >= 1):
        return f"{value} * {_plain(ratio)}", f"1 {source.symbol} = {_plain(ratio)} {target.plural}"
    if inverse is not None:
        return f"{value} / {_plain(inverse)}", f"1 {target.symbol} = {_plain(inverse)} {source.plural}"
    expr = f"{value} * {_plain(source.size)} / {_plain(target.size)}"
    return expr, f"1 {source.symbol} = {_plain(source.size / target.size)} {target.plural}"


def _short(a: Decimal, b: Decimal) -> Decimal | None:
    """``a / b`` when it is an exact decimal of at most 12 significant digits, else ``None``."""
    ratio = (a / b).normalize()
    return ratio if ratio * b == a and len(ratio.as_tuple().digits) <= 12 else None


_TEMPERATURE = {
    ("°F", "°C"): ("({v} - 32) * 5 / 9", "°C = (°F - 32) × 5/9"),
    ("°C", "°F"): ("{v} * 9 / 5 + 32", "°F = °C × 9/5 + 32"),
    ("°C", "K"): ("{v} + 273.15", "K = °C + 273.15"),
    ("K", "°C"): ("{v} - 273.15", "°C = K - 273.15"),
    ("°F", "K"): ("({v} - 32) * 5 / 9 + 273.15", "K = (°F - 32) × 5/9 + 273.15"),
    ("K", "°F"): ("({v} - 273.15) * 9 / 5 + 32", "°F = (K - 273.15) × 9/5 + 32"),
}


def _temperature(value: str, source: str, target: str) -> tuple[str, str] | None:
    if source == target:
        return value, f"{source} = {target}"
    expr, rule = _TEMPERATURE[(source, target)]
    return expr.format(v=f"({value})" if value.startswith("-") else value), rule


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")
