"""Server side of an HTTP/1.1 connection, sans I/O: bytes in, events out; responses to bytes.

The grammar and the strictness choices are in `aiokv.http.h1_head`.  The glue around a
`Connection` is a short loop (see `Connection`); it never parses a byte itself.

Invariant 1: one request at a time.  Bytes of a pipelined next request stay buffered, unparsed,
    until the answer to the current one has been serialized and `start_next_cycle()` called.
Invariant 2: every `ProtocolError` is sticky and ends the connection: `next_event` raises it
    again, `keep_alive` is False, and the one answer allowed carries `Connection: close`.
Invariant 3: `100 Continue` is offered at most once per request, and never once body bytes
    have arrived or a final answer was serialized.
Invariant 4: an answer serialized before the request was read to its end closes the
    connection (the unread rest of the body cannot be told from the next request).
"""

from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus
from typing import Final

from aiokv.http.h1_events import (
    CONNECTION_CLOSED,
    END_OF_MESSAGE,
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    Headers,
    ProtocolError,
    Request,
)
from aiokv.http.h1_head import (
    MAX_CHUNK_LINE,
    decide_framing,
    find_head_end,
    parse_chunk_size,
    parse_head,
    parse_head_crlf,
    parse_trailers,
)

__all__ = [
    "CONNECTION_CLOSED",
    "END_OF_MESSAGE",
    "NEED_DATA",
    "PAUSED",
    "Connection",
    "ConnectionClosed",
    "Data",
    "EndOfMessage",
    "Event",
    "Headers",
    "ProtocolError",
    "Request",
]

MAX_HEADER_BYTES: Final = 16 * 1024  # a boto3 head is ~1 KiB; h11 and nginx use 8-16 KiB
MAX_BODY_BYTES: Final = 16 * 1024 * 1024  # DynamoDB's own request limit
CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"

# Their side: what the next bytes are.  Events come only from _HEAD through _TRAILERS.
_HEAD, _BODY, _CHUNK_HEAD, _CHUNK_DATA, _CHUNK_END, _TRAILERS = range(6)
_DONE = 6  # request complete: PAUSED until answered and start_next_cycle()
_ERROR = 7  # a ProtocolError was raised; it is raised again
_CLOSED = 8  # ConnectionClosed was returned

# RFC 9110's phrases where Python 3.11's still have the RFC 7231 ones: the bytes do not
# change with the interpreter.
_PHRASES: Final = {s.value: s.phrase for s in HTTPStatus if s >= 200} | {
    413: "Content Too Large",
    414: "URI Too Long",
    416: "Range Not Satisfiable",
    422: "Unprocessable Content",
}
_STATUS_LINES: Final = {s: b"HTTP/1.1 %d %s\r\n" % (s, p.encode()) for s, p in _PHRASES.items()}
_NO_CONTENT: Final = frozenset((204, 304))  # no body and no Content-Length (RFC 9110 8.6)
_RESERVED: Final = (b"\ncontent-length:", b"\ntransfer-encoding:", b"\nconnection:")
_join_pair = b": ".join


