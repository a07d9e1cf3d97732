"""The recursive-descent machinery shared by every expression grammar, and projections.

    path       := part ("." part | "[" NUMBER "]")*        part := IDENT | NAME
    operand    := VALUE | path | call
    call       := IDENT "(" arg ("," arg)* ")"
    arg        := operand | "(" operand ")"
    projection := path ("," path)*

A parser walks the token list once and raises the service's syntax error at the first token
that cannot continue the expression.  Errors that the service reports only for well-formed
expressions (a reserved word, an unknown function, ...) are noted by category while parsing
and raised after it, the first note of the highest-priority category winning; so a syntax
error late in the text beats a reserved word early in it, as the service does.
"""

from __future__ import annotations

from aiokv.http.dynamodb.expressions.ast import Call, Node, Path, Projection, Value
from aiokv.http.dynamodb.expressions.errors import ExpressionError
from aiokv.http.dynamodb.expressions.lexer import KEYWORDS, Token, syntax_error, tokenize
from aiokv.http.dynamodb.expressions.reserved import RESERVED_WORDS

EMPTY = "The expression can not be empty;"
REDUNDANT_PARENS = "The expression has redundant parentheses;"


class Parser:
    """Token cursor, notes, and the productions every grammar shares.

    Subclasses set `label` (the message prefix), `keywords` (keyword kinds that are never
    identifiers in their grammar), `priority` (note categories, most important first) and
    implement `check_call`.
    """

    label = "Expression"
    keywords: frozenset[str] = frozenset()
    priority: tuple[str, ...] = ("reserved",)

    def __init__(self, text: str) -> None:
        if not text:
            raise ExpressionError(f"Invalid {self.label}: {EMPTY}")
        self.text = text
        self.tokens: list[Token] = tokenize(text)
        self.n = len(self.tokens)
        self.i = 0
        self.notes: dict[str, str] = {}

    # -- cursor -----------------------------------------------------------------------------

    def kind(self) -> str:
        return self.tokens[self.i][0] if self.i < self.n else "EOF"

    def at_op(self, op: str) -> bool:
        return self.i < self.n and self.tokens[self.i][1] == op and self.tokens[self.i][0] == "OP"

    def at_ident(self) -> bool:
        kind = self.kind()
        return kind == "IDENT" or (kind in KEYWORDS and kind not in self.keywords)

    def expect_op(self, op: str) -> None:
        if not self.at_op(op):
            raise self.fail()
        self.i += 1

    def fail(self) -> ExpressionError:
        return syntax_error(self.label, self.text, self.tokens, self.i)

    def note(self, category: str, message: str) -> None:
        self.notes.setdefault(category, message)

    def finish(self) -> None:
        """Raise a syntax error on leftover tokens, then the highest-priority note."""
        if self.i < self.n:
            raise self.fail()
        for category in self.priority:
            if category in self.notes:
                raise ExpressionError(f"Invalid {self.label}: {self.notes[category]}")

    # -- shared productions -----------------------------------------------------------------

    def parse_path(self) -> Path:
        parts: list[str | int] = [self.parse_part()]
        while self.i < self.n:
            if self.at_op("."):
                self.i += 1
                parts.append(self.parse_part())
            elif self.at_op("["):
                self.i += 1
                if self.kind() != "NUMBER":
                    raise self.fail()
                parts.append(int(self.tokens[self.i][1]))
                self.i += 1
                self.expect_op("]")
            else:
                break
        return Path(tuple(parts))

    def parse_part(self) -> str:
        if self.kind() == "NAME" or self.at_ident():
            word = self.tokens[self.i][1]
            if word[0] != "#" and word.upper() in RESERVED_WORDS:
                self.note(
                    "reserved", f"Attribute name is a reserved keyword; reserved keyword: {word}"
                )
            self.i += 1
            return word
        raise self.fail()

    def parse_operand(self) -> Node:
        kind = self.kind()
        if kind == "VALUE":
            self.i += 1
            return Value(self.tokens[self.i - 1][1])
        if self.at_ident() and self.i + 1 < self.n and self.tokens[self.i + 1][1] == "(":
            return self.parse_call()
        return self.parse_path()

    def parse_arg(self) -> Node:
        """An operand, optionally in one pair of parentheses (two pairs are noted)."""
        if not self.at_op("("):
            return self.parse_operand()
        self.i += 1
        if self.at_op("("):
            self.note("parens", REDUNDANT_PARENS)
            node = self.parse_arg()
        else:
            node = self.parse_operand()
        self.expect_op(")")
        return node

    def parse_call(self) -> Call:
        name = self.tokens[self.i][1]
        self.i += 2  # the name and "("
        args = [self.parse_arg()]
        while self.at_op(","):
            self.i += 1
            args.append(self.parse_arg())
        self.expect_op(")")
        call = Call(name, tuple(args))
        self.check_call(call)
        return call

    def check_call(self, call: Call) -> None:
        raise NotImplementedError


class ProjectionParser(Parser):
    """ProjectionExpression: a comma-separated list of document paths; no functions."""

    label = "ProjectionExpression"

    def parse(self) -> Projection:
        paths = [self.parse_path()]
        while self.at_op(","):
            self.i += 1
            paths.append(self.parse_path())
        self.finish()
        return Projection(tuple(paths))
