"""A safe arithmetic expression language: tokenizer, recursive-descent parser and Decimal evaluator.

Nothing is ever passed to ``eval``: the grammar only has numbers, the operators ``+ - * / // % **``
(``^`` is an alias for ``**``), parentheses, a fixed set of functions and the constants ``pi`` and
``e``. Any other name, an attribute, a string or a lambda is a syntax error.

Percentages follow calculator conventions:

- ``15%`` alone is ``0.15``; ``15% * 80`` is ``12``;
- ``a + p%`` and ``a - p%`` add or subtract ``p`` percent *of a*: ``200 + 10%`` is ``220``;
- ``%`` between two operands is the remainder: ``17 % 5`` is ``2`` (floored, like Python).

Arithmetic is ``decimal.Decimal`` with 50 significant digits. Results (and every intermediate value)
must stay within 1e-300..1e300 in magnitude; powers whose result would be larger are refused before
they are computed, so ``9**9**9`` fails at once instead of running forever.
"""

from __future__ import annotations

import decimal
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from mcp_servers.errors import ExpressionError

MAX_LENGTH = 1000
MAX_DEPTH = 60
MAX_LITERAL = 100
MAX_STEPS = 200
MAX_MAGNITUDE = 300  # results are bounded to 10**MAX_MAGNITUDE

CONTEXT = decimal.Context(
    prec=50,
    rounding=decimal.ROUND_HALF_EVEN,
    Emax=MAX_MAGNITUDE,
    Emin=-MAX_MAGNITUDE,
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)
PI = Decimal("3.1415926535897932384626433832795028841971693993751")
E = Decimal("2.7182818284590452353602874713526624977572470937000")
CONSTANTS = {"pi": PI, "e": E}

_TOKEN = re.compile(
    r"\s*(?:"
    r"(?P<num>(?:\d+(?:_\d+)*(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>\*\*|//|[-+*/%^(),])"
    r")"
)


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # "num", "name", "op", "end"
    text: str
    pos: int


def tokenize(source: str) -> list[Token]:
    """Split ``source`` into tokens; raises ``ExpressionError`` at the first character that fits none."""
    tokens, pos = [], 0
    while pos < len(source):
        if source[pos:].strip() == "":
            break
        match = _TOKEN.match(source, pos)
        if not match or match.end() == pos:
            bad = source[pos:].lstrip()[:1]
            where = len(source) - len(source[pos:].lstrip())
            raise ExpressionError(f"unexpected character {bad!r} at position {where}")
        kind = match.lastgroup or "op"
        text = match.group(kind)
        if kind == "num" and len(text) > MAX_LITERAL:
            raise ExpressionError(
                f"number at position {match.start(kind)} is longer than {MAX_LITERAL} characters"
            )
        tokens.append(Token(kind, "**" if text == "^" else text, match.start(kind)))
        pos = match.end()
    tokens.append(Token("end", "", len(source)))
    return tokens


# ---- syntax tree ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Num:
    value: Decimal


@dataclass(frozen=True, slots=True)
class Percent:
    operand: Node


@dataclass(frozen=True, slots=True)
class Unary:
    op: str
    operand: Node


@dataclass(frozen=True, slots=True)
class Binary:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Call:
    name: str
    args: tuple[Node, ...]


Node = Num | Percent | Unary | Binary | Call

# name -> (min args, max args)
FUNCTIONS: dict[str, tuple[int, int]] = {
    "round": (1, 2),
    "min": (1, 100),
    "max": (1, 100),
    "sqrt": (1, 1),
    "abs": (1, 1),
    "floor": (1, 1),
    "ceil": (1, 1),
    "log": (1, 2),
    "ln": (1, 1),
    "log10": (1, 1),
    "exp": (1, 1),
}


