"""A small, safe expression language for routing workflows (no ``eval``).

    channel == 'voice' and tier in ['gold', 'platinum']
    billing >= 3 and (italian >= 2 or english >= 4)
    not vip and priority > 2

Grammar: ``or`` / ``and`` / ``not``, comparisons ``== != < <= > >= in``, ``not in``, parentheses,
numbers, 'strings' or "strings", true/false/null, lists ``[a, b]`` and names (letters, digits, ``_``,
``-`` and dots). A name's value comes from the evaluation context; a missing name is ``default``
(``None`` for contact attributes, 0 for agent skills, so ``billing >= 3`` is false for an agent
without that skill). Comparing values of different kinds is false rather than an error.

Expressions are compiled once into nested closures (cached), so evaluating over a thousand agents
per decision stays cheap.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from django.utils.translation import gettext as _

from fedele.shared.errors import ValidationFailed

Evaluator = Callable[[Mapping[str, Any], Any], Any]
MAX_LENGTH = 1000

_TOKEN = re.compile(
    r"\s*(?:(?P<number>-?\d+(?:\.\d+)?)|(?P<string>'[^']*'|\"[^\"]*\")|(?P<op>==|!=|<=|>=|<|>|\(|\)|\[|\]|,)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_.\-]*))"
)
_KEYWORDS = {"and", "or", "not", "in", "true", "false", "null"}


class ExpressionError(ValidationFailed):
    default_code = "invalid_expression"


def _tokenise(text: str) -> list[tuple[str, str, int]]:
    tokens: list[tuple[str, str, int]] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise ExpressionError(
                _("Unexpected character at position %(position)d: %(text)s")
                % {"position": position + 1, "text": text[position : position + 10].strip()}
            )
        kind = match.lastgroup or ""
        value = match.group(kind)
        start = match.start(kind) + 1
        if kind == "name" and value in _KEYWORDS:
            kind = "keyword"
        tokens.append((kind, value, start))
        position = match.end()
    return tokens


def _compare(operator: str, left: Any, right: Any) -> bool:
    try:
        if operator == "==":
            return bool(left == right)
        if operator == "!=":
            return bool(left != right)
        if operator == "in":
            return right is not None and left in right
        if operator == "not in":
            return right is not None and left not in right
        if left is None or right is None or isinstance(left, bool) != isinstance(right, bool):
            return False
        if operator == "<":
            return bool(left < right)
        if operator == "<=":
            return bool(left <= right)
        if operator == ">":
            return bool(left > right)
        if operator == ">=":
            return bool(left >= right)
    except TypeError:
        return False
    raise ExpressionError(_("Unknown operator %(operator)s.") % {"operator": operator})


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenise(text)
        self.index = 0
        self.names: set[str] = set()

    def _peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def _take(self) -> tuple[str, str, int]:
        token = self._peek()
        if token is None:
            raise ExpressionError(_("The expression ends too early."))
        self.index += 1
        return token

    def _expect(self, value: str) -> None:
        token = self._take()
        if token[1] != value:
            raise ExpressionError(
                _("Expected %(expected)s at position %(position)d, found %(found)s.")
                % {"expected": value, "position": token[2], "found": token[1]}
            )

    def _at(self, value: str) -> bool:
        token = self._peek()
        return token is not None and token[1] == value and token[0] in ("keyword", "op")

    def parse(self) -> Evaluator:
        if not self.tokens:
            raise ExpressionError(_("The expression is empty."))
        result = self._or()
        token = self._peek()
        if token is not None:
            raise ExpressionError(
                _("Unexpected %(found)s at position %(position)d.")
                % {"found": token[1], "position": token[2]}
            )
        return result

    def _or(self) -> Evaluator:
        left = self._and()
        while self._at("or"):
            self._take()
            right = self._and()
            left = (lambda a, b: lambda c, d: bool(a(c, d)) or bool(b(c, d)))(left, right)
        return left

    def _and(self) -> Evaluator:
        left = self._not()
        while self._at("and"):
            self._take()
            right = self._not()
            left = (lambda a, b: lambda c, d: bool(a(c, d)) and bool(b(c, d)))(left, right)
        return left

    def _not(self) -> Evaluator:
        if self._at("not"):
            self._take()
            inner = self._not()
            return lambda c, d: not inner(c, d)
        return self._comparison()

    def _comparison(self) -> Evaluator:
        left = self._value()
        token = self._peek()
        if token is None:
            return left
        operator = ""
        if token[0] == "op" and token[1] in ("==", "!=", "<", "<=", ">", ">="):
            operator = token[1]
            self._take()
        elif token[1] == "in" and token[0] == "keyword":
            operator = "in"
            self._take()
        elif token[1] == "not" and token[0] == "keyword":
            following = self.tokens[self.index + 1] if self.index + 1 < len(self.tokens) else None
            if following is not None and following[1] == "in":
                self.index += 2
                operator = "not in"
        if not operator:
            return left
        right = self._value()
        return lambda c, d: _compare(operator, left(c, d), right(c, d))

    def _value(self) -> Evaluator:
        kind, value, position = self._take()
        if kind == "number":
            number: float | int = float(value) if "." in value else int(value)
            return lambda c, d: number
        if kind == "string":
            text = value[1:-1]
            return lambda c, d: text
        if kind == "keyword" and value in ("true", "false", "null"):
            constant = {"true": True, "false": False, "null": None}[value]
            return lambda c, d: constant
        if kind == "name":
            self.names.add(value)
            return lambda c, d: c.get(value, d)
        if value == "(":
            inner = self._or()
            self._expect(")")
            return inner
        if value == "[":
            items: list[Evaluator] = []
            if not self._at("]"):
                items.append(self._value())
                while self._at(","):
                    self._take()
                    items.append(self._value())
            self._expect("]")
            return lambda c, d: [item(c, d) for item in items]
        raise ExpressionError(
            _("Unexpected %(found)s at position %(position)d.") % {"found": value, "position": position}
        )


@lru_cache(maxsize=1024)
def _compiled(text: str) -> tuple[Evaluator, frozenset[str]]:
    parser = _Parser(text)
    evaluator = parser.parse()
    return evaluator, frozenset(parser.names)


def compile_expression(text: str) -> Evaluator:
    """Parse once (cached); raises ExpressionError (a ValidationFailed) with the position."""
    if len(text) > MAX_LENGTH:
        raise ExpressionError(
            _("The expression is longer than %(limit)d characters.") % {"limit": MAX_LENGTH}
        )
    return _compiled(text.strip())[0]


def expression_names(text: str) -> frozenset[str]:
    compile_expression(text)
    return _compiled(text.strip())[1]


def evaluate(text: str, context: Mapping[str, Any], *, default: Any = None) -> bool:
    """True when the expression holds for ``context``; an empty expression always holds."""
    if not text or not text.strip():
        return True
    return bool(compile_expression(text)(context, default))
