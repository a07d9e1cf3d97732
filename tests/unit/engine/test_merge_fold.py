"""Folding merge chains: every branch of fold and resolve, and fold never changes what reads see."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiokv.engine.batch_format import ValueKind
from aiokv.engine.merge_fold import MAX_OPERANDS, fold, resolve
from aiokv.merge import Int64Add, JsonMergePatch, StringAppend

K = b"key"
DELETE, PUT, MERGE, DELETE_RANGE, PUT_EXPIRING = (int(k) for k in ValueKind)
NOW = 1_000


class Recorder:
    """Appends with '+', records every full_merge call, has no partial_merge."""

    name = "test.recorder"

    def __init__(self) -> None:
        self.calls: list[tuple[bytes, bytes | None, list[bytes]]] = []

    def full_merge(self, key: bytes, existing: bytes | None, operands: list[bytes]) -> bytes:
        self.calls.append((key, existing, list(operands)))
        return b"+".join([existing or b"_", *operands])


class Picky(Recorder):
    """Appends with '+'; partial_merge declines any pair where either side is b"|"."""

    name = "test.picky"

    def partial_merge(self, key: bytes, left: bytes, right: bytes) -> bytes | None:
        if b"|" in (left, right):
            return None
        return left + b"+" + right


class Boom(Exception):
    pass


class Failing:
    name = "test.failing"

    def full_merge(self, key: bytes, existing: bytes | None, operands: list[bytes]) -> bytes:
        raise Boom(key)

    def partial_merge(self, key: bytes, left: bytes, right: bytes) -> bytes | None:
        raise Boom(key)


def merges(*values: bytes, top: int = 100) -> list[tuple[int, bytes, int, int]]:
    """MERGE entries newest first: values given newest first, seqs top, top-1, ..."""
    return [(MERGE, v, top - i, 0) for i, v in enumerate(values)]


# --- fold -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "head",
    [
        (PUT, b"v", 9, 0),
        (DELETE, b"", 9, 0),
        (PUT_EXPIRING, b"v", 9, NOW + 1),
        (PUT_EXPIRING, b"v", 9, NOW),
    ],
    ids=["put", "delete", "live", "expired"],
)
@pytest.mark.parametrize("complete", [False, True])
def test_fold_keeps_only_a_head_that_is_not_a_merge(head, complete):
    chain = [head, (MERGE, b"x", 8, 0), (PUT, b"old", 7, 0)]
    assert fold(Recorder(), K, chain, NOW, complete) == [head]


def test_fold_merges_operands_oldest_first_onto_a_put_base_and_drops_what_is_below():
    op = Recorder()
    chain = [*merges(b"c", b"b"), (PUT, b"a", 50, 0), (PUT, b"older", 40, 0)]
    assert fold(op, K, chain, NOW, complete=False) == [(PUT, b"a+b+c", 100, 0)]
    assert op.calls == [(K, b"a", [b"b", b"c"])]


def test_fold_keeps_a_live_expiring_base_apart_so_reads_do_not_depend_on_when_it_ran():
    chain = [*merges(b"b"), (PUT_EXPIRING, b"a", 50, NOW + 1)]
    out = fold(Recorder(), K, chain, NOW, complete=False)
    assert out == chain
    assert resolve(Recorder(), K, out, NOW) == resolve(Recorder(), K, chain, NOW) == b"a+b"
    later = NOW + 5  # once the base expires, the operands apply to nothing, folded or not
    assert resolve(Recorder(), K, out, later) == resolve(Recorder(), K, chain, later)


def test_fold_onto_an_expired_base_merges_onto_nothing_and_never_expires():
    chain = [*merges(b"b"), (PUT_EXPIRING, b"a", 50, NOW), (PUT, b"older", 40, 0)]
    assert fold(Recorder(), K, chain, NOW, complete=False) == [(PUT, b"_+b", 100, 0)]


def test_fold_onto_a_delete_merges_onto_nothing():
    chain = [*merges(b"c", b"b"), (DELETE, b"", 50, 0), (PUT, b"older", 40, 0)]
    assert fold(Recorder(), K, chain, NOW, complete=False) == [(PUT, b"_+b+c", 100, 0)]


def test_fold_of_a_complete_chain_without_base_merges_onto_nothing():
    op = Recorder()
    assert fold(op, K, merges(b"c", b"b", b"a"), NOW, complete=True) == [(PUT, b"_+a+b+c", 100, 0)]
    assert op.calls == [(K, None, [b"a", b"b", b"c"])]


def test_fold_of_an_incomplete_chain_combines_operands_with_partial_merge():
    op = Int64Add()
    assert fold(op, K, merges(b"3", b"2", b"1"), NOW, complete=False) == [(MERGE, b"6", 100, 0)]


def test_fold_without_partial_merge_returns_an_incomplete_chain_unchanged():
    op = Recorder()
    chain = merges(b"c", b"b", b"a")
    assert fold(op, K, chain, NOW, complete=False) == chain
    assert op.calls == []


def test_fold_combines_only_neighbours_partial_merge_accepts():
    chain = merges(b"e", b"d", b"|", b"c", b"b", b"a", top=10)  # oldest first: a b c | d e
    assert fold(Picky(), K, chain, NOW, complete=False) == [
        (MERGE, b"d+e", 10, 0),
        (MERGE, b"|", 8, 0),
        (MERGE, b"a+b+c", 7, 0),
    ]


def test_fold_of_a_single_incomplete_operand_returns_it():
    chain = merges(b"a")
    assert fold(Picky(), K, chain, NOW, complete=False) == chain


def test_fold_accepts_a_tuple_chain():
    assert fold(Int64Add(), K, tuple(merges(b"1", b"2")), NOW, False) == [(MERGE, b"3", 100, 0)]


@pytest.mark.parametrize("complete", [False, True])
def test_fold_lets_operator_exceptions_through_unchanged(complete):
    with pytest.raises(Boom):
        fold(Failing(), K, merges(b"b", b"a"), NOW, complete)
    with pytest.raises(Boom):
        fold(Failing(), K, [*merges(b"b"), (PUT, b"a", 1, 0)], NOW, False)


def test_fold_lets_a_builtin_refusal_through():
    with pytest.raises(ValueError, match="existing value"):
        fold(Int64Add(), K, [*merges(b"1"), (PUT, b"not a number", 1, 0)], NOW, False)


def test_fold_refuses_a_range_delete_as_base():
    with pytest.raises(ValueError, match="kind 3"):
        fold(Recorder(), K, [*merges(b"1"), (DELETE_RANGE, b"z", 1, 0)], NOW, False)


def test_max_operands_is_a_sane_bound():
    assert 1 < MAX_OPERANDS <= 1024


# --- resolve --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "value"),
    [
        ((PUT, b"v", 9, 0), b"v"),
        ((PUT_EXPIRING, b"v", 9, NOW + 1), b"v"),
        ((PUT_EXPIRING, b"v", 9, NOW), None),
        ((DELETE, b"", 9, 0), None),
    ],
    ids=["put", "live", "expired", "delete"],
)
def test_resolve_reads_a_head_that_is_not_a_merge(head, value):
    op = Recorder()
    assert resolve(op, K, [head, (PUT, b"old", 1, 0)], NOW) == value
    assert op.calls == []


@pytest.mark.parametrize(
    ("base", "existing"),
    [
        ((PUT, b"a", 5, 0), b"a"),
        ((PUT_EXPIRING, b"a", 5, NOW + 1), b"a"),
        ((PUT_EXPIRING, b"a", 5, NOW), None),
        ((DELETE, b"", 5, 0), None),
    ],
    ids=["put", "live", "expired", "delete"],
)
def test_resolve_merges_operands_oldest_first_onto_the_base(base, existing):
    op = Recorder()
    resolve(op, K, [*merges(b"c", b"b"), base], NOW)
    assert op.calls == [(K, existing, [b"b", b"c"])]


def test_resolve_without_base_merges_onto_nothing():
    assert resolve(Int64Add(), K, merges(b"5", b"-2"), NOW) == b"3"


def test_resolve_lets_operator_exceptions_through():
    with pytest.raises(Boom):
        resolve(Failing(), K, merges(b"a"), NOW)


# --- fold never changes what a read sees ----------------------------------------------------

_kinds_below = st.sampled_from([PUT, DELETE, PUT_EXPIRING])


@st.composite
def chains(draw, operand):
    """A chain newest first, strictly decreasing seqs; operands first, then maybe a tail."""
    ops = draw(st.lists(operand, min_size=1, max_size=12))
    tail = draw(st.lists(st.tuples(_kinds_below, operand, st.integers(0, 2 * NOW)), max_size=3))
    size = len(ops) + len(tail)
    seqs = sorted(draw(st.sets(st.integers(1, 10_000), min_size=size, max_size=size)), reverse=True)
    entries = [(MERGE, v, 0, 0) for v in ops] + [
        (k, b"" if k == DELETE else v, 0, e if k == PUT_EXPIRING else 0) for k, v, e in tail
    ]
    return [(k, v, s, e) for (k, v, _, e), s in zip(entries, seqs, strict=True)]


_cases = st.one_of(
    st.tuples(st.just(Int64Add()), chains(st.integers(-(2**63), 2**63).map(b"%d".__mod__))),
    st.tuples(st.just(StringAppend(b",")), chains(st.binary(max_size=3))),
    st.tuples(st.just(Picky()), chains(st.sampled_from([b"a", b"b", b"|"]))),
    st.tuples(st.just(Recorder()), chains(st.sampled_from([b"a", b"b"]))),
    st.tuples(
        st.just(JsonMergePatch()),
        chains(st.sampled_from([b'{"a":1}', b'{"a":null}', b'{"a":{"b":2}}', b"[3]", b"{}"])),
    ),
)
_below = st.one_of(
    st.none(),
    st.tuples(_kinds_below, st.integers(0, 2 * NOW)).map(
        lambda t: (t[0], b"" if t[0] == DELETE else b"7", 0, t[1] if t[0] == PUT_EXPIRING else 0)
    ),
)


@given(_cases, _below, st.integers(0, 2 * NOW))
def test_resolving_the_folded_chain_reads_the_same_as_the_original(case, below, now):
    op, chain = case
    complete = below is None
    folded = fold(op, K, chain, now, complete)
    assert folded[0][2] == chain[0][2]
    assert [e[2] for e in folded] == sorted({e[2] for e in folded}, reverse=True)
    rest = [] if below is None else [below]
    assert resolve(op, K, folded + rest, now) == resolve(op, K, chain + rest, now)
