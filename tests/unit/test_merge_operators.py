"""Merge operators: each built-in's merges and refusals, names, pickling, check_operator."""

from __future__ import annotations

import pickle

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiokv.errors import InvalidArgumentError, InvalidTypeError
from aiokv.merge import (
    MAX_NAME_CHARS,
    MAX_SEPARATOR,
    Int64Add,
    JsonMergePatch,
    Max,
    MergeOperator,
    Min,
    StringAppend,
    builtin,
    check_operator,
)

K = b"key"
INT64_MAX = (1 << 63) - 1
INT64_MIN = -(1 << 63)
ALL_BUILTINS = [Int64Add(), StringAppend(), StringAppend(b""), StringAppend(b"\x00|"), Max(), Min()]
ALL_BUILTINS.append(JsonMergePatch())


def _wrap(n: int) -> int:
    return ((n - INT64_MIN) % (1 << 64)) + INT64_MIN


# --- Int64Add -------------------------------------------------------------------------------

GOOD_INTS = [b"0", b"1", b"-5", b"+5", b"007", b"-0", b"9" * 20, b"-" + b"9" * 19, b"+" + b"1" * 19]
BAD_INTS = [
    b"",
    b"+",
    b"-",
    b" 1",
    b"1 ",
    b"1\n",
    b"1_000",
    b"1.5",
    b"1e3",
    b"0x10",
    b"--1",
    b"+-1",
    b"1,2",
    b"1" * 21,
    b"-" + b"1" * 20,
    "\u0661".encode(),  # ARABIC-INDIC DIGIT ONE: int() takes it as str, never as bytes here
    b"\x00",
]


def test_int64_add_sums_operands_onto_zero_when_nothing_exists():
    assert Int64Add().full_merge(K, None, [b"1", b"2", b"-10"]) == b"-7"


def test_int64_add_adds_the_existing_value():
    assert Int64Add().full_merge(K, b"40", [b"+1", b"1"]) == b"42"


def test_int64_add_of_nothing_is_zero():
    assert Int64Add().full_merge(K, None, []) == b"0"


def test_int64_add_writes_canonical_decimal():
    assert Int64Add().full_merge(K, b"007", [b"-0"]) == b"7"


@pytest.mark.parametrize(
    ("existing", "operand", "result"),
    [
        (INT64_MAX, 1, INT64_MIN),
        (INT64_MIN, -1, INT64_MAX),
        (0, 1 << 64, 0),
        (1, 99999999999999999999, _wrap(1 + 99999999999999999999)),
    ],
)
def test_int64_add_wraps_as_twos_complement(existing, operand, result):
    merged = Int64Add().full_merge(K, str(existing).encode(), [str(operand).encode()])
    assert merged == str(result).encode()


@pytest.mark.parametrize("operand", GOOD_INTS)
def test_int64_add_accepts_signed_decimal_of_at_most_20_bytes(operand):
    Int64Add().check_operand(operand)
    assert Int64Add().full_merge(K, None, [operand]) == str(_wrap(int(operand))).encode()


@pytest.mark.parametrize("operand", BAD_INTS)
def test_int64_add_check_operand_refuses_non_decimal(operand):
    with pytest.raises(InvalidArgumentError, match="Int64Add operands are decimal integers"):
        Int64Add().check_operand(operand)


@pytest.mark.parametrize("operand", BAD_INTS)
def test_int64_add_full_merge_refuses_what_check_operand_refuses(operand):
    with pytest.raises(ValueError, match=r"the operand .* is not an integer"):
        Int64Add().full_merge(K, b"1", [b"2", operand, b"3"])


@pytest.mark.parametrize("existing", BAD_INTS)
def test_int64_add_full_merge_refuses_a_non_decimal_existing_value(existing):
    with pytest.raises(ValueError, match=r"the existing value .* is not an integer"):
        Int64Add().full_merge(K, existing, [b"1"])


def test_int64_add_check_operand_refuses_str():
    with pytest.raises(InvalidArgumentError):
        Int64Add().check_operand("1")  # type: ignore[arg-type]


@given(st.binary(max_size=24))
def test_int64_add_check_operand_and_full_merge_agree_on_any_bytes(operand):
    try:
        Int64Add().check_operand(operand)
    except InvalidArgumentError:
        with pytest.raises(ValueError):
            Int64Add().full_merge(K, None, [operand])
    else:
        Int64Add().full_merge(K, None, [operand])


