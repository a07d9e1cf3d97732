"""Batch payload codec: every kind round-trips; every malformed payload raises BatchDecodeError."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiokv.engine.batch_format import (
    OP_HEADER,
    PAYLOAD_HEADER,
    BatchDecodeError,
    Op,
    ValueKind,
    decode_payload,
    encode_op,
    encode_payload,
)

U32 = (1 << 32) - 1
U64 = (1 << 64) - 1


def _payload(base_seq: int, ops: list[Op]) -> bytes:
    return encode_payload(base_seq, len(ops), [encode_op(*op) for op in ops])


SAMPLE = [
    Op(ValueKind.PUT, 0, b"k1", b"v1"),
    Op(ValueKind.DELETE, 3, b"k2", b""),
    Op(ValueKind.MERGE, 0, b"hits", b"1"),
    Op(ValueKind.DELETE_RANGE, 0, b"a", b"m"),
    Op(ValueKind.PUT_EXPIRING, 1, b"s:9", b"tok", 1_700_000_000_000),
]


def test_value_kind_numbers_are_frozen():
    assert {k.name: int(k) for k in ValueKind} == {
        "DELETE": 0,
        "PUT": 1,
        "MERGE": 2,
        "DELETE_RANGE": 3,
        "PUT_EXPIRING": 4,
    }


@pytest.mark.parametrize("op", SAMPLE, ids=lambda op: ValueKind(op.kind).name)
def test_each_kind_round_trips(op):
    assert decode_payload(_payload(42, [op])) == (42, [op])


def test_ops_of_every_kind_round_trip_together_in_order():
    assert decode_payload(_payload(7, SAMPLE)) == (7, SAMPLE)


def test_empty_keys_and_values_round_trip():
    ops = [Op(kind, 0, b"", b"", 5 if kind == ValueKind.PUT_EXPIRING else 0) for kind in ValueKind]
    assert decode_payload(_payload(1, ops)) == (1, ops)


def test_large_key_and_value_round_trip():
    op = Op(ValueKind.PUT, U32, b"k" * (1 << 20), bytes(range(256)) * (1 << 14))
    base, (back,) = decode_payload(_payload(U64, [op]))
    assert (base, back) == (U64, op)
    assert type(back.key) is bytes and type(back.value) is bytes


def test_payload_with_no_ops_decodes_to_an_empty_list():
    assert decode_payload(encode_payload(9, 0, [])) == (9, [])


def test_op_layout_is_header_key_value_then_expiry():
    enc = encode_op(ValueKind.PUT_EXPIRING, 2, b"key", b"value", 0x0102030405060708)
    assert OP_HEADER.unpack_from(enc) == (4, 2, 3, 5)
    assert enc[OP_HEADER.size :] == b"keyvalue" + bytes.fromhex("0807060504030201")


def test_expiry_is_only_encoded_for_put_expiring():
    assert encode_op(ValueKind.PUT, 0, b"k", b"v", 123) == encode_op(ValueKind.PUT, 0, b"k", b"v")
    _, (op,) = decode_payload(_payload(1, [Op(ValueKind.PUT, 0, b"k", b"v", 123)]))
    assert op.expiry_ms == 0


def test_put_expiring_keeps_an_expiry_of_zero():
    op = Op(ValueKind.PUT_EXPIRING, 0, b"k", b"v", 0)
    enc = encode_op(*op)
    assert len(enc) == OP_HEADER.size + 2 + 8
    assert decode_payload(_payload(1, [op])) == (1, [op])


ops_strategy = st.lists(
    st.builds(
        lambda kind, cf, key, value, expiry: Op(
            kind,
            cf,
            key,
            b"" if kind == ValueKind.DELETE else value,
            expiry if kind == ValueKind.PUT_EXPIRING else 0,
        ),
        st.sampled_from([int(k) for k in ValueKind]),
        st.integers(0, U32),
        st.binary(max_size=40),
        st.binary(max_size=40),
        st.integers(0, U64),
    ),
    max_size=20,
)


@given(base_seq=st.integers(0, U64), ops=ops_strategy)
def test_any_payload_round_trips(base_seq, ops):
    assert decode_payload(_payload(base_seq, ops)) == (base_seq, ops)


@given(ops=ops_strategy.filter(bool), cut=st.integers(min_value=1))
def test_any_truncated_payload_raises(ops, cut):
    data = _payload(1, ops)
    with pytest.raises(BatchDecodeError):
        decode_payload(data[: max(0, len(data) - cut)])


def test_every_truncation_raises_batch_decode_error():
    data = _payload(1, SAMPLE)
    for size in range(len(data)):
        with pytest.raises(BatchDecodeError) as info:
            decode_payload(data[:size])
        assert 0 <= info.value.offset <= size


def test_short_header_raises_at_offset_0():
    with pytest.raises(BatchDecodeError) as info:
        decode_payload(b"\x01" * (PAYLOAD_HEADER.size - 1))
    assert info.value.offset == 0


def test_trailing_garbage_raises_at_its_offset():
    data = _payload(1, SAMPLE)
    with pytest.raises(BatchDecodeError) as info:
        decode_payload(data + b"\x00")
    assert info.value.offset == len(data)


def test_count_below_the_ops_present_raises():
    data = encode_payload(1, 1, [encode_op(*op) for op in SAMPLE[:2]])
    with pytest.raises(BatchDecodeError) as info:
        decode_payload(data)
    assert info.value.offset == PAYLOAD_HEADER.size + len(encode_op(*SAMPLE[0]))


def test_count_above_the_ops_present_raises():
    data = encode_payload(1, 3, [encode_op(*op) for op in SAMPLE[:2]])
    with pytest.raises(BatchDecodeError):
        decode_payload(data)


@pytest.mark.parametrize("kind", [5, 0x7F, 0xFF])
def test_unknown_kind_raises_at_the_op_offset(kind):
    good = encode_op(ValueKind.PUT, 0, b"k", b"v")
    bad = bytes([kind]) + encode_op(ValueKind.PUT, 0, b"k", b"v")[1:]
    with pytest.raises(BatchDecodeError, match=f"unknown value kind {kind}") as info:
        decode_payload(encode_payload(1, 2, [good, bad]))
    assert info.value.offset == PAYLOAD_HEADER.size + len(good)


def test_key_length_past_the_end_raises():
    enc = bytearray(encode_op(ValueKind.PUT, 0, b"k", b"v"))
    OP_HEADER.pack_into(enc, 0, ValueKind.PUT, 0, U32, 1)
    with pytest.raises(BatchDecodeError, match="runs past"):
        decode_payload(encode_payload(1, 1, [bytes(enc)]))


def test_batch_decode_error_is_a_value_error_with_detail():
    with pytest.raises(ValueError, match="shorter than its header") as info:
        decode_payload(b"")
    assert isinstance(info.value, BatchDecodeError)
    assert "shorter" in info.value.detail
