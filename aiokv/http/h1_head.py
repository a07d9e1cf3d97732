"""Request heads, framing and chunk lines for `aiokv.http.h1`: RFC 9112 sections 2-7, no I/O.

    request-head    := *eol request-line eol *( field-line eol ) eol
    request-line    := method SP request-target SP "HTTP/" DIGIT "." DIGIT
    field-line      := field-name ":" OWS field-value OWS
    eol             := CRLF / LF
    chunked-body    := *chunk last-chunk trailer-section eol
    chunk           := chunk-size [ chunk-ext ] CRLF chunk-data CRLF
    last-chunk      := 1*"0" [ chunk-ext ] CRLF
    chunk-ext       := *( BWS ";" BWS token [ BWS "=" BWS ( token / quoted-string ) ] )
    trailer-section := *( field-line eol )

The choices RFC 9112 leaves open, and the one taken:
1. A head or trailer line may end in a bare LF (section 2.2 allows it for robustness).  Chunk
   lines and the end of chunk data must be CRLF: lenient chunk framing is what request
   smuggling through a front proxy feeds on, and no client sends bare LFs there.
2. A bare CR anywhere in the head is 400 (the alternative, replacing it with SP, hides bugs).
3. obs-fold (a line starting with SP or HTAB, which includes whitespace between the request
   line and the first field), whitespace before ":" and control characters in a value are 400.
4. Content-Length is 1*DIGIT in a single field; "42, 42" and repeated fields are 400 (the RFC
   also allows accepting identical repeats; refusing them closes a smuggling door).
5. Transfer-Encoding "chunked" alone is the one coding supported.  Chunked missing or not
   last (body length unknowable) is 400, other codings before a final chunked are 501, any
   Transfer-Encoding in an HTTP/1.0 request is 400, and with Content-Length it is 400.
6. An HTTP/1.1 request needs exactly one Host field (section 3.2 says MUST: 400 otherwise).
7. The request target is visible ASCII; HTTP/1.x with x > 1 reads as 1.1; another major is 505.
"""

from __future__ import annotations

import re
from itertools import repeat
from typing import Final, NamedTuple

from aiokv.http.h1_events import Headers, ProtocolError

MAX_CHUNK_LINE: Final = 4096  # chunk size plus extensions; real clients send a few bytes

_TOKEN = rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+"
_QUOTED = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
_REQUEST_LINE = re.compile(rb"(" + _TOKEN + rb") ([\x21-\x7e]+) HTTP/([0-9])\.([0-9])")
_TOKEN_RE = re.compile(_TOKEN)
_NAMES = re.compile(_TOKEN + rb"(?:\n" + _TOKEN + rb")*")  # all field names, joined by LF
_CTL = bytes(range(9)) + bytes(range(10, 32)) + b"\x7f"  # CTL but HTAB (RFC 5234)
_COLONS = repeat(b":")  # second argument of bytes.partition through map
_OWS = repeat(b" \t")  # second argument of bytes.strip through map
_CHUNK_LINE = re.compile(
    rb"([0-9A-Fa-f]+)(?:[ \t]*;[ \t]*"
    + _TOKEN
    + rb"(?:[ \t]*=[ \t]*(?:"
    + _TOKEN
    + rb"|"
    + _QUOTED
    + rb"))?)*"
)
_MAX_LENGTH_DIGITS: Final = 18  # more significant digits than any body limit: 413, not int()


class Framing(NamedTuple):
    """What a request head says about its body and its connection."""

    length: int  # body bytes, or -1 for a chunked body
    keep_alive: bool
    expect_continue: bool  # the client waits for "100 Continue" before it sends the body


def find_head_end(buf: bytes, start: int) -> int:
    """Returns the offset just past the empty line that ends a head, searching from `start`
    (the head must have no empty line before it), or -1.

    >>> find_head_end(b"GET / HTTP/1.1\\r\\nHost: a\\r\\n\\r\\nrest", 0)
    27
    >>> find_head_end(b"GET / HTTP/1.1\\nHost: a\\n\\n", 0), find_head_end(b"GET / HTTP", 0)
    (24, -1)
    """
    crlf = buf.find(b"\n\r\n", start)
    if crlf < 0:
        lf = buf.find(b"\n\n", start)
        return lf + 2 if lf >= 0 else -1
    lf = buf.find(b"\n\n", start, crlf + 1)  # an LF-only empty line earlier still ends the head
    return lf + 2 if lf >= 0 else crlf + 3