def test_int64_add_partial_merge_sums_and_wraps():
    assert Int64Add().partial_merge(K, b"2", b"-3") == b"-1"
    assert Int64Add().partial_merge(K, str(INT64_MAX).encode(), b"2") == str(INT64_MIN + 1).encode()


@pytest.mark.parametrize("bad", [b"x", b"1,2", b""])
def test_int64_add_partial_merge_declines_bad_operands(bad):
    assert Int64Add().partial_merge(K, bad, b"1") is None
    assert Int64Add().partial_merge(K, b"1", bad) is None


_ints = st.integers(-(10**19) + 1, 10**20 - 1).map(lambda n: str(n).encode())


@given(st.one_of(st.none(), _ints), st.lists(_ints, min_size=2, max_size=8), st.data())
def test_int64_add_matches_wrapped_sum_and_partial_merge_is_exact(existing, operands, data):
    op = Int64Add()
    merged = op.full_merge(K, existing, operands)
    assert int(merged) == _wrap(sum(map(int, operands)) + int(existing or b"0"))
    i = data.draw(st.integers(0, len(operands) - 2))
    combined = op.partial_merge(K, operands[i], operands[i + 1])
    assert combined is not None
    assert op.full_merge(K, existing, [*operands[:i], combined, *operands[i + 2 :]]) == merged


# --- StringAppend ---------------------------------------------------------------------------


def test_string_append_joins_operands_after_the_existing_value():
    assert StringAppend().full_merge(K, b"a", [b"b", b"c"]) == b"a,b,c"


def test_string_append_without_existing_has_no_leading_separator():
    assert StringAppend(b"::").full_merge(K, None, [b"b", b"c"]) == b"b::c"


def test_string_append_with_empty_separator_concatenates():
    assert StringAppend(b"").full_merge(K, b"a", [b"b", b""]) == b"ab"


def test_string_append_partial_merge_puts_the_separator_between():
    assert StringAppend(b"|").partial_merge(K, b"a", b"b") == b"a|b"


@given(
    st.binary(max_size=3),
    st.one_of(st.none(), st.binary(max_size=4)),
    st.lists(st.binary(max_size=4), min_size=2, max_size=6),
    st.data(),
)
def test_string_append_partial_merge_is_exact(separator, existing, operands, data):
    op = StringAppend(separator)
    i = data.draw(st.integers(0, len(operands) - 2))
    combined = op.partial_merge(K, operands[i], operands[i + 1])
    assert combined is not None
    folded = [*operands[:i], combined, *operands[i + 2 :]]
    assert op.full_merge(K, existing, folded) == op.full_merge(K, existing, operands)


def test_string_append_name_encodes_the_separator_in_hex():
    assert StringAppend().name == "aiokv.string_append:2c"
    assert StringAppend(b"").name == "aiokv.string_append:"
    assert StringAppend(b"\x00\xff").name == "aiokv.string_append:00ff"


@given(st.binary(max_size=MAX_SEPARATOR))
def test_string_append_separator_round_trips_through_its_name(separator):
    rebuilt = builtin(StringAppend(separator).name)
    assert isinstance(rebuilt, StringAppend)
    assert rebuilt.separator == separator
    assert len(rebuilt.name) <= MAX_NAME_CHARS


def test_string_append_refuses_a_str_separator():
    with pytest.raises(InvalidTypeError, match="separator must be bytes"):
        StringAppend(",")  # type: ignore[arg-type]


def test_string_append_refuses_an_oversized_separator():
    with pytest.raises(InvalidArgumentError, match="over 64"):
        StringAppend(b"x" * (MAX_SEPARATOR + 1))


def test_string_append_check_operand_refuses_non_bytes():
    StringAppend().check_operand(b"ok")
    with pytest.raises(InvalidTypeError):
        StringAppend().check_operand("text")  # type: ignore[arg-type]


# --- Max / Min ------------------------------------------------------------------------------


def test_max_compares_bytewise_not_numerically():
    assert Max().full_merge(K, b"9", [b"10", b"100"]) == b"9"


def test_max_ranks_a_prefix_below_its_extension():
    assert Max().full_merge(K, None, [b"ab", b"a"]) == b"ab"
    assert Min().full_merge(K, None, [b"ab", b"a"]) == b"a"


