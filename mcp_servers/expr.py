"""The syntax of Podium's arithmetic expressions: tokenizer, syntax tree and recursive-descent parser.

Nothing is ever passed to ``eval``: the grammar only has numbers, the operators ``+ - * / // % **``
(``^`` is an alias for ``**``), parentheses, a fixed set of functions and the constants ``pi`` and
``e``. Any other name, an attribute, a string or a lambda is a syntax error. What the tree means is
:mod:`mcp_servers.arith`'s business.
"""

from __future__ import annotations

import decimal
import re
from dataclasses import dataclass
from decimal import Decimal

from podium.mcp_servers.errors import ExpressionError

MAX_LENGTH = 1000
MAX_DEPTH = 60
MAX_LITERAL = 100
MAX_MAGNITUDE = 300  # results are bounded to 10**MAX_MAGNITUDE; smaller than 10**-MAX_MAGNITUDE they are 0

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
        self.depth = -1  # the top-level expression is not a nesting level: MAX_DEPTH levels are allowed

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
                value = CONTEXT.create_decimal(tok.text.replace("_", ""))
            except decimal.Overflow:
                raise ExpressionError(f"number {tok.text!r} exceeds 1e{MAX_MAGNITUDE}") from None
            if value and value.adjusted() < -MAX_MAGNITUDE:
                raise ExpressionError(
                    f"number {tok.text!r} is smaller than 1e-{MAX_MAGNITUDE} in magnitude; write 0 if you mean it"
                )
            return Num(value)
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