class Parser:
    """Recursive descent over the grammar::

    expr    := term (('+' | '-') term)*
    term    := unary (('*' | '/' | '//' | '%') unary)*
    unary   := ('-' | '+') unary | power
    power   := postfix ('**' unary)?          right-associative, binds tighter than unary minus
    postfix := primary '%'?                   percent, when no operand follows the '%'
    primary := NUMBER | CONSTANT | FUNCTION '(' expr (',' expr)* ')' | '(' expr ')'
    """

    def __init__(self, source: str) -> None:
        self.tokens = tokenize(source)
        self.i = 0
        self.depth = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def expect(self, text: str) -> None:
        if self.tok.text != text or self.tok.kind != "op":
            raise ExpressionError(f"expected {text!r} at position {self.tok.pos}, found {self._describe()}")
        self.i += 1

    def _describe(self) -> str:
        return "end of expression" if self.tok.kind == "end" else repr(self.tok.text)

    def parse(self) -> Node:
        if self.tok.kind == "end":
            raise ExpressionError("empty expression")
        node = self.expr()
        if self.tok.kind != "end":
            raise ExpressionError(f"unexpected {self._describe()} at position {self.tok.pos}")
        return node

    def _nest(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError(f"expression nests deeper than {MAX_DEPTH} levels")

    def expr(self) -> Node:
        self._nest()
        node = self.term()
        while self.tok.kind == "op" and self.tok.text in ("+", "-"):
            op = self.take().text
            node = Binary(op, node, self.term())
        self.depth -= 1
        return node

    def term(self) -> Node:
        node = self.unary()
        while self.tok.kind == "op" and self.tok.text in ("*", "/", "//", "%"):
            op = self.take().text
            node = Binary(op, node, self.unary())
        return node

    def unary(self) -> Node:
        if self.tok.kind == "op" and self.tok.text in ("-", "+"):
            self._nest()
            op = self.take().text
            node = Unary(op, self.unary())
            self.depth -= 1
            return node
        return self.power()

    def power(self) -> Node:
        base = self.postfix()
        if self.tok.kind == "op" and self.tok.text == "**":
            self.take()
            self._nest()
            exponent = self.unary()
            self.depth -= 1
            return Binary("**", base, exponent)
        return base

    def postfix(self) -> Node:
        node = self.primary()
        if self.tok.kind == "op" and self.tok.text == "%":
            after = self.tokens[self.i + 1]
            if after.kind in ("num", "name") or after.text == "(":
                return node  # a remainder: handled by term()
            self.take()
            return Percent(node)
        return node

    def primary(self) -> Node:
        tok = self.take()
        if tok.kind == "num":
            try:
                return Num(CONTEXT.create_decimal(tok.text.replace("_", "")))
            except decimal.Overflow:
                raise ExpressionError(f"number {tok.text!r} exceeds 1e{MAX_MAGNITUDE}") from None
        if tok.kind == "name":
            return self._name(tok)
        if tok.kind == "op" and tok.text == "(":
            node = self.expr()
            self.expect(")")
            return node
        found = "end of expression" if tok.kind == "end" else repr(tok.text)
        raise ExpressionError(
            f"expected a number, constant, function or '(' at position {tok.pos}, found {found}"
        )

    def _name(self, tok: Token) -> Node:
        name = tok.text.lower()
        if name in CONSTANTS and not (self.tok.kind == "op" and self.tok.text == "("):
            return Num(CONSTANTS[name])
        if name not in FUNCTIONS:
            allowed = ", ".join(sorted(FUNCTIONS)) + "; constants " + ", ".join(sorted(CONSTANTS))
            raise ExpressionError(
                f"unknown name {tok.text!r} at position {tok.pos}; allowed functions: {allowed}"
            )
        self.expect("(")
        args = [self.expr()]
        while self.tok.kind == "op" and self.tok.text == ",":
            self.take()
            args.append(self.expr())
        self.expect(")")
        low, high = FUNCTIONS[name]
        if not low <= len(args) <= high:
            raise ExpressionError(f"{name}() takes {low}-{high} arguments, got {len(args)}")
        return Call(name, tuple(args))


def parse(source: str) -> Node:
    """The syntax tree of ``source``; raises ``ExpressionError`` naming the position of a problem."""
    if len(source) > MAX_LENGTH:
        raise ExpressionError(f"expression is longer than {MAX_LENGTH} characters")
    return Parser(source).parse()


# ---- evaluation ----------------------------------------------------------------------------------


def fmt(value: Decimal) -> str:
    """A Decimal as people write it: no exponent unless the number is very large or very small."""
    if value.is_zero():
        return "0"
    value = value.normalize(CONTEXT)
    if -20 <= value.adjusted() < 50:
        return format(value, "f")
    return format(value, "E").replace("E+", "e+").replace("E-", "e-")


def operand(value: Decimal) -> str:
    """``fmt`` with negative numbers parenthesised, for writing steps such as ``(-8) ** 2 = 64``."""
    text = fmt(value)
    return f"({text})" if text.startswith("-") else text


@dataclass(slots=True)
class Evaluation:
    value: Decimal
    steps: list[str] = field(default_factory=list)


class Evaluator:
    def __init__(self) -> None:
        self.steps: list[str] = []

    def step(self, text: str) -> None:
        if len(self.steps) < MAX_STEPS:
            self.steps.append(text)
        elif len(self.steps) == MAX_STEPS:
            self.steps.append("… (further steps omitted)")

    def eval(self, node: Node) -> Decimal:
        if isinstance(node, Num):
            return node.value
        if isinstance(node, Percent):
            inner = self.eval(node.operand)
            result = inner / 100
            self.step(f"{fmt(inner)}% = {fmt(result)}")
            return result
        if isinstance(node, Unary):
            inner = self.eval(node.operand)
            return -inner if node.op == "-" else +inner
        if isinstance(node, Call):
            return self.call(node)
        if node.op in ("+", "-") and isinstance(node.right, Percent):
            base = self.eval(node.left)
            pct = self.eval(node.right.operand)
            share = base * pct / 100
            result = base + share if node.op == "+" else base - share
            self.step(f"{fmt(base)} {node.op} {fmt(pct)}% (of {fmt(base)} = {fmt(share)}) = {fmt(result)}")
            return result
        left, right = self.eval(node.left), self.eval(node.right)
        result = self.binary(node.op, left, right)
        self.step(f"{operand(left)} {node.op} {operand(right)} = {fmt(result)}")
        return result

    def binary(self, op: str, a: Decimal, b: Decimal) -> Decimal:
        if op in ("/", "//", "%") and b.is_zero():
            raise ExpressionError(f"division by zero in {fmt(a)} {op} 0")
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "/":
            return a / b
        if op == "//":
            return (a / b).to_integral_value(rounding=decimal.ROUND_FLOOR)
        if op == "%":
            return a - b * (a / b).to_integral_value(rounding=decimal.ROUND_FLOOR)
        return self.power(a, b)

    def power(self, a: Decimal, b: Decimal) -> Decimal:
        integral = b == b.to_integral_value()
        if a.is_zero():
            if b < 0:
                raise ExpressionError("zero cannot be raised to a negative power")
            return Decimal(1) if b.is_zero() else Decimal(0)
        if a < 0 and not integral:
            raise ExpressionError(f"{operand(a)} ** {operand(b)} is not a real number")
        magnitude = float(b) * math.log10(abs(float(a))) if abs(a) != 1 else 0.0
        if magnitude > MAX_MAGNITUDE:
            raise ExpressionError(
                f"{operand(a)} ** {operand(b)} would exceed 1e{MAX_MAGNITUDE} (about 10^{magnitude:.0f}); refused"
            )
        if magnitude < -MAX_MAGNITUDE:
            return Decimal(0)
        return a**b

    def call(self, node: Call) -> Decimal:
        args = [self.eval(arg) for arg in node.args]
        result = _FUNCS[node.name](args)
        self.step(f"{node.name}({', '.join(fmt(a) for a in args)}) = {fmt(result)}")
        return result


def _round(args: list[Decimal]) -> Decimal:
    places = args[1] if len(args) > 1 else Decimal(0)
    if places != places.to_integral_value() or abs(places) > MAX_MAGNITUDE:
        raise ExpressionError(f"round(): places must be a whole number within ±{MAX_MAGNITUDE}")
    return args[0].quantize(Decimal(1).scaleb(-int(places)), rounding=decimal.ROUND_HALF_EVEN)


def _positive(name: str, x: Decimal) -> Decimal:
    if x <= 0:
        raise ExpressionError(f"{name}() needs a positive argument, got {fmt(x)}")
    return x


def _sqrt(args: list[Decimal]) -> Decimal:
    if args[0] < 0:
        raise ExpressionError(f"sqrt() of a negative number ({fmt(args[0])}) is not real")
    return args[0].sqrt()


def _log(args: list[Decimal]) -> Decimal:
    x = _positive("log", args[0])
    if len(args) == 1:
        return x.ln()
    base = _positive("log", args[1])
    if base == 1:
        raise ExpressionError("log() base cannot be 1")
    return x.ln() / base.ln()


_FUNCS: dict[str, Callable[[list[Decimal]], Decimal]] = {
    "round": _round,
    "min": min,
    "max": max,
    "sqrt": _sqrt,
    "abs": lambda a: abs(a[0]),
    "floor": lambda a: a[0].to_integral_value(rounding=decimal.ROUND_FLOOR),
    "ceil": lambda a: a[0].to_integral_value(rounding=decimal.ROUND_CEILING),
    "log": _log,
    "ln": lambda a: _positive("ln", a[0]).ln(),
    "log10": lambda a: _positive("log10", a[0]).log10(),
    "exp": lambda a: a[0].exp(),
}


def evaluate(source: str) -> Evaluation:
    """Parse and evaluate ``source``; raises ``ExpressionError`` for anything outside the language or its
    bounds (never executes anything but arithmetic)."""
    tree = parse(source)
    evaluator = Evaluator()
    with decimal.localcontext(CONTEXT):
        try:
            value = evaluator.eval(tree)
        except decimal.Overflow:
            raise ExpressionError(f"a result exceeds 1e{MAX_MAGNITUDE}") from None
        except decimal.DivisionByZero:
            raise ExpressionError("division by zero") from None
        except decimal.InvalidOperation as exc:
            raise ExpressionError(f"undefined operation ({exc.__class__.__name__})") from None
    return Evaluation(value=value, steps=evaluator.steps)