def parse_head_crlf(block: bytes) -> tuple[bytes, bytes, bytes, Headers] | None:
    """The fast path of `parse_head`, for a head whose lines all end in CRLF.

    `block` runs from the request line to the CRLF CRLF that ends the head, exclusive.
    Returns None when a line ends in a bare LF (the head may then end earlier than the
    CRLF CRLF the caller found) or the block holds any other control character: the caller
    then finds the end with `find_head_end` and calls `parse_head`.

    >>> parse_head_crlf(b"GET / HTTP/1.1\\r\\nHost: a")
    (b'GET', b'/', b'1.1', [(b'host', b'a')])
    >>> parse_head_crlf(b"GET / HTTP/1.1\\nHost: a") is None
    True
    """
    line, _, fields = block.partition(b"\r\n")
    lines = fields.split(b"\r\n") if fields else []
    # Every control character but HTAB is deleted: exactly the CRLFs between lines may go.
    if len(block) - len(block.translate(None, _CTL)) != 2 * len(lines):
        return None
    return (*_request_line(line), _fields(lines))


def parse_head(block: bytes) -> tuple[bytes, bytes, bytes, Headers]:
    """Parses a request head, from the request line through the empty line that ends it.

    Returns:
        (method, target, http_version, headers): http_version is b"1.0" or b"1.1"; header
        names are lower-cased and values stripped of surrounding whitespace.
    Raises:
        ProtocolError: 400 for bad syntax, 505 for an HTTP major version other than 1.

    >>> parse_head(b"GET /x HTTP/1.1\\r\\nHost: a\\nX-Y:  b c \\r\\n\\r\\n")
    (b'GET', b'/x', b'1.1', [(b'host', b'a'), (b'x-y', b'b c')])
    """
    line, _, fields = _normalize(block, "request head").partition(b"\n")
    return (*_request_line(line), _fields(fields.split(b"\n") if fields else []))


def parse_trailers(block: bytes) -> Headers:
    """Parses a trailer section through its ending empty line, as `parse_head` does fields."""
    text = _normalize(block, "trailer section")
    return _fields(text.split(b"\n"))


def _normalize(block: bytes, what: str) -> bytes:
    """The lines of a head or trailer section (through its empty line) joined by LF alone."""
    text = block.replace(b"\r\n", b"\n")[:-2]
    if b"\r" in text:
        raise ProtocolError(400, f"bare CR in the {what}")
    if len(text) - len(text.translate(None, _CTL)) != text.count(b"\n"):
        raise ProtocolError(400, f"control character in the {what}")
    return text


def _request_line(line: bytes) -> tuple[bytes, bytes, bytes]:
    match = _REQUEST_LINE.fullmatch(line)
    if match is None:
        raise ProtocolError(400, "malformed request line")
    method, target, major, minor = match.groups()
    if major != b"1":
        raise ProtocolError(505, f"HTTP version {major.decode()}.{minor.decode()} not supported")
    return method, target, b"1.0" if minor == b"0" else b"1.1"


def _fields(lines: list[bytes]) -> Headers:
    """Splits field lines (free of control characters but HTAB) into lower-cased pairs.

    C-level steps only: one partition per line through map, the names validated and
    lower-cased joined, the values stripped through map.
    """
    if not lines:
        return []
    names, colons, values = zip(*map(bytes.partition, lines, _COLONS), strict=True)
    joined = b"\n".join(names)
    if b"" in colons or _NAMES.fullmatch(joined) is None:
        raise ProtocolError(400, _field_fault(lines))
    return list(zip(joined.lower().split(b"\n"), map(bytes.strip, values, _OWS), strict=True))


