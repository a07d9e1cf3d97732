"""DynamoDB expressions: parse, bind, evaluate.  Pure code (no I/O), for the operations.

Items and ExpressionAttributeValues are in the held form of types.py (canonical Decimal
numbers, bytes, sorted tuple sets), and so are the values an update produces.  One request,
in the service's order::

    wire = req.get("ExpressionAttributeValues")
    held = {k: types.parse_value(x) for k, x in wire.items()} if wire is not None else None
    b = Bindings(req.get("ExpressionAttributeNames"), held)
    plan = compile_update(parse_update(req["UpdateExpression"]), b)            # UpdateItem
    cond = compile_condition(parse_condition(req["ConditionExpression"]), b)   # -> item -> bool
    keys = compile_key_condition(parse_condition(text, "KeyConditionExpression"), b, "pk", "sk")
    keep = compile_condition(parse_condition(text, "FilterExpression"), b, "FilterExpression")
    proj = compile_projection(parse_projection(req["ProjectionExpression"]), b)
    b.check_unused()
    new_item = plan.apply(old_item) if cond(old_item) else ...   # old_item: types.parse_item

Every error is an `ExpressionError` whose `message` is the service's ValidationException text.
Parsing depends on the text only, so `parse_*` cache trees (and syntax errors) by text in a
small bounded dict: a hit costs one dict lookup.  Binding depends on the request's names
and values, so it runs per request; it builds closures, so evaluation walks no tree.
"""

from __future__ import annotations

from aiokv.http.dynamodb.expressions.ast import Node, Projection, Update
from aiokv.http.dynamodb.expressions.bindings import Bindings
from aiokv.http.dynamodb.expressions.condition_parser import ConditionParser
from aiokv.http.dynamodb.expressions.errors import ExpressionError
from aiokv.http.dynamodb.expressions.evaluate import Predicate, compile_condition
from aiokv.http.dynamodb.expressions.key_condition import KeyCondition, compile_key_condition
from aiokv.http.dynamodb.expressions.parser import ProjectionParser
from aiokv.http.dynamodb.expressions.projection import ProjectionPlan, compile_projection
from aiokv.http.dynamodb.expressions.update import UpdatePlan, compile_update
from aiokv.http.dynamodb.expressions.update_parser import UpdateParser

__all__ = [
    "Bindings",
    "ExpressionError",
    "KeyCondition",
    "Predicate",
    "ProjectionPlan",
    "UpdatePlan",
    "compile_condition",
    "compile_key_condition",
    "compile_projection",
    "compile_update",
    "parse_condition",
    "parse_projection",
    "parse_update",
]

# Distinct expression texts a server sees are few (applications reuse them); 1024 holds a
# busy application's set while bounding memory to about a megabyte of small trees.
CACHE_SIZE = 1024

_cache: dict[tuple[str, str], Node | Update | Projection | ExpressionError] = {}


def _cached(kind: str, text: str) -> Node | Update | Projection:
    key = (kind, text)
    hit = _cache.get(key)
    if hit is None:
        try:
            if kind == "UpdateExpression":
                hit = UpdateParser(text).parse()
            elif kind == "ProjectionExpression":
                hit = ProjectionParser(text).parse()
            else:
                hit = ConditionParser(text, kind).parse()
        except ExpressionError as error:
            hit = error
        if len(_cache) >= CACHE_SIZE:
            del _cache[next(iter(_cache))]  # first in, first out: no bookkeeping on hits
        _cache[key] = hit
    if isinstance(hit, ExpressionError):
        raise ExpressionError(hit.message)
    return hit


def parse_condition(text: str, label: str = "ConditionExpression") -> Node:
    """Parse a ConditionExpression (or, by `label`, a Filter or KeyConditionExpression).

    >>> parse_condition("a < :v")
    Compare(op='<', left=Path(parts=('a',)), right=Value(key=':v'))
    >>> parse_condition("a <", "FilterExpression")
    Traceback (most recent call last):
    ...
    aiokv.http.dynamodb.expressions.errors.ExpressionError: \
Invalid FilterExpression: Syntax error; token: "<EOF>", near: "<"
    """
    return _cached(label, text)  # type: ignore[return-value]


def parse_update(text: str) -> Update:
    """Parse an UpdateExpression (raises ExpressionError with the service's message)."""
    return _cached("UpdateExpression", text)  # type: ignore[return-value]


def parse_projection(text: str) -> Projection:
    """Parse a ProjectionExpression (raises ExpressionError with the service's message)."""
    return _cached("ProjectionExpression", text)  # type: ignore[return-value]