class Connection:
    """One server-side HTTP/1.1 connection.  Pure: it never reads, writes or sleeps.

    A request cycle: `receive_data` as bytes arrive (b"" at EOF); `next_event` gives `Request`,
    `Data`..., `EndOfMessage`, then `PAUSED`; `send_response` serializes the answer; when
    `keep_alive` is still True, `start_next_cycle()` begins the next request.  `NEED_DATA`
    means "read more", and then `send_continue()` gives the bytes of an interim `100 Continue`
    if the client waits for one (b"" otherwise).  `next_event` raises `ProtocolError` for bad
    input: answer with `send_response(err.status, ...)` and close.

    >>> conn = Connection()
    >>> conn.receive_data(b"POST / HTTP/1.1\\r\\nHost: a\\r\\nContent-Length: 2\\r\\n\\r\\nhi")
    >>> conn.next_event(), conn.next_event(), conn.next_event(), conn.next_event()
    ... # doctest: +NORMALIZE_WHITESPACE
    (Request(method=b'POST', target=b'/', http_version=b'1.1',
             headers=[(b'host', b'a'), (b'content-length', b'2')]),
     Data(data=b'hi'), EndOfMessage(trailers=()), PAUSED)
    >>> conn.send_response(200, [(b"Content-Type", b"text/plain")], b"ok")
    b'HTTP/1.1 200 OK\\r\\nContent-Type: text/plain\\r\\nContent-Length: 2\\r\\n\\r\\nok'
    >>> conn.start_next_cycle(); conn.next_event()
    NEED_DATA
    """

    def __init__(
        self, *, max_header_bytes: int = MAX_HEADER_BYTES, max_body_bytes: int = MAX_BODY_BYTES
    ) -> None:
        self.max_header_bytes = max_header_bytes  # request line through the empty line
        self.max_body_bytes = max_body_bytes  # after chunked decoding
        self._buf = b""
        self._pos = 0  # bytes of _buf before this are consumed
        self._scanned = 0  # bytes after _pos already searched for a line end, in vain
        self._state = _HEAD
        self._remaining = 0  # body bytes (Content-Length) or chunk bytes still to come
        self._body_total = 0  # chunk sizes so far
        self._eof = False
        self._error: ProtocolError | None = None
        self._keep_alive = True
        self._http11 = True
        self._head_method = False  # the request is HEAD: the answer has no body
        self._continue = False  # the client waits for "100 Continue"
        self._responded = False

    @property
    def keep_alive(self) -> bool:
        """False once the connection must close after the current answer."""
        return self._keep_alive

    @property
    def expects_continue(self) -> bool:
        """True while the client waits for `100 Continue` before it sends the body."""
        return self._continue

    def receive_data(self, data: bytes) -> None:
        """Buffers bytes from the client; b"" means the client closed its side."""
        if self._eof:
            raise RuntimeError("receive_data() after EOF")
        if not data:
            self._eof = True
            self._keep_alive = False
            return
        if self._state >= _ERROR:
            return
        if self._state != _HEAD:
            self._continue = False  # body bytes came anyway: no interim answer needed
        if self._pos == len(self._buf):
            self._buf = data  # the common case: no copy
        else:
            self._buf = self._buf[self._pos :] + data
        self._pos = 0

    def next_event(self) -> Event:
        """Returns the next event, or raises `ProtocolError` (again, once it was raised)."""
        try:
            while True:
                state = self._state
                if state in (_BODY, _CHUNK_DATA):
                    remaining = self._remaining
                    if remaining:
                        return self._body_data(remaining)
                    if state == _BODY:
                        self._state = _DONE
                        return END_OF_MESSAGE
                    self._state = _CHUNK_END
                elif state == _HEAD:
                    return self._read_head()
                elif state == _DONE:
                    return PAUSED
                elif state == _CHUNK_HEAD:
                    if not self._read_chunk_line():
                        return self._need()
                elif state == _CHUNK_END:
                    if not self._read_chunk_end():
                        return self._need()
                elif state == _TRAILERS:
                    return self._read_trailers()
                elif state == _CLOSED:
                    return CONNECTION_CLOSED
                else:
                    assert self._error is not None
                    raise self._error
        except ProtocolError as exc:
            self._error = exc
            self._state = _ERROR
            self._keep_alive = False
            self._continue = False
            raise

    def send_continue(self) -> bytes:
        """The bytes of `100 Continue` if the client waits for them, once; else b""."""
        if self._continue:
            self._continue = False
            return CONTINUE
        return b""

    def send_response(
        self,
        status: int,
        headers: Sequence[tuple[bytes, bytes]] = (),
        body: bytes = b"",
        *,
        close: bool = False,
    ) -> bytes:
        """Serializes the one answer to the current request (or to a `ProtocolError`).

        Sets Content-Length (none for 204 and 304) and `Connection: close` when the connection
        will close: on `close=True`, a request that asked for it, an error, EOF, or an answer
        before the request was read to its end.  An HTTP/1.0 keep-alive gets
        `Connection: keep-alive`.  The answer to HEAD carries no body.

        Raises:
            ValueError: a status outside 200-999, a body with 204 or 304, CR or LF in a
                header, or a header this method owns (Content-Length, Transfer-Encoding,
                Connection).
            RuntimeError: this request was already answered.
        """
        if self._responded:
            raise RuntimeError("the current request was already answered")
        line = _STATUS_LINES.get(status)
        if line is None:
            if not 200 <= status <= 999:
                raise ValueError(f"status {status} is not a final status")
            line = b"HTTP/1.1 %d \r\n" % status
        if headers:
            fields = b"\r\n".join(map(_join_pair, headers))
            _check_fields(fields, len(headers))
            fields += b"\r\n"
        else:
            fields = b""
        keep = self._keep_alive and not close and self._state == _DONE
        self._keep_alive = keep
        self._responded = True
        self._continue = False
        if status in _NO_CONTENT:
            if body:
                raise ValueError(f"a {status} answer has no body")
            length = b""
        else:
            length = b"Content-Length: %d\r\n" % len(body)
            if self._head_method:
                body = b""
        if not keep:
            conn = b"Connection: close\r\n"
        else:
            conn = b"" if self._http11 else b"Connection: keep-alive\r\n"
        return b"".join((line, fields, length, conn, b"\r\n", body))

    def start_next_cycle(self) -> None:
        """Starts reading the next (possibly already buffered) request.

        Raises:
            RuntimeError: the request is not complete, not answered, or the connection must
                close.
        """
        if self._state != _DONE or not self._responded:
            raise RuntimeError("the request is not read to its end or not answered")
        if not self._keep_alive:
            raise RuntimeError("the connection must close")
        self._state = _HEAD
        self._responded = False
        self._head_method = False
        self._scanned = 0

    # -- internals ---------------------------------------------------------------------------

    def _need(self) -> Event:
        if self._eof:
            raise ProtocolError(400, "connection closed inside a request")
        return NEED_DATA

    def _body_data(self, remaining: int) -> Event:
        buf = self._buf
        pos = self._pos
        end = pos + remaining
        if end > len(buf):
            end = len(buf)
            if end == pos:
                return self._need()
        self._pos = end
        self._remaining = remaining - (end - pos)
        self._continue = False
        return Data(buf[pos:end])

    def _read_head(self) -> Event:
        buf = self._buf
        pos = self._pos
        if buf.startswith((b"\r", b"\n"), pos):
            pos = self._skip_empty_lines(buf, pos)
        frm = pos + max(0, self._scanned - 3)  # an end that started earlier was found earlier
        # Fast path: the usual CRLF CRLF, parsed by parse_head_crlf.  It declines (None) a
        # head with a bare LF, whose real end may come earlier; find_head_end then finds it.
        end = buf.find(b"\r\n\r\n", frm) + 4
        head = None
        if 4 <= end - pos <= self.max_header_bytes:
            head = parse_head_crlf(buf[pos : end - 4])
        if head is None:
            end = find_head_end(buf, frm)
            if end < 0:
                return self._head_incomplete(len(buf) - pos)
            if end - pos > self.max_header_bytes:
                raise ProtocolError(431, f"request head over {self.max_header_bytes} bytes")
            head = parse_head(buf[pos:end])
        method, target, version, headers = head
        http11 = version == b"1.1"
        framing = decide_framing(headers, http11, self.max_body_bytes)
        self._pos = end
        self._scanned = 0
        self._http11 = http11
        self._keep_alive = framing.keep_alive and not self._eof
        self._head_method = method == b"HEAD"
        self._continue = framing.expect_continue and end == len(buf)
        if framing.length >= 0:
            self._state = _BODY
            self._remaining = framing.length
        else:
            self._state = _CHUNK_HEAD
            self._body_total = 0
        return Request(method, target, version, headers)

    def _head_incomplete(self, avail: int) -> Event:
        if avail >= self.max_header_bytes:  # the end needs at least one more byte
            raise ProtocolError(431, f"request head over {self.max_header_bytes} bytes")
        if self._eof:
            if avail:
                raise ProtocolError(400, "connection closed inside a request head")
            self._state = _CLOSED
            return CONNECTION_CLOSED
        self._scanned = avail
        return NEED_DATA

    def _skip_empty_lines(self, buf: bytes, pos: int) -> int:
        # RFC 9112 2.2: a server SHOULD ignore empty lines before a request line.  Rare: an
        # old client's stray CRLF after a body.
        while True:
            if buf.startswith(b"\r\n", pos):
                pos += 2
            elif buf.startswith(b"\n", pos):
                pos += 1
            else:
                break
        if pos != self._pos:
            self._pos = pos
            self._scanned = 0
        return pos

    def _read_chunk_line(self) -> bool:
        buf = self._buf
        pos = self._pos
        end = buf.find(b"\r\n", pos + max(0, self._scanned - 1))
        if end < 0:
            avail = len(buf) - pos
            if avail > MAX_CHUNK_LINE + 1 or buf.find(b"\n", pos) >= 0:
                raise ProtocolError(400, "malformed chunk line")
            self._scanned = avail
            return False
        if end - pos > MAX_CHUNK_LINE:
            raise ProtocolError(400, "malformed chunk line")
        size = parse_chunk_size(buf, pos, end)
        self._pos = end + 2
        self._scanned = 0
        if size == 0:
            self._state = _TRAILERS
            return True
        total = self._body_total + size
        if total > self.max_body_bytes:
            raise ProtocolError(413, f"body over {self.max_body_bytes} bytes")
        self._body_total = total
        self._remaining = size
        self._state = _CHUNK_DATA
        return True

    def _read_chunk_end(self) -> bool:
        pos = self._pos
        tail = self._buf[pos : pos + 2]
        if tail == b"\r\n":
            self._pos = pos + 2
            self._state = _CHUNK_HEAD
            return True
        if tail != b"\r" and tail:
            raise ProtocolError(400, "chunk data not followed by CRLF")
        return False

    def _read_trailers(self) -> Event:
        buf = self._buf
        pos = self._pos
        trailers: tuple[tuple[bytes, bytes], ...] = ()
        if buf.startswith(b"\r\n", pos):
            end = pos + 2
        elif buf.startswith(b"\n", pos):
            end = pos + 1
        else:
            end = find_head_end(buf, pos + max(0, self._scanned - 2))
            if end < 0:
                avail = len(buf) - pos
                if avail >= self.max_header_bytes:
                    raise ProtocolError(431, f"trailers over {self.max_header_bytes} bytes")
                self._scanned = avail
                return self._need()
            if end - pos > self.max_header_bytes:
                raise ProtocolError(431, f"trailers over {self.max_header_bytes} bytes")
            trailers = tuple(parse_trailers(buf[pos:end]))
        self._pos = end
        self._scanned = 0
        self._state = _DONE
        return EndOfMessage(trailers) if trailers else END_OF_MESSAGE


def _check_fields(fields: bytes, count: int) -> None:
    """Refuses response headers that would split the answer or that `send_response` owns."""
    if fields.count(b"\n") != count - 1 or fields.count(b"\r") != count - 1:
        raise ValueError("CR or LF in a response header")
    low = b"\n" + fields.lower()
    for name in _RESERVED:
        if name in low:
            raise ValueError(f"send_response sets {name[1:-1].decode()} itself")
