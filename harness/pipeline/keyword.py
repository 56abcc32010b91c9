"""`-k EXPR` for `tfjs-certify certify`, with pytest's grammar and meaning, so one expression selects the same
variants in both drivers.

    expr     := and_expr ("or" and_expr)*
    and_expr := not_expr ("and" not_expr)*
    not_expr := "not" not_expr | "(" expr ")" | ident

An ident is a run of letters, digits and `_ : + - . [ ] \\ /` (as pytest's `-k` reads one); it matches an id
containing it, case-insensitively. An empty expression selects everything. A malformed one raises
ValueError, saying where.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_TOKEN = re.compile(r"\s*(?:(\()|(\))|([\w:+\-.\[\]\\/]+)|(\S))")
Match = Callable[[str], bool]


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out = []
    for m in _TOKEN.finditer(text):
        lpar, rpar, word, bad = m.groups()
        at = m.start() + len(m.group(0)) - len(m.group(0).lstrip())
        if bad is not None:
            raise ValueError(f"-k {text!r}: unexpected character {bad!r} at column {at + 1}")
        if lpar or rpar:
            out.append(("(" if lpar else ")", lpar or rpar, at))
        elif word in ("and", "or", "not"):
            out.append((word, word, at))
        else:
            out.append(("ident", word, at))
    return out


class _Parser:
    def __init__(self, text: str):
        self.text, self.tokens, self.i = text, _tokens(text), 0

    def _peek(self) -> str | None:
        return self.tokens[self.i][0] if self.i < len(self.tokens) else None

    def _take(self, kind: str) -> tuple[str, str, int]:
        if self._peek() != kind:
            where = f"column {self.tokens[self.i][2] + 1}" if self.i < len(self.tokens) else "the end"
            raise ValueError(f"-k {self.text!r}: expected {kind} at {where}")
        self.i += 1
        return self.tokens[self.i - 1]

    def expr(self) -> Match:
        parts = [self.and_expr()]
        while self._peek() == "or":
            self._take("or")
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else (lambda ident: any(p(ident) for p in parts))

    def and_expr(self) -> Match:
        parts = [self.not_expr()]
        while self._peek() == "and":
            self._take("and")
            parts.append(self.not_expr())
        return parts[0] if len(parts) == 1 else (lambda ident: all(p(ident) for p in parts))

    def not_expr(self) -> Match:
        if self._peek() == "not":
            self._take("not")
            inner = self.not_expr()
            return lambda ident: not inner(ident)
        if self._peek() == "(":
            self._take("(")
            inner = self.expr()
            self._take(")")
            return inner
        word = self._take("ident")[1].lower()
        return lambda ident: word in ident.lower()


def compile_expression(text: str) -> Match:
    """A predicate on ids for the `-k` expression `text` (ValueError when it is malformed)."""
    if not text.strip():
        return lambda ident: True
    parser = _Parser(text)
    match = parser.expr()
    if parser.i != len(parser.tokens):
        raise ValueError(
            f"-k {text!r}: unexpected {parser.tokens[parser.i][1]!r} at column {parser.tokens[parser.i][2] + 1}"
        )
    return match
