"""The events `aiokv.http.h1.Connection.next_event` returns, and the error it raises.

One request cycle reads as `Request`, zero or more `Data`, `EndOfMessage`; then `PAUSED` until
the server has answered and called `start_next_cycle()`.  `NEED_DATA` asks for more bytes;
`ConnectionClosed` says the client closed cleanly between requests.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from aiokv.errors import AiokvError

Headers = list[tuple[bytes, bytes]]  # (lower-cased name, value without surrounding OWS)


class ProtocolError(AiokvError):
    """The client sent bytes that break HTTP/1.1; answer with `status` and close.

    Attributes:
        status: the HTTP status of the answer (400, 413, 431, 501, 505).
        reason: what was wrong, for the answer's body and the log.
    """

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


class Request(NamedTuple):
    """A request head.  `http_version` is b"1.0" or b"1.1" (a later 1.x reads as 1.1)."""

    method: bytes
    target: bytes
    http_version: bytes
    headers: Headers


class Data(NamedTuple):
    """Body bytes, in arrival order.  How the body is cut into `Data` events depends on how
    the bytes arrived; only their concatenation is meaningful."""

    data: bytes


class EndOfMessage(NamedTuple):
    """The request body is complete.  `trailers` holds a chunked body's trailer fields."""

    trailers: tuple[tuple[bytes, bytes], ...] = ()


class ConnectionClosed(NamedTuple):
    """The client closed the connection between requests."""


class _NeedData:
    def __repr__(self) -> str:
        return "NEED_DATA"


class _Paused:
    def __repr__(self) -> str:
        return "PAUSED"


NEED_DATA: Final = _NeedData()  # feed more bytes (or b"" at EOF) with receive_data
PAUSED: Final = _Paused()  # the request is complete: answer it, then start_next_cycle()
END_OF_MESSAGE: Final = EndOfMessage()  # shared: the usual end, without trailers
CONNECTION_CLOSED: Final = ConnectionClosed()

Event = Request | Data | EndOfMessage | ConnectionClosed | _NeedData | _Paused
