"""UpdateExpression grammar.

    update  := section+                         each of SET REMOVE ADD DELETE at most once
    section := "SET" set ("," set)* | "REMOVE" path ("," path)*
             | "ADD" path VALUE ("," path VALUE)* | "DELETE" path VALUE ("," path VALUE)*
    set     := path "=" value
    value   := term [("+" | "-") arg] | "(" value ")"
    term    := arg                              arg: operand or "(" operand ")"
    call    := if_not_exists(path, arg) | list_append(arg, arg)

One arithmetic operator at most ("a + b + c" fails at the second "+"); numbers are never
literals.  The section keywords are case-insensitive and never attribute names here.  Noted,
in the service's priority: a reserved word, an unknown or misplaced function, a repeated
section.
"""

from __future__ import annotations

from aiokv.http.dynamodb.expressions.ast import Action, Arith, Call, Node, Update, Value
from aiokv.http.dynamodb.expressions.condition_parser import CONDITION_FUNCTIONS, UPDATE_FUNCTIONS
from aiokv.http.dynamodb.expressions.parser import Parser

SECTIONS = frozenset({"SET", "REMOVE", "ADD", "DELETE"})


class UpdateParser(Parser):
    label = "UpdateExpression"
    keywords = SECTIONS
    priority = ("reserved", "function", "section")

    def parse(self) -> Update:
        actions: list[Action] = []
        seen: set[str] = set()
        while True:
            section = self.kind()
            if section not in SECTIONS:
                raise self.fail()
            self.i += 1
            if section in seen:
                self.note(
                    "section",
                    f'The "{section}" section can only be used once in an update expression;',
                )
            seen.add(section)
            actions.append(self.parse_action(section))
            while self.at_op(","):
                self.i += 1
                actions.append(self.parse_action(section))
            if self.i >= self.n:
                break
        self.finish()
        return Update(tuple(actions))

    def parse_action(self, section: str) -> Action:
        path = self.parse_path()
        if section == "SET":
            self.expect_op("=")
            return Action(section, path, self.parse_value())
        if section == "REMOVE":
            return Action(section, path, None)
        if self.kind() != "VALUE":
            raise self.fail()
        self.i += 1
        return Action(section, path, Value(self.tokens[self.i - 1][1]))

    def parse_value(self) -> Node:
        if self.at_op("("):
            self.i += 1
            left = self.parse_value()
            self.expect_op(")")
            if isinstance(left, Arith):
                return left
        else:
            left = self.parse_operand()
        if self.at_op("+") or self.at_op("-"):
            op = self.tokens[self.i][1]
            self.i += 1
            return Arith(op, left, self.parse_arg())
        return left

    def check_call(self, call: Call) -> None:
        name = call.name
        if name in CONDITION_FUNCTIONS:
            self.note(
                "function", f"The function is not allowed in an update expression; function: {name}"
            )
        elif name not in UPDATE_FUNCTIONS:
            self.note("function", f"Invalid function name; function: {name}")
