"""The memtable: newest-entry table, history for snapshots, ordered index, range deletes."""

from __future__ import annotations

from aiokv.engine.batch_format import Op, ValueKind
from aiokv.engine.memtable import FOLD_EVERY, Memtable

PUT, DELETE, RANGE = int(ValueKind.PUT), int(ValueKind.DELETE), int(ValueKind.DELETE_RANGE)


def test_entry_at_sees_the_newest_version_at_or_below_a_sequence():
    m = Memtable()
    m.set_keep_history(True)
    m.put(b"k", b"1", 1)
    m.put(b"k", b"2", 5)
    m.apply([Op(DELETE, 0, b"k", b"")], 9)
    assert m.entry_at(b"k", 0) is None
    assert m.entry_at(b"k", 4)[1] == b"1"
    assert m.entry_at(b"k", 8)[1] == b"2"
    assert m.entry_at(b"k", 9)[0] == DELETE
    m.check()


def test_history_is_kept_only_when_asked_and_dropped_on_demand():
    m = Memtable()
    m.put(b"k", b"1", 1)
    m.put(b"k", b"2", 2)
    assert m.entry_at(b"k", 1) is None  # nobody could read seq 1 any more
    m.set_keep_history(True)
    m.put(b"k", b"3", 3)
    assert m.entry_at(b"k", 2)[1] == b"2"
    m.set_keep_history(False)
    assert m.entry_at(b"k", 2) is None


def test_range_delete_writes_tombstones_for_held_keys_and_remembers_the_range():
    m = Memtable()
    m.apply([Op(PUT, 0, k, b"v") for k in (b"a", b"b", b"c")], 1)
    m.apply([Op(RANGE, 0, b"b", b"c")], 4)
    assert m.table[b"a"][0] == PUT
    assert m.table[b"b"][0] == DELETE
    assert m.table[b"c"][0] == PUT
    assert m.range_deleted_at(b"bb", 10) == 4
    assert m.range_deleted_at(b"bb", 3) == -1
    assert m.range_deleted_at(b"c", 10) == -1


def test_index_orders_keys_across_folds():
    m = Memtable()
    keys = [i.to_bytes(4, "big")[::-1] for i in range(FOLD_EVERY * 2 + 5)]
    for seq, k in enumerate(keys, 1):
        m.put(k, b"", seq)
    assert m.keys_between(None, True, None, len(keys), reverse=False) == sorted(keys)
    top = m.keys_between(None, True, None, 3, reverse=True)
    assert top == sorted(keys)[-3:][::-1]
    m.check()


def test_keys_between_resumes_after_an_exclusive_bound():
    m = Memtable()
    m.apply([Op(PUT, 0, k, b"") for k in (b"a", b"b", b"c", b"d")], 1)
    assert m.keys_between(b"b", False, b"d", 10, reverse=False) == [b"c"]
    assert m.keys_between(b"a", True, b"c", 10, reverse=True) == [b"b", b"a"]
