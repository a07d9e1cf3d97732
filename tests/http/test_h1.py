"""The sans-IO HTTP/1.1 server connection: whole, byte at a time, pipelined, malformed, limits."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from aiokv.http.h1 import (
    NEED_DATA,
    PAUSED,
    Connection,
    ConnectionClosed,
    Data,
    EndOfMessage,
    ProtocolError,
    Request,
)
from aiokv.http.h1_head import MAX_CHUNK_LINE

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def drive(chunks: Iterable[bytes], *, eof: bool = True, **limits: int) -> list[Any]:
    """Feeds the non-empty `chunks` (then EOF) to a Connection; answers each request 200 "ok".

    Returns the events, with ("response", keep_alive) after each answer and ("error", status)
    for the ProtocolError that ends a run.  Adjacent Data events are merged: how a body is
    cut into them depends only on how its bytes arrived.
    """
    conn = Connection(**limits)
    out: list[Any] = []
    for chunk in [*filter(None, chunks), b""] if eof else filter(None, chunks):
        conn.receive_data(chunk)
        while True:
            try:
                event = conn.next_event()
            except ProtocolError as exc:
                out.append(("error", exc.status))
                return out
            if event is NEED_DATA:
                break
            if event is PAUSED:
                conn.send_response(200, [], b"ok")
                out.append(("response", conn.keep_alive))
                if not conn.keep_alive:
                    return out
                conn.start_next_cycle()
            elif isinstance(event, Data) and out and isinstance(out[-1], Data):
                out[-1] = Data(out[-1].data + event.data)
            else:
                out.append(event)
                if isinstance(event, ConnectionClosed):
                    return out
    return out


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def post(body: bytes = b"hello", *extra: bytes) -> bytes:
    fields = b"".join(e + b"\r\n" for e in extra)
    return b"POST / HTTP/1.1\r\nHost: h\r\n%sContent-Length: %d\r\n\r\n%s" % (
        fields,
        len(body),
        body,
    )


def request(*fields: bytes, version: bytes = b"1.1", body: bytes = b"") -> bytes:
    return b"POST / HTTP/%s\r\n%s\r\n%s" % (version, b"".join(f + b"\r\n" for f in fields), body)


def status_of(data: bytes, **limits: int) -> int | None:
    """The status of the ProtocolError the bytes raise, fed whole; None if none."""
    for item in drive([data], **limits):
        if isinstance(item, tuple) and item[0] == "error":
            return int(item[1])
    return None


CHUNKED = (
    b"POST /t?x=1 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n"
    b'6;name=value;q="a \\"b\\""\r\n world\r\n'
    b"0a ; ext\r\n0123456789\r\n"
    b"0\r\nX-Checksum: abc\r\nX-Other:  two words \r\n\r\n"
)
SAMPLES = {
    "content-length": post(b'{"TableName": "t"}', b"X-Amz-Target: DynamoDB_20120810.GetItem"),
    "chunked": CHUNKED,
    "no-body": b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
    "lf-only": b"GET /a HTTP/1.1\nHost: h\nX: y\n\n",
    "pipelined": post(b"one") + b"GET /two HTTP/1.1\r\nHost: h\r\n\r\n" + post(b"three"),
    "leading-empty-lines": b"\r\n\n\r\n" + post(b"x"),
    "http10": b"GET / HTTP/1.0\r\n\r\n",
}


# -- whole requests ------------------------------------------------------------------------


def test_content_length_request_gives_request_data_end_then_paused() -> None:
    conn = Connection()
    conn.receive_data(post(b"hello", b"X-Amz-Target: Op", b"Content-Type:application/json"))
    assert conn.next_event() == Request(
        b"POST",
        b"/",
        b"1.1",
        [
            (b"host", b"h"),
            (b"x-amz-target", b"Op"),
            (b"content-type", b"application/json"),
            (b"content-length", b"5"),
        ],
    )
    assert conn.next_event() == Data(b"hello")
    assert conn.next_event() == EndOfMessage()
    assert conn.next_event() is PAUSED
    assert conn.next_event() is PAUSED


def test_header_names_are_lowercased_and_values_keep_case_without_surrounding_whitespace() -> None:
    conn = Connection()
    conn.receive_data(request(b"HoSt:   A b\t ", b"X-E:", b"X-F: \t"))
    event = conn.next_event()
    assert isinstance(event, Request)
    assert event.headers == [(b"host", b"A b"), (b"x-e", b""), (b"x-f", b"")]


def test_obs_text_in_a_value_is_kept() -> None:
    conn = Connection()
    conn.receive_data(request(b"Host: h", b"X-Name: caf\xc3\xa9"))
    event = conn.next_event()
    assert isinstance(event, Request)
    assert event.headers[1] == (b"x-name", b"caf\xc3\xa9")


def test_request_without_body_ends_at_once() -> None:
    assert drive([SAMPLES["no-body"]]) == [
        Request(b"GET", b"/", b"1.1", [(b"host", b"h")]),
        EndOfMessage(),
        ("response", True),
        ConnectionClosed(),
    ]


def test_chunked_body_with_extensions_and_trailers() -> None:
    assert drive([CHUNKED]) == [
        Request(
            b"POST",
            b"/t?x=1",
            b"1.1",
            [(b"host", b"h"), (b"transfer-encoding", b"chunked")],
        ),
        Data(b"hello world0123456789"),
        EndOfMessage(
            ((b"x-checksum", b"abc"), (b"x-other", b"two words")),
        ),
        ("response", True),
        ConnectionClosed(),
    ]


def test_chunked_body_emits_each_chunk_as_it_arrives() -> None:
    conn = Connection()
    conn.receive_data(request(b"Host: h", b"Transfer-Encoding: chunked"))
    assert isinstance(conn.next_event(), Request)
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"3\r\nab")
    assert conn.next_event() == Data(b"ab")
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"c\r\n0\r\n\r\n")
    assert conn.next_event() == Data(b"c")
    assert conn.next_event() == EndOfMessage()


def test_lf_only_line_ends_are_accepted_in_head_and_trailers() -> None:
    data = b"POST / HTTP/1.1\nHost: h\r\nTransfer-Encoding: chunked\n\n1\r\nz\r\n0\r\nT: v\n\n"
    assert drive([data])[1:3] == [Data(b"z"), EndOfMessage(((b"t", b"v"),))]


def test_lf_only_request_ends_at_its_own_empty_line_before_a_later_crlf_one() -> None:
    data = b"GET /1 HTTP/1.1\nHost: h\n\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n"
    targets = [e.target for e in drive([data]) if isinstance(e, Request)]
    assert targets == [b"/1", b"/2"]


def test_empty_lines_before_a_request_line_are_ignored() -> None:
    assert drive([SAMPLES["leading-empty-lines"]])[:2] == drive([post(b"x")])[:2]


def test_only_empty_lines_then_eof_is_a_clean_close() -> None:
    assert drive([b"\r\n\r\n"]) == [ConnectionClosed()]


def test_later_http_1x_minor_versions_read_as_1_1() -> None:
    event = drive([b"GET / HTTP/1.7\r\nHost: h\r\n\r\n"])[0]
    assert event.http_version == b"1.1"


# -- byte at a time and pipelining ----------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_byte_at_a_time_gives_the_same_events_as_whole(name: str) -> None:
    data = SAMPLES[name]
    whole = drive([data])
    assert whole[-1] == ConnectionClosed() or whole[-1] == ("response", False)
    assert drive(bytewise(data)) == whole


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_two_way_split_gives_the_same_events_as_whole(name: str) -> None:
    data = SAMPLES[name]
    whole = drive([data])
    for cut in range(len(data) + 1):
        assert drive([data[:cut], data[cut:]]) == whole, cut


def test_pipelined_requests_in_one_buffer_are_answered_in_order() -> None:
    events = drive([SAMPLES["pipelined"]])
    assert [e.target for e in events if isinstance(e, Request)] == [b"/", b"/two", b"/"]
    assert [e for e in events if isinstance(e, Data)] == [Data(b"one"), Data(b"three")]
    assert events.count(("response", True)) == 3


def test_pipelined_request_waits_for_the_answer_and_start_next_cycle() -> None:
    conn = Connection()
    conn.receive_data(post(b"a") + post(b"b"))
    assert [conn.next_event() for _ in range(3)] == [
        conn_request(b"1"),
        Data(b"a"),
        EndOfMessage(),
    ]
    assert conn.next_event() is PAUSED
    with pytest.raises(RuntimeError):
        conn.start_next_cycle()
    conn.send_response(200, [], b"")
    assert conn.next_event() is PAUSED
    conn.start_next_cycle()
    assert conn.next_event() == conn_request(b"1")
    assert conn.next_event() == Data(b"b")


def conn_request(length: bytes) -> Request:
    return Request(b"POST", b"/", b"1.1", [(b"host", b"h"), (b"content-length", length)])


def test_garbage_after_a_request_is_a_400_for_the_next_one() -> None:
    assert drive([post(b"x") + b"\x00\x01garbage\r\n\r\n"])[-2:] == [
        ("response", True),
        ("error", 400),
    ]


def test_body_bytes_are_not_parsed_as_a_head() -> None:
    body = b"GET /evil HTTP/1.1\r\nHost: h\r\n\r\n"
    events = drive([post(body)])
    assert [e.target for e in events if isinstance(e, Request)] == [b"/"]
    assert Data(body) in events


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"GET /\r\nHost: h\r\n\r\n", 400),
        (b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        (b"GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400),
        (b"GET / http/1.1\r\nHost: h\r\n\r\n", 400),
        (b"GET / HTTP/11\r\nHost: h\r\n\r\n", 400),
        (b"GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        (b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        (b"G(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        (b"GET /\x7f HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
        (b"GET / HTTP/1.1\rHost: h\r\n\r\n", 400),
    ],
)
def test_malformed_request_line(data: bytes, status: int) -> None:
    assert status_of(data) == status


@pytest.mark.parametrize(
    "field",
    [
        b"Host h",  # no colon
        b"Host : h",  # whitespace before the colon
        b"Ho st: h",
        b"Ho\x00st: h",
        b": h",  # empty name
        b"X: a\x00b",  # NUL in a value
        b"X: a\x7fb",  # DEL
        b"X: a\x0bb",  # VT
        b"X: a\rb",  # bare CR inside a value
        b"X: a\r",  # bare CR before CRLF
        b"X: caf\xc3\xa9\x01",
        b"X: h\r\n folded",  # obs-fold
        b"X: h\r\n\tfolded",
    ],
)
def test_malformed_field_line_is_400(field: bytes) -> None:
    assert status_of(request(b"Host: h", field)) == 400


def test_whitespace_between_request_line_and_first_field_is_400() -> None:
    assert status_of(b"GET / HTTP/1.1\r\n Host: h\r\n\r\n") == 400


@pytest.mark.parametrize(
    "fields",
    [
        (b"Content-Length: 5", b"Content-Length: 5"),
        (b"Content-Length: 5, 5",),
        (b"Content-Length: -1",),
        (b"Content-Length: +5",),
        (b"Content-Length: 0x5",),
        (b"Content-Length: 5 5",),
        (b"Content-Length:",),
        (b"Content-Length: \xd9\xa5",),  # an Arabic-Indic five: digits are ASCII only
    ],
)
def test_repeated_or_invalid_content_length_is_400(fields: tuple[bytes, ...]) -> None:
    assert status_of(request(b"Host: h", *fields, body=b"hello")) == 400


def test_content_length_with_leading_zeros_is_accepted() -> None:
    assert Data(b"hello") in drive([request(b"Host: h", b"Content-Length: 0005", body=b"hello")])


def test_content_length_and_transfer_encoding_together_is_400_and_closes() -> None:
    conn = Connection()
    conn.receive_data(request(b"Host: h", b"Content-Length: 3", b"Transfer-Encoding: chunked"))
    with pytest.raises(ProtocolError) as err:
        conn.next_event()
    assert err.value.status == 400
    assert not conn.keep_alive
    with pytest.raises(ProtocolError) as again:
        conn.next_event()
    assert again.value is err.value
    assert b"Connection: close\r\n" in conn.send_response(400, [], b"bad")


@pytest.mark.parametrize(
    ("te", "status"),
    [
        (b"gzip, chunked", 501),
        (b"deflate,chunked", 501),
        (b"gzip", 400),
        (b"chunked, gzip", 400),
        (b"chunked, chunked", 400),
        (b"identity", 400),
        (b"", 400),
    ],
)
def test_transfer_encoding_other_than_chunked(te: bytes, status: int) -> None:
    assert status_of(request(b"Host: h", b"Transfer-Encoding: " + te)) == status


def test_transfer_encoding_is_case_insensitive_and_may_be_split_over_fields() -> None:
    data = request(b"Host: h", b"Transfer-Encoding: ", b"transfer-encoding: CHUNKED")
    assert Data(b"a") in drive([data + b"1\r\na\r\n0\r\n\r\n"])


def test_transfer_encoding_in_http_1_0_is_400() -> None:
    data = request(b"Transfer-Encoding: chunked", version=b"1.0", body=b"0\r\n\r\n")
    assert status_of(data) == 400


@pytest.mark.parametrize(
    "body",
    [
        b"x\r\nabc\r\n0\r\n\r\n",  # not hex
        b"\r\n",  # empty size
        b"-1\r\n",
        b"1 \r\nz\r\n0\r\n\r\n",  # whitespace without an extension
        b"1;\r\nz\r\n0\r\n\r\n",  # empty extension name
        b"1;a=\r\nz\r\n0\r\n\r\n",
        b'1;a="x\r\nz\r\n0\r\n\r\n',  # unterminated quoted string
        b"1;a b\r\nz\r\n0\r\n\r\n",
        b"1\nz\r\n0\r\n\r\n",  # chunk lines must end in CRLF
        b"1\r\nzz\r\n0\r\n\r\n",  # data longer than its size
        b"1\r\nz\n0\r\n\r\n",  # data not followed by CRLF
        b"1\r\nz\r0\r\n\r\n",
        b"0\r\nX : y\r\n\r\n",  # bad trailer
        b"0\r\nX: \x00\r\n\r\n",
        b"0\r\nX: y\r\r\n\r\n",
    ],
)
def test_bad_chunked_syntax_is_400(body: bytes) -> None:
    data = request(b"Host: h", b"Transfer-Encoding: chunked", body=body)
    assert status_of(data) == 400
    assert drive(bytewise(data))[-1] == ("error", 400)


def test_chunk_line_at_its_limit_is_accepted_and_one_past_is_400() -> None:
    ext = b";" + b"e" * (MAX_CHUNK_LINE - 2)
    head = request(b"Host: h", b"Transfer-Encoding: chunked")
    at = head + b"1" + ext + b"\r\nz\r\n0\r\n\r\n"
    past = head + b"1" + ext + b"e\r\nz\r\n0\r\n\r\n"
    assert Data(b"z") in drive([at])
    assert status_of(past) == 400
    assert drive(bytewise(past))[-1] == ("error", 400)


@pytest.mark.parametrize(
    "fields",
    [(), (b"Host: a", b"Host: b"), (b"Host: a", b"host: a")],
)
def test_http_1_1_needs_exactly_one_host(fields: tuple[bytes, ...]) -> None:
    assert status_of(request(*fields)) == 400


def test_http_1_0_needs_no_host() -> None:
    assert isinstance(drive([SAMPLES["http10"]])[0], Request)


def test_eof_inside_a_head_is_400() -> None:
    assert drive([b"GET / HTTP/1.1\r\nHost:"]) == [("error", 400)]


def test_eof_inside_a_body_is_400() -> None:
    assert drive([post(b"hello")[:-1]])[-1] == ("error", 400)
    chunked = request(b"Host: h", b"Transfer-Encoding: chunked", body=b"1\r\nz\r\n")
    assert drive([chunked])[-1] == ("error", 400)


def test_eof_between_requests_is_a_clean_close() -> None:
    conn = Connection()
    conn.receive_data(b"")
    assert conn.next_event() == ConnectionClosed()
    assert conn.next_event() == ConnectionClosed()
    with pytest.raises(RuntimeError):
        conn.receive_data(b"x")


# -- limits ----------------------------------------------------------------------------------


def head_of_size(size: int) -> bytes:
    base = b"GET / HTTP/1.1\r\nHost: h\r\nX: \r\n\r\n"
    return base.replace(b"X: ", b"X: " + b"a" * (size - len(base)))


@pytest.mark.parametrize("feed", ["whole", "bytewise"])
def test_head_exactly_at_the_limit_is_accepted_and_one_past_is_431(feed: str) -> None:
    def run(data: bytes) -> list[Any]:
        return drive([data] if feed == "whole" else bytewise(data), max_header_bytes=100)

    assert len(head_of_size(100)) == 100
    assert isinstance(run(head_of_size(100))[0], Request)
    assert run(head_of_size(101)) == [("error", 431)]


def test_endless_head_is_431_without_waiting_for_its_end() -> None:
    conn = Connection(max_header_bytes=100)
    conn.receive_data(b"GET / HTTP/1.1\r\nX: " + b"a" * 200)
    with pytest.raises(ProtocolError) as err:
        conn.next_event()
    assert err.value.status == 431


def test_leading_empty_lines_do_not_count_toward_the_head_limit() -> None:
    assert isinstance(drive([b"\r\n" * 80 + head_of_size(100)], max_header_bytes=100)[0], Request)


def test_trailers_over_the_head_limit_are_431() -> None:
    head = request(b"Host: h", b"Transfer-Encoding: chunked")
    trailer = b"T: " + b"a" * 100 + b"\r\n\r\n"
    assert drive([head + b"0\r\n" + trailer], max_header_bytes=100)[-1] == ("error", 431)


@pytest.mark.parametrize("feed", ["whole", "bytewise"])
def test_content_length_at_the_body_limit_is_accepted_and_one_past_is_413(feed: str) -> None:
    def run(body: bytes) -> list[Any]:
        data = post(body)
        return drive([data] if feed == "whole" else bytewise(data), max_body_bytes=10)

    assert Data(b"a" * 10) in run(b"a" * 10)
    assert run(b"a" * 11) == [("error", 413)]


def test_oversized_content_length_is_413_before_any_body_arrives() -> None:
    conn = Connection(max_body_bytes=10)
    conn.receive_data(request(b"Host: h", b"Content-Length: 11"))
    with pytest.raises(ProtocolError) as err:
        conn.next_event()
    assert err.value.status == 413


def test_absurd_content_length_is_413() -> None:
    assert status_of(request(b"Host: h", b"Content-Length: " + b"9" * 5000)) == 413


@pytest.mark.parametrize("feed", ["whole", "bytewise"])
def test_chunked_body_at_the_limit_is_accepted_and_one_past_is_413(feed: str) -> None:
    head = request(b"Host: h", b"Transfer-Encoding: chunked")
    at = head + b"5\r\naaaaa\r\n5\r\naaaaa\r\n0\r\n\r\n"
    past = head + b"5\r\naaaaa\r\n6\r\naaaaaa\r\n0\r\n\r\n"

    def run(data: bytes) -> list[Any]:
        return drive([data] if feed == "whole" else bytewise(data), max_body_bytes=10)

    assert Data(b"a" * 10) in run(at)
    assert run(past)[-1] == ("error", 413)


def test_oversized_chunk_is_413_before_its_data_arrives() -> None:
    conn = Connection(max_body_bytes=10)
    conn.receive_data(request(b"Host: h", b"Transfer-Encoding: chunked", body=b"ffffffffff\r\n"))
    assert isinstance(conn.next_event(), Request)
    with pytest.raises(ProtocolError) as err:
        conn.next_event()
    assert err.value.status == 413


# -- keep-alive and close --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "connection", "keep_alive", "answer_says"),
    [
        (b"1.1", None, True, None),
        (b"1.1", b"close", False, b"close"),
        (b"1.1", b"Close", False, b"close"),
        (b"1.1", b"keep-alive, close", False, b"close"),
        (b"1.1", b"keep-alive", True, None),
        (b"1.1", b"upgrade", True, None),
        (b"1.0", None, False, b"close"),
        (b"1.0", b"keep-alive", True, b"keep-alive"),
        (b"1.0", b"Keep-Alive", True, b"keep-alive"),
        (b"1.0", b"te, keep-alive", True, b"keep-alive"),
        (b"1.0", b"close", False, b"close"),
    ],
)
def test_keep_alive_decision(
    version: bytes, connection: bytes | None, keep_alive: bool, answer_says: bytes | None
) -> None:
    fields = [b"Host: h"] + ([b"Connection: " + connection] if connection else [])
    conn = Connection()
    conn.receive_data(request(*fields, version=version))
    assert isinstance(conn.next_event(), Request)
    assert conn.next_event() == EndOfMessage()
    assert conn.keep_alive is keep_alive
    answer = conn.send_response(200, [], b"")
    if answer_says is None:
        assert b"Connection" not in answer
    else:
        assert b"\r\nConnection: " + answer_says + b"\r\n" in answer
    assert conn.keep_alive is keep_alive


def test_close_flag_on_the_answer_closes_and_forbids_a_next_cycle() -> None:
    conn = Connection()
    conn.receive_data(post(b"x") + post(b"y"))
    for _ in range(3):
        conn.next_event()
    assert b"Connection: close\r\n" in conn.send_response(503, [], b"", close=True)
    assert not conn.keep_alive
    with pytest.raises(RuntimeError):
        conn.start_next_cycle()


def test_answer_before_the_body_is_read_closes() -> None:
    conn = Connection()
    conn.receive_data(request(b"Host: h", b"Content-Length: 100", body=b"partial"))
    assert isinstance(conn.next_event(), Request)
    assert b"Connection: close\r\n" in conn.send_response(400, [], b"")
    assert not conn.keep_alive


def test_eof_after_a_complete_request_still_gets_an_answer_that_closes() -> None:
    conn = Connection()
    conn.receive_data(post(b"x"))
    conn.receive_data(b"")
    assert [conn.next_event() for _ in range(4)] == [
        conn_request(b"1"),
        Data(b"x"),
        EndOfMessage(),
        PAUSED,
    ]
    assert b"Connection: close\r\n" in conn.send_response(200, [], b"")


def test_answer_to_an_error_before_any_request_closes() -> None:
    conn = Connection()
    conn.receive_data(b"\x16\x03\x01 TLS hello\r\n\r\n")
    with pytest.raises(ProtocolError):
        conn.next_event()
    answer = conn.send_response(400, [(b"Content-Type", b"text/plain")], b"bad request")
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert answer.endswith(b"Content-Length: 11\r\nConnection: close\r\n\r\nbad request")


# -- 100-continue ----------------------------------------------------------------------------


def expecting(*extra: bytes, version: bytes = b"1.1") -> Connection:
    conn = Connection()
    conn.receive_data(
        request(b"Host: h", b"Expect: 100-continue", b"Content-Length: 5", *extra, version=version)
    )
    assert isinstance(conn.next_event(), Request)
    return conn


def test_100_continue_is_offered_once_before_the_body() -> None:
    conn = expecting()
    assert conn.expects_continue
    assert conn.next_event() is NEED_DATA
    assert conn.send_continue() == CONTINUE
    assert not conn.expects_continue
    assert conn.send_continue() == b""
    conn.receive_data(b"hello")
    assert conn.next_event() == Data(b"hello")
    assert conn.send_continue() == b""


def test_100_continue_is_not_offered_once_body_bytes_arrived() -> None:
    conn = expecting()
    conn.receive_data(b"he")
    assert not conn.expects_continue
    assert conn.send_continue() == b""


def test_100_continue_is_not_offered_when_the_body_came_with_the_head() -> None:
    conn = Connection()
    conn.receive_data(post(b"hello", b"Expect: 100-Continue"))
    assert isinstance(conn.next_event(), Request)
    assert conn.send_continue() == b""


@pytest.mark.parametrize(
    ("fields", "version"),
    [
        ((b"Host: h", b"Expect: 100-continue", b"Content-Length: 5"), b"1.0"),
        ((b"Host: h", b"Expect: 100-continue"), b"1.1"),  # no body
        ((b"Host: h", b"Expect: something-else", b"Content-Length: 5"), b"1.1"),
    ],
)
def test_100_continue_is_not_offered_without_a_body_or_in_http_1_0(
    fields: tuple[bytes, ...], version: bytes
) -> None:
    conn = Connection()
    conn.receive_data(request(*fields, version=version))
    assert isinstance(conn.next_event(), Request)
    assert conn.send_continue() == b""


def test_final_answer_instead_of_100_continue_withdraws_it_and_closes() -> None:
    conn = expecting()
    assert conn.send_response(413, [], b"").startswith(b"HTTP/1.1 413 Content Too Large\r\n")
    assert conn.send_continue() == b""
    assert not conn.keep_alive


def test_100_continue_is_offered_again_for_the_next_request() -> None:
    conn = expecting()
    assert conn.send_continue() == CONTINUE
    conn.receive_data(b"hello" + request(b"Host: h", b"Expect: 100-continue", b"Content-Length: 1"))
    assert [conn.next_event(), conn.next_event()] == [Data(b"hello"), EndOfMessage()]
    conn.send_response(200, [], b"")
    conn.start_next_cycle()
    assert isinstance(conn.next_event(), Request)
    assert conn.send_continue() == CONTINUE


# -- answers ---------------------------------------------------------------------------------


def answered(
    status: int, headers: list[tuple[bytes, bytes]], body: bytes, method: bytes = b"POST"
) -> bytes:
    conn = Connection()
    conn.receive_data(method + b" / HTTP/1.1\r\nHost: h\r\n\r\n")
    conn.next_event()
    conn.next_event()
    return conn.send_response(status, headers, body)


def test_answer_bytes_are_exact() -> None:
    headers = [(b"Content-Type", b"application/x-amz-json-1.0"), (b"x-amz-crc32", b"123")]
    assert answered(200, headers, b"{}") == (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\nx-amz-crc32: 123\r\n"
        b"Content-Length: 2\r\n\r\n{}"
    )


@pytest.mark.parametrize(
    ("status", "line"),
    [
        (200, b"HTTP/1.1 200 OK\r\n"),
        (400, b"HTTP/1.1 400 Bad Request\r\n"),
        (404, b"HTTP/1.1 404 Not Found\r\n"),
        (413, b"HTTP/1.1 413 Content Too Large\r\n"),
        (431, b"HTTP/1.1 431 Request Header Fields Too Large\r\n"),
        (500, b"HTTP/1.1 500 Internal Server Error\r\n"),
        (501, b"HTTP/1.1 501 Not Implemented\r\n"),
        (503, b"HTTP/1.1 503 Service Unavailable\r\n"),
        (505, b"HTTP/1.1 505 HTTP Version Not Supported\r\n"),
        (599, b"HTTP/1.1 599 \r\n"),
    ],
)
def test_status_line_has_the_reason_phrase(status: int, line: bytes) -> None:
    assert answered(status, [], b"").startswith(line)


def test_content_length_is_set_even_for_an_empty_body() -> None:
    assert answered(200, [], b"") == b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


def test_204_and_304_have_no_content_length() -> None:
    assert answered(204, [], b"") == b"HTTP/1.1 204 No Content\r\n\r\n"
    assert b"Content-Length" not in answered(304, [], b"")


def test_answer_to_head_has_the_length_but_no_body() -> None:
    assert answered(200, [], b"abc", method=b"HEAD").endswith(b"Content-Length: 3\r\n\r\n")


@pytest.mark.parametrize(
    ("status", "headers", "body"),
    [
        (100, [], b""),
        (199, [], b""),
        (1000, [], b""),
        (204, [], b"x"),
        (200, [(b"X", b"a\r\nInjected: yes")], b""),
        (200, [(b"X", b"a\nb")], b""),
        (200, [(b"X\r", b"a")], b""),
        (200, [(b"content-length", b"5")], b""),
        (200, [(b"X", b"1"), (b"Transfer-Encoding", b"chunked")], b""),
        (200, [(b"Connection", b"close")], b""),
    ],
)
def test_answer_that_would_break_framing_is_refused(
    status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    with pytest.raises(ValueError):
        answered(status, headers, body)


def test_second_answer_to_one_request_is_refused() -> None:
    conn = Connection()
    conn.receive_data(post(b""))
    conn.next_event()
    conn.send_response(200, [], b"")
    with pytest.raises(RuntimeError):
        conn.send_response(200, [], b"")