def _field_fault(lines: list[bytes]) -> str:
    """Names what is wrong with the first bad field line (the error path only)."""
    for line in lines:
        name, colon, _ = line.partition(b":")
        if colon and _TOKEN_RE.fullmatch(name):
            continue
        if line[:1] in (b" ", b"\t"):
            return "obs-fold or whitespace before a field line"
        if not line:
            return "empty line inside the head"
        if not colon:
            return "field line without a colon"
        if name != name.rstrip(b" \t"):
            return "whitespace between a field name and the colon"
        return "invalid field name"
    raise AssertionError("no bad field line")  # pragma: no cover


def decide_framing(headers: Headers, http11: bool, max_body: int) -> Framing:
    """Reads body length, keep-alive and 100-continue from a request's headers.

    Raises:
        ProtocolError: 400 for bad or conflicting framing or Host, 413 for a Content-Length
        over `max_body`, 501 for a transfer coding other than chunked.

    >>> decide_framing([(b"host", b"a"), (b"content-length", b"2")], True, 10)
    Framing(length=2, keep_alive=True, expect_continue=False)
    >>> decide_framing([(b"connection", b"keep-alive")], False, 10)
    Framing(length=0, keep_alive=True, expect_continue=False)
    """
    fields = dict(headers)
    if len(fields) != len(headers):
        fields = _merge_repeats(headers)
    te = fields.get(b"transfer-encoding")
    cl = fields.get(b"content-length")
    if te is not None:
        if cl is not None:
            raise ProtocolError(400, "both Content-Length and Transfer-Encoding")
        if not http11:
            raise ProtocolError(400, "Transfer-Encoding in an HTTP/1.0 request")
        _check_chunked(te)
        length = -1
    elif cl is not None:
        if not cl.isdigit():
            raise ProtocolError(400, "invalid Content-Length")
        if len(cl.lstrip(b"0")) > _MAX_LENGTH_DIGITS or (length := int(cl)) > max_body:
            raise ProtocolError(413, f"body over {max_body} bytes")
    else:
        length = 0
    if http11 and b"host" not in fields:
        raise ProtocolError(400, "HTTP/1.1 request without Host")
    conn = fields.get(b"connection")
    if conn is None:
        keep_alive = http11
    else:
        conn = conn.lower()
        if conn == b"keep-alive" or conn == b"close":  # the usual single token
            keep_alive = conn == b"keep-alive"
        else:
            tokens = _tokens(conn)
            keep_alive = b"close" not in tokens and (http11 or b"keep-alive" in tokens)
    expect = fields.get(b"expect")
    expect_continue = (
        expect is not None and http11 and length != 0 and b"100-continue" in _tokens(expect)
    )
    return Framing(length, keep_alive, expect_continue)


def parse_chunk_size(buf: bytes, start: int, end: int) -> int:
    """Parses the chunk line buf[start:end] (without its CRLF) and returns the chunk size;
    extensions are checked and ignored.

    >>> parse_chunk_size(b'1A;name="v" ;x\\r\\n', 0, 14)
    26
    """
    match = _CHUNK_LINE.fullmatch(buf, start, end)
    if match is None:
        raise ProtocolError(400, "malformed chunk line")
    return int(match[1], 16)


def _merge_repeats(headers: Headers) -> dict[bytes, bytes]:
    """Joins repeated fields with ", "; a repeated Content-Length or Host is 400."""
    merged: dict[bytes, bytes] = {}
    for name, value in headers:
        if name in merged:
            if name == b"content-length" or name == b"host":
                raise ProtocolError(400, f"repeated {name.decode()}")
            value = merged[name] + b", " + value
        merged[name] = value
    return merged


def _tokens(value: bytes) -> set[bytes]:
    """The lower-cased members of a comma-separated list, empty members dropped."""
    return {t for t in (t.strip(b" \t") for t in value.lower().split(b",")) if t}


def _check_chunked(te: bytes) -> None:
    codings = [t for t in (t.strip(b" \t") for t in te.lower().split(b",")) if t]
    if not codings or codings[-1] != b"chunked" or b"chunked" in codings[:-1]:
        raise ProtocolError(400, "Transfer-Encoding must end with a single chunked")
    if len(codings) > 1:
        raise ProtocolError(501, "transfer coding " + codings[0].decode() + " not supported")
