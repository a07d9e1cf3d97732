"""Tokens of every DynamoDB expression, and the service's syntax error.

    token   := NAME | VALUE | IDENT | NUMBER | OP | OTHER      (whitespace between is skipped)
    NAME    := "#" [0-9A-Za-z_]+          an ExpressionAttributeNames key
    VALUE   := ":" [0-9A-Za-z_]+          an ExpressionAttributeValues key
    IDENT   := [A-Za-z] [0-9A-Za-z_]*     an attribute, function or keyword (no leading "_")
    NUMBER  := [0-9]+                     only valid as a list index
    OP      := "<>" | "<=" | ">=" | one of  = < > ( ) [ ] , . + -
    OTHER   := any other single character (always a syntax error)

IDENT tokens spelled like a keyword (AND OR NOT BETWEEN IN SET REMOVE ADD DELETE, any case)
get the upper-case keyword as their kind; each parser decides which keywords it reserves.

The service reports a syntax error as `Syntax error; token: "<t>", near: "<n>"` where t is
the first token that cannot continue the expression ("<EOF>" at the end) and n is the source
from the start of the token before it (or the start of the text) to the end of the token
after it (or the end of the text): "SET a = 3" gives token "3", near "= 3";
"  RESET x y" gives token "RESET", near "  RESET x".

Invariant 1: tokens are in source order and do not overlap; the text between two tokens is
whitespace.  Invariant 2: `tokenize` is one `re.finditer` pass and two comprehensions.
"""

from __future__ import annotations

import re

from aiokv.http.dynamodb.expressions.errors import ExpressionError

# (kind, text, end offset); the start is end - len(text).
Token = tuple[str, str, int]

KEYWORDS = frozenset({"AND", "OR", "NOT", "BETWEEN", "IN", "SET", "REMOVE", "ADD", "DELETE"})

_TOKEN = re.compile(
    r"""[ \t\r\n]*(?:
      (?P<NAME>\#[0-9A-Za-z_]+(?:\#[0-9A-Za-z_\#]*)?)
    | (?P<VALUE>:[0-9A-Za-z_]+)
    | (?P<IDENT>[A-Za-z][0-9A-Za-z_]*)
    | (?P<NUMBER>[0-9]+)
    | (?P<OP><>|<=|>=|[=<>()\[\],.+\-])
    | (?P<OTHER>[^ \t\r\n])
    )""",
    re.VERBOSE | re.DOTALL,
)


def tokenize(text: str) -> list[Token]:
    """Split `text` into tokens.

    Raises:
        ExpressionError: a #name with a second "#" in it (the service rejects it as a key).

    >>> tokenize("a.b[1] <> :v")
    [('IDENT', 'a', 1), ('OP', '.', 2), ('IDENT', 'b', 3), ('OP', '[', 4), ('NUMBER', '1', 5), \
('OP', ']', 6), ('OP', '<>', 9), ('VALUE', ':v', 12)]
    >>> tokenize("not x")[0]
    ('NOT', 'not', 3)
    """
    raw = [(m.lastgroup or "OTHER", m[m.lastgroup or 0], m.end()) for m in _TOKEN.finditer(text)]
    tokens = [
        ((up if (up := t.upper()) in KEYWORDS else k) if k == "IDENT" else k, t, e)
        for k, t, e in raw
    ]
    for kind, tok, _ in tokens:
        if kind == "NAME" and "#" in tok[1:]:
            raise ExpressionError(
                f'ExpressionAttributeNames contains invalid key: Syntax error; key: "{tok}"'
            )
    return tokens


def syntax_error(label: str, text: str, tokens: list[Token], i: int) -> ExpressionError:
    """The service's error for an unexpected token at index `i` (len(tokens) is the end).

    >>> src = "SET a = 3"
    >>> syntax_error("UpdateExpression", src, tokenize(src), 3).message
    'Invalid UpdateExpression: Syntax error; token: "3", near: "= 3"'
    """
    n = len(tokens)
    start = tokens[i - 1][2] - len(tokens[i - 1][1]) if i > 0 else 0
    if i >= n:
        token, end = "<EOF>", len(text)
    else:
        token, end = tokens[i][1], tokens[i + 1][2] if i + 1 < n else len(text)
    return ExpressionError(
        f'Invalid {label}: Syntax error; token: "{token}", near: "{text[start:end]}"'
    )