def test_max_and_min_treat_bytes_as_unsigned():
    assert Max().full_merge(K, b"z", [b"\xff"]) == b"\xff"
    assert Min().full_merge(K, b"\xff", [b"\x00\xff"]) == b"\x00\xff"


def test_max_and_min_keep_the_existing_value_when_it_wins():
    assert Max().full_merge(K, b"z", [b"a", b"b"]) == b"z"
    assert Min().full_merge(K, b"a", [b"b", b"z"]) == b"a"


def test_max_and_min_of_nothing_are_empty():
    assert Max().full_merge(K, None, []) == b""
    assert Min().full_merge(K, None, []) == b""
    assert Min().full_merge(K, b"q", []) == b"q"


@pytest.mark.parametrize("op", [Max(), Min()], ids=repr)
@given(
    st.one_of(st.none(), st.binary(max_size=3)),
    st.lists(st.binary(max_size=3), min_size=2, max_size=6),
    st.data(),
)
def test_max_and_min_match_builtins_and_partial_merge_is_exact(op, existing, operands, data):
    pick = max if isinstance(op, Max) else min
    merged = op.full_merge(K, existing, operands)
    assert merged == pick(operands + ([] if existing is None else [existing]))
    i = data.draw(st.integers(0, len(operands) - 2))
    combined = op.partial_merge(K, operands[i], operands[i + 1])
    assert combined is not None
    assert op.full_merge(K, existing, [*operands[:i], combined, *operands[i + 2 :]]) == merged


# --- JsonMergePatch -------------------------------------------------------------------------

# RFC 7386, Appendix A: original, patch, result.
RFC_7386_CASES = [
    ('{"a":"b"}', '{"a":"c"}', '{"a":"c"}'),
    ('{"a":"b"}', '{"b":"c"}', '{"a":"b","b":"c"}'),
    ('{"a":"b"}', '{"a":null}', "{}"),
    ('{"a":"b","b":"c"}', '{"a":null}', '{"b":"c"}'),
    ('{"a":["b"]}', '{"a":"c"}', '{"a":"c"}'),
    ('{"a":"c"}', '{"a":["b"]}', '{"a":["b"]}'),
    ('{"a":{"b":"c"}}', '{"a":{"b":"d","c":null}}', '{"a":{"b":"d"}}'),
    ('{"a":[{"b":"c"}]}', '{"a":[1]}', '{"a":[1]}'),
    ('["a","b"]', '["c","d"]', '["c","d"]'),
    ('{"a":"b"}', '["c"]', '["c"]'),
    ('{"a":"foo"}', "null", "null"),
    ('{"a":"foo"}', '"bar"', '"bar"'),
    ('{"e":null}', '{"a":1}', '{"a":1,"e":null}'),
    ("[1,2]", '{"a":"b","c":null}', '{"a":"b"}'),
    ("{}", '{"a":{"bb":{"ccc":null}}}', '{"a":{"bb":{}}}'),
]


@pytest.mark.parametrize(("original", "patch", "result"), RFC_7386_CASES)
def test_json_merge_patch_follows_rfc_7386_examples(original, patch, result):
    merged = JsonMergePatch().full_merge(K, original.encode(), [patch.encode()])
    assert merged == result.encode()


def test_json_merge_patch_applies_operands_in_order():
    ops = [b'{"a":1}', b'{"a":null,"b":2}', b'{"a":3}']
    assert JsonMergePatch().full_merge(K, None, ops) == b'{"a":3,"b":2}'


def test_json_merge_patch_onto_nothing_drops_nulls_of_the_patch():
    assert JsonMergePatch().full_merge(K, None, [b'{"a":null,"b":{"c":null}}']) == b'{"b":{}}'


def test_json_merge_patch_replaces_an_existing_value_that_is_not_json():
    assert JsonMergePatch().full_merge(K, b"\xffraw", [b'{"a":1}']) == b'{"a":1}'
    assert JsonMergePatch().full_merge(K, b"\xffraw", [b"[1]"]) == b"[1]"


def test_json_merge_patch_writes_object_keys_sorted():
    merged = JsonMergePatch().full_merge(K, b'{"z":{"y":1,"x":2}}', [b'{"a":0}'])
    assert merged == b'{"a":0,"z":{"x":2,"y":1}}'


def test_json_merge_patch_without_operands_returns_the_existing_value():
    assert JsonMergePatch().full_merge(K, b'{"b": 1}', []) == b'{"b": 1}'


