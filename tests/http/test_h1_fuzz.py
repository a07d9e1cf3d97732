"""Hypothesis: valid pipelined requests, serialized and cut anywhere, parse to the events they
were built from; damaged bytes give one outcome however they are cut."""

from __future__ import annotations

import string
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from aiokv.http.h1 import ConnectionClosed, Data, EndOfMessage, Request
from tests.http.test_h1 import drive

_TOKEN_CHARS = "!#$%&'*+-.^_`|~" + string.ascii_letters + string.digits
_RESERVED = {b"host", b"content-length", b"transfer-encoding", b"connection", b"expect"}
_VCHAR = [c for c in range(0x21, 0x100) if c != 0x7F]

tokens = st.text(_TOKEN_CHARS, min_size=1, max_size=10).map(str.encode)
names = tokens.filter(lambda n: n.lower() not in _RESERVED)
words = st.lists(st.sampled_from(_VCHAR), min_size=1, max_size=8).map(bytes)
ows = st.sampled_from([b"", b" ", b"\t", b"  \t"])
eols = st.sampled_from([b"\r\n", b"\n"])


@st.composite
def field_values(draw: st.DrawFn) -> bytes:
    parts = draw(st.lists(words, max_size=3))
    return b"".join(
        p + (draw(st.sampled_from([b" ", b"\t", b" \t "])) if i < len(parts) - 1 else b"")
        for i, p in enumerate(parts)
    )


@st.composite
def fields(draw: st.DrawFn, pairs: list[tuple[bytes, bytes]]) -> bytes:
    """Field lines for `pairs`, with random OWS and line ends."""
    return b"".join(
        name + b":" + draw(ows) + value + draw(ows) + draw(eols) for name, value in pairs
    )


@st.composite
def chunked(draw: st.DrawFn, body: bytes, trailers: list[tuple[bytes, bytes]]) -> bytes:
    cuts = sorted(set(draw(st.lists(st.integers(0, len(body)), max_size=4))))
    pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    out = []
    for piece in [p for p in pieces if p] + [b""]:
        size = b"%x" % len(piece)
        if draw(st.booleans()):
            size = size.upper()
        size = b"0" * draw(st.integers(0, 2)) + size
        ext = draw(
            st.sampled_from([b"", b";a", b";a=b", b' ; a = "q \\" s"', b";x;y=1", b"\t;n=v"])
        )
        out.append(size + ext + b"\r\n" + (piece + b"\r\n" if piece else b""))
    out.append(draw(fields(trailers)) + draw(eols))
    return b"".join(out)


@st.composite
def requests(draw: st.DrawFn, last: bool) -> tuple[bytes, list[Any]]:
    """One request's bytes and the events it should give (with its answer's keep-alive)."""
    method = draw(tokens)
    target = b"/" + draw(st.text(string.printable[:94], max_size=12)).encode()
    version = draw(st.sampled_from([b"1.1", b"1.1", b"1.0"]))
    body = draw(st.binary(max_size=40))
    framing = draw(st.sampled_from(["length", "chunked"] if version == b"1.1" else ["length"]))
    if framing == "length" and not body and draw(st.booleans()):
        framing = "none"
    pairs = draw(st.lists(st.tuples(names, field_values()), max_size=5))
    if version == b"1.1":
        pairs.insert(draw(st.integers(0, len(pairs))), (b"Host", b"example"))
    if framing == "length":
        pairs.append((b"Content-Length", b"%d" % len(body)))
    elif framing == "chunked":
        pairs.append((b"Transfer-Encoding", b"chunked"))
    close = last and draw(st.booleans())
    if close:
        pairs.append((b"Connection", b"close"))
    elif version == b"1.0":
        pairs.append((b"Connection", b"keep-alive"))
    data = method + b" " + target + b" HTTP/" + version + draw(eols)
    data += draw(fields(pairs)) + draw(eols)
    trailers: list[tuple[bytes, bytes]] = []
    if framing == "chunked":
        trailers = draw(st.lists(st.tuples(names, field_values()), max_size=2))
        data += draw(chunked(body, trailers))
    else:
        data += body
    events: list[Any] = [Request(method, target, version, [(n.lower(), v) for n, v in pairs])]
    if body:
        events.append(Data(body))
    events.append(EndOfMessage(tuple((n.lower(), v) for n, v in trailers)))
    events.append(("response", not close))
    return data, events


@st.composite
def pipelines(draw: st.DrawFn) -> tuple[bytes, list[Any]]:
    count = draw(st.integers(1, 3))
    data = b""
    events: list[Any] = []
    for i in range(count):
        one, expected = draw(requests(last=i == count - 1))
        data += one
        events += expected
    if events[-1] == ("response", True):
        events.append(ConnectionClosed())
    return data, events


def cut(data: bytes, points: list[int]) -> list[bytes]:
    points = sorted({p % (len(data) + 1) for p in points})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@given(pipelines(), st.lists(st.integers(0, 10_000), max_size=8))
def test_valid_requests_cut_anywhere_give_the_events_they_were_built_from(
    pipeline: tuple[bytes, list[Any]], points: list[int]
) -> None:
    data, expected = pipeline
    assert drive([data]) == expected
    assert drive(cut(data, points)) == expected


@given(
    pipelines(),
    st.lists(st.tuples(st.integers(0, 10_000), st.binary(max_size=2)), min_size=1, max_size=3),
    st.lists(st.integers(0, 10_000), max_size=8),
)
def test_damaged_requests_give_one_outcome_however_they_are_cut(
    pipeline: tuple[bytes, list[Any]], edits: list[tuple[int, bytes]], points: list[int]
) -> None:
    data, _ = pipeline
    for at, replacement in edits:
        at %= len(data) + 1
        data = data[:at] + replacement + data[at + 1 :]
    whole = drive([data], max_header_bytes=200, max_body_bytes=30)
    assert drive(cut(data, points), max_header_bytes=200, max_body_bytes=30) == whole
    assert (
        drive([data[i : i + 1] for i in range(len(data))], max_header_bytes=200, max_body_bytes=30)
        == whole
    )
