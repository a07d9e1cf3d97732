"""ConditionExpression, FilterExpression and KeyConditionExpression grammar.

    condition  := and ("OR" and)*
    and        := not ("AND" not)*
    not        := "NOT" not | primary
    primary    := ( "(" condition ")" | operand ) [suffix]
    suffix     := comparator arg | "BETWEEN" arg "AND" arg | "IN" "(" arg ("," arg)* ")"
    comparator := "=" | "<>" | "<" | "<=" | ">" | ">="

Precedence, loosest first: OR, AND, NOT, then comparisons, BETWEEN, IN and functions; the
keywords are case-insensitive and never attribute names here.  A parenthesised operand may
stand before a suffix ("(a) = :v"); anywhere else a bare path or value is a syntax error at
the token after it.  Noted, in the service's priority: redundant parentheses, an unknown
function, a function in the wrong place, a reserved word.
"""

from __future__ import annotations

from aiokv.http.dynamodb.expressions.ast import (
    And,
    Between,
    Call,
    Compare,
    In,
    Node,
    Not,
    Or,
    Path,
    Value,
)
from aiokv.http.dynamodb.expressions.parser import REDUNDANT_PARENS, Parser

COMPARATORS = frozenset({"=", "<>", "<", "<=", ">", ">="})
# name -> number of operands
CONDITION_FUNCTIONS = {
    "attribute_exists": 1,
    "attribute_not_exists": 1,
    "attribute_type": 2,
    "begins_with": 2,
    "contains": 2,
    "size": 1,
}
UPDATE_FUNCTIONS = {"if_not_exists": 2, "list_append": 2}


def misused(name: str) -> str:
    return f"The function is not allowed to be used this way in an expression; function: {name}"


class ConditionParser(Parser):
    """Parses one condition; `label` names the request parameter in messages."""

    keywords = frozenset({"AND", "OR", "NOT", "BETWEEN", "IN"})
    priority = ("parens", "function", "misused", "reserved")

    def __init__(self, text: str, label: str = "ConditionExpression") -> None:
        self.label = label
        super().__init__(text)
        self.depth = 0
        self.grouped: set[int] = set()  # ids of nodes that sat alone in parentheses

    def parse(self) -> Node:
        node = self.parse_or()
        self.as_condition(node)
        self.finish()
        return node

    def as_condition(self, node: Node) -> Node:
        """`node` where a condition must stand: a bare operand fails at the next token."""
        if isinstance(node, (Path, Value)):
            raise self.fail()
        if isinstance(node, Call) and node.name == "size":
            self.note("misused", misused("size"))
        return node

    def parse_or(self) -> Node:
        node = self.parse_and()
        while self.kind() == "OR":
            self.i += 1
            node = Or(self.as_condition(node), self.as_condition(self.parse_and()))
        return node

    def parse_and(self) -> Node:
        node = self.parse_not()
        while self.kind() == "AND":
            self.i += 1
            node = And(self.as_condition(node), self.as_condition(self.parse_not()))
        return node

    def parse_not(self) -> Node:
        if self.kind() == "NOT":
            self.i += 1
            return Not(self.as_condition(self.parse_not()))
        return self.parse_primary()

    def parse_primary(self) -> Node:
        if self.at_op("("):
            self.i += 1
            self.depth += 1
            left = self.parse_or()
            self.expect_op(")")
            self.depth -= 1
            if id(left) in self.grouped:
                self.note("parens", REDUNDANT_PARENS)
            self.grouped.add(id(left))
        else:
            left = self.parse_operand()
        kind = self.kind()
        if kind == "OP" and self.tokens[self.i][1] in COMPARATORS:
            op = self.tokens[self.i][1]
            self.operand(left)
            self.i += 1
            return Compare(op, left, self.operand(self.parse_arg()))
        if kind == "BETWEEN":
            self.operand(left)
            self.i += 1
            low = self.operand(self.parse_arg())
            if self.kind() != "AND":
                raise self.fail()
            self.i += 1
            return Between(left, low, self.operand(self.parse_arg()))
        if kind == "IN":
            self.operand(left)
            self.i += 1
            self.expect_op("(")
            choices = [self.operand(self.parse_arg())]
            while self.at_op(","):
                self.i += 1
                choices.append(self.operand(self.parse_arg()))
            self.expect_op(")")
            return In(left, tuple(choices))
        if isinstance(left, (Path, Value)) and not (self.depth and self.at_op(")")):
            raise self.fail()
        return left

    def operand(self, node: Node) -> Node:
        """`node` where an operand must stand: a condition there is a syntax error."""
        if isinstance(node, Call):
            if node.name != "size":
                self.note("misused", misused(node.name))
        elif not isinstance(node, (Path, Value)):
            raise self.fail()
        return node

    def check_call(self, call: Call) -> None:
        name = call.name
        if name in UPDATE_FUNCTIONS:
            self.note(
                "function",
                f"The function is not allowed in a condition expression; function: {name}",
            )
        elif name not in CONDITION_FUNCTIONS:
            self.note("function", f"Invalid function name; function: {name}")
        for arg in call.args:
            if isinstance(arg, Call) and arg.name != "size":
                self.note("misused", misused(arg.name))