@pytest.mark.parametrize("bad", [b"", b"{", b'{"a":1} x', b"{'a':1}", b"NaN", b"\xff"])
def test_json_merge_patch_refuses_operands_that_are_not_json(bad):
    with pytest.raises(InvalidArgumentError, match="not JSON"):
        JsonMergePatch().check_operand(bad)
    with pytest.raises(ValueError):
        JsonMergePatch().full_merge(K, b"{}", [bad])


@pytest.mark.parametrize("good", [b"null", b"1", b'"s"', b"[]", b' {"a": [1, {"b": null}]} '])
def test_json_merge_patch_accepts_any_json_text(good):
    JsonMergePatch().check_operand(good)


def test_json_merge_patch_accepts_nesting_orjson_can_write_and_refuses_deeper():
    JsonMergePatch().check_operand(b"[" * 254 + b"]" * 254)
    JsonMergePatch().full_merge(K, None, [b"[" * 254 + b"]" * 254])
    too_deep = b'{"a":' * 255 + b"1" + b"}" * 255
    with pytest.raises(InvalidArgumentError, match="too deep"):
        JsonMergePatch().check_operand(too_deep)
    with pytest.raises(TypeError):
        JsonMergePatch().full_merge(K, None, [too_deep])


def test_json_merge_patch_partial_merge_declines_patches_too_deep_to_write():
    deep = b'{"a":' * 255 + b"1" + b"}" * 255
    assert JsonMergePatch().partial_merge(K, b'{"b":1}', deep) is None


def test_json_merge_patch_check_operand_refuses_str():
    with pytest.raises(InvalidTypeError):
        JsonMergePatch().check_operand("{}")  # type: ignore[arg-type]


def test_json_merge_patch_partial_merge_composes_object_patches():
    combined = JsonMergePatch().partial_merge(K, b'{"a":{"x":1},"b":null}', b'{"a":{"y":2},"c":3}')
    assert combined == b'{"a":{"x":1,"y":2},"b":null,"c":3}'


def test_json_merge_patch_partial_merge_keeps_a_replacing_right_patch():
    assert JsonMergePatch().partial_merge(K, b'{"a":1}', b"[2]") == b"[2]"


@pytest.mark.parametrize(
    ("left", "right"),
    [
        (b'{"a":null}', b'{"a":{"b":1}}'),  # re-created object: old members must go
        (b'{"a":5}', b'{"a":{"b":1}}'),
        (b'{"a":{"b":null}}', b'{"a":{"b":{"c":1}}}'),
        (b"[1]", b'{"a":1}'),  # the pair sets exactly {"a":1}
        (b"not json", b"{}"),
        (b"{}", b"not json"),
    ],
)
def test_json_merge_patch_partial_merge_declines_when_no_single_patch_is_exact(left, right):
    assert JsonMergePatch().partial_merge(K, left, right) is None


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(INT64_MIN, INT64_MAX),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=3),
)
_members = st.sampled_from("abc")
_json = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(_members, inner, max_size=3)
    ),
    max_leaves=12,
)
_objects = st.dictionaries(_members, _json, max_size=3)
_existing = st.one_of(st.none(), st.just(b"\x00not json"), _json.map(orjson.dumps))


@given(_existing, st.one_of(_objects, _json), st.one_of(_objects, _json))
def test_json_merge_patch_partial_merge_equals_applying_both(existing, left, right):
    op = JsonMergePatch()
    a, b = orjson.dumps(left), orjson.dumps(right)
    combined = op.partial_merge(K, a, b)
    if combined is not None:
        assert op.full_merge(K, existing, [combined]) == op.full_merge(K, existing, [a, b])


_flat = st.dictionaries(_members, st.one_of(_scalars, st.lists(_scalars, max_size=2)), max_size=3)


@given(_existing, _flat, _flat)
def test_json_merge_patch_partial_merge_of_patches_without_nested_objects_always_composes(
    existing, left, right
):
    op = JsonMergePatch()
    a, b = orjson.dumps(left), orjson.dumps(right)
    combined = op.partial_merge(K, a, b)
    assert combined is not None
    assert op.full_merge(K, existing, [combined]) == op.full_merge(K, existing, [a, b])


# --- Names, equality, pickling --------------------------------------------------------------


