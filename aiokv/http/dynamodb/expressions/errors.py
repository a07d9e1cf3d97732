"""The one error the expression package raises: the service's ValidationException message.

`message` is exactly what DynamoDB puts in the reply's "message" field, prefix included
("Invalid UpdateExpression: Syntax error; token: ..."); the HTTP layer sends it unchanged
with `com.amazon.coral.validate#ValidationException` and status 400.
"""

from __future__ import annotations

from aiokv.errors import InvalidArgumentError


class ExpressionError(InvalidArgumentError):
    """An expression, its attribute names/values, or applying an update was invalid.

    Attributes:
        message: the service's message, sent to the client verbatim.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