@pytest.mark.parametrize("op", ALL_BUILTINS, ids=repr)
def test_builtin_rebuilds_each_builtin_from_its_name(op):
    rebuilt = builtin(op.name)
    assert rebuilt == op
    assert type(rebuilt) is type(op)


def test_builtin_names_are_frozen():
    assert [op.name for op in (Int64Add(), Max(), Min(), JsonMergePatch())] == [
        "aiokv.int64_add",
        "aiokv.max",
        "aiokv.min",
        "aiokv.json_merge_patch",
    ]


@pytest.mark.parametrize(
    "name",
    [
        "",
        "aiokv.sum",
        "my.counter",
        "2c",
        "aiokv.string_append:2C",  # fromhex reads upper case, but StringAppend writes lower
        "aiokv.string_append:2",
        "aiokv.string_append: 2c",
        "aiokv.string_append:zz",
        "aiokv.string_append:" + "00" * (MAX_SEPARATOR + 1),
    ],
)
def test_builtin_returns_none_for_names_it_did_not_write(name):
    assert builtin(name) is None


@pytest.mark.parametrize("op", ALL_BUILTINS, ids=repr)
def test_builtins_round_trip_through_pickle(op):
    clone = pickle.loads(pickle.dumps(op))
    assert clone == op
    assert clone.name == op.name
    operand = b"1" if not isinstance(op, JsonMergePatch) else b'{"a":1}'
    assert clone.full_merge(K, None, [operand]) == op.full_merge(K, None, [operand])


def test_builtins_compare_and_hash_by_name():
    assert Max() == Max()
    assert Max() != Min()
    assert StringAppend(b",") != StringAppend(b";")
    assert len({StringAppend(b","), StringAppend(b","), Int64Add(), Int64Add()}) == 2
    assert Max() != "aiokv.max"


def test_builtins_have_readable_reprs():
    assert [repr(op) for op in ALL_BUILTINS] == [
        "Int64Add()",
        "StringAppend(separator=b',')",
        "StringAppend(separator=b'')",
        "StringAppend(separator=b'\\x00|')",
        "Max()",
        "Min()",
        "JsonMergePatch()",
    ]


# --- The protocol and check_operator --------------------------------------------------------


class Concat:
    name = "test.concat"

    def full_merge(self, key: bytes, existing: bytes | None, operands: list[bytes]) -> bytes:
        return (existing or b"") + b"".join(operands)


@pytest.mark.parametrize("op", [*ALL_BUILTINS, Concat()], ids=repr)
def test_builtins_and_a_minimal_user_class_satisfy_the_protocol(op):
    assert isinstance(op, MergeOperator)
    assert check_operator(op) is op


def test_check_operator_accepts_a_name_of_exactly_the_limit():
    op = Concat()
    op.name = "n" * MAX_NAME_CHARS
    assert check_operator(op) is op


def _with(**members):
    return type("UserOp", (Concat,), members)()


@pytest.mark.parametrize(
    ("op", "message"),
    [
        (Concat, "instance, such as Concat"),
        (Int64Add, "instance, such as Int64Add"),
        (object(), "needs a str `name`"),
        (_with(name=5), "needs a str `name`.* is int"),
        (_with(name=b"bytes"), "needs a str `name`.* is bytes"),
        (_with(full_merge=None), "needs a full_merge"),
        (_with(full_merge="x"), "needs a full_merge"),
        (_with(partial_merge=3), "partial_merge must be a method"),
        (_with(check_operand="no"), "check_operand must be a method"),
    ],
)
def test_check_operator_refuses_wrong_types(op, message):
    with pytest.raises(InvalidTypeError, match=message):
        check_operator(op)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "1 to 200 printable ASCII"),
        ("n" * (MAX_NAME_CHARS + 1), "1 to 200 printable ASCII"),
        ("caf\u00e9", "1 to 200 printable ASCII"),
        ("tab\there", "1 to 200 printable ASCII"),
        ("nl\n", "1 to 200 printable ASCII"),
        ("aiokv.int64_add", "reserved for the built-ins"),
        ("aiokv.mine", "reserved for the built-ins"),
    ],
)
def test_check_operator_refuses_bad_names(name, message):
    with pytest.raises(InvalidArgumentError, match=message):
        check_operator(_with(name=name))


def test_check_operator_errors_are_also_builtin_exception_types():
    with pytest.raises(TypeError):
        check_operator(object())
    with pytest.raises(ValueError):
        check_operator(_with(name=""))
