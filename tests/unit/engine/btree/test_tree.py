"""The copy-on-write B+Tree: get, scan, Txn (apply, delete_range, drop) and check, against a
dict model, over pages held in memory the way the engine holds them."""

from __future__ import annotations

import random
from bisect import bisect_left, bisect_right

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiokv.engine.btree.node_format import (
    CAPACITY,
    MAX_KEY_INLINE,
    MIN_FILL,
    Branch,
    Leaf,
    encode_node,
)
from aiokv.engine.btree.page_format import PAGE_SIZE
from aiokv.engine.btree.tree import (
    Cell,
    Txn,
    check,
    decode_node,
    get,
    scan,
    separator,
)
from aiokv.errors import CorruptionError

PUT, MERGE, PUT_EXPIRING = 1, 2, 4


class Pager:
    """Pages in a dict, a cache of decoded nodes, and a free pool: the engine in miniature."""

    path = "mem/btree.pages"

    def __init__(self) -> None:
        self.pages: dict[int, bytes] = {}
        self.cache: dict[int, Leaf | Branch] = {}
        self.pool: list[int] = []
        self.high = 2  # pages 0 and 1 are the meta pages
        self.reads = 0
        self.lowest_first = False  # alloc hands out the lowest free page (as a vacuum wants)
        self.taken: list[int] = []  # every page alloc handed out

    def page(self, no: int) -> bytes:
        return self.pages[no]

    def node(self, no: int) -> Leaf | Branch:
        n = self.cache.get(no)
        if n is None:
            self.reads += 1
            n = self.cache[no] = decode_node(no, self.pages[no], self.page, self.path)
        return n

    def alloc(self) -> int:
        if self.pool:
            if self.lowest_first:
                self.pool.sort(reverse=True)
            no = self.pool.pop()
        else:
            self.high += 1
            no = self.high - 1
        self.taken.append(no)
        return no

    def txn(self) -> Txn:
        return Txn(self, self.alloc)

    def commit(self, t: Txn) -> None:
        t.finish()
        for no, page in t.dirty.items():
            assert len(page) == PAGE_SIZE
            self.cache.pop(no, None)
            self.pages[no] = page
        self.pool += t.unused

    def release(self, freed: list[int]) -> None:
        """No reader holds the roots `freed` came from any more."""
        assert len(set(freed)) == len(freed), "a page freed twice"
        for no in freed:
            self.pages[no] = b"freed"  # reading it now would fail loudly
            self.cache.pop(no, None)
        self.pool += freed


def _cell(v: bytes, expiry: int = 0) -> Cell:
    return (PUT_EXPIRING if expiry else PUT, v, expiry)


def _apply(p: Pager, root: int, model: dict[bytes, Cell], changes: dict[bytes, Cell | None]) -> int:
    t = p.txn()
    root = t.apply(root, sorted(changes.items()))
    p.commit(t)
    p.release(t.freed)
    for k, c in changes.items():
        if c is None:
            model.pop(k, None)
        else:
            model[k] = c
    return root


def _assert_tree(p: Pager, root: int, model: dict[bytes, Cell]) -> set[int]:
    pages = check(p, root)
    assert scan(p, root, None, True, None, False, 10**9) == sorted(model.items())
    for k, c in model.items():
        assert get(p, root, k) == c
    return pages


def _height(p: Pager, root: int) -> int:
    h = 0
    while root:
        h += 1
        node = p.node(root)
        root = node.children[0] if isinstance(node, Branch) else 0
    return h


def _keys(n: int, seed: int = 1) -> list[bytes]:
    rnd = random.Random(seed)
    return sorted({b"%08d" % rnd.randrange(10**8) for _ in range(n)})


# -- get and the basic steps ---------------------------------------------------------------------


def test_an_empty_tree_has_nothing():
    p = Pager()
    assert get(p, 0, b"k") is None
    assert scan(p, 0, None, True, None, False, 10) == []
    assert check(p, 0) == set()


def test_a_put_then_get_then_update_then_delete():
    p = Pager()
    model: dict[bytes, Cell] = {}
    root = _apply(p, 0, model, {b"k": _cell(b"v1")})
    assert get(p, root, b"k") == (PUT, b"v1", 0)
    root = _apply(p, root, model, {b"k": _cell(b"v2", 99)})
    assert get(p, root, b"k") == (PUT_EXPIRING, b"v2", 99)
    root = _apply(p, root, model, {b"k": None})
    assert root == 0
    assert get(p, root, b"k") is None


def test_deleting_absent_keys_changes_nothing():
    p = Pager()
    model: dict[bytes, Cell] = {}
    root = _apply(p, 0, model, {k: _cell(b"v") for k in _keys(2000)})
    t = p.txn()
    assert t.apply(root, [(b"absent%d" % i, None) for i in range(20)]) == root
    assert t.delete_range(root, b"zz", b"zzz") == root
    t.finish()
    assert t.dirty == {} and t.freed == [] and t.count_delta == 0


def test_a_big_sorted_batch_builds_a_multi_level_tree():
    p = Pager()
    model: dict[bytes, Cell] = {}
    prefix = b"k" * 40  # long separators: few per branch
    root = _apply(p, 0, model, {prefix + k: _cell(k * 12) for k in _keys(30000)})
    assert _height(p, root) >= 3
    pages = _assert_tree(p, root, model)
    assert pages == set(p.pages) - set(range(2))


def test_a_bulk_load_fills_leaves_well():
    p = Pager()
    model: dict[bytes, Cell] = {}
    root = _apply(p, 0, model, {k: _cell(b"v" * 20) for k in _keys(20000)})
    leaves = [n for n in map(p.node, check(p, root)) if isinstance(n, Leaf)]
    fill = sum(n.size for n in leaves) / (len(leaves) * PAGE_SIZE)
    assert fill > 0.85


def test_count_delta_counts_keys_added_and_removed():
    p = Pager()
    t = p.txn()
    keys = _keys(5000)
    root = t.apply(0, [(k, _cell(b"v")) for k in keys])
    root = t.apply(root, [(k, None) for k in keys[:100]] + [(b"zz", _cell(b"w"))])
    root = t.delete_range(root, keys[1000], keys[2000])
    assert t.count_delta == 5000 - 100 + 1 - 1000


def test_applying_in_slices_in_one_txn_equals_one_apply():
    p = Pager()
    q = Pager()
    changes = [(k, _cell(k)) for k in _keys(10000)]
    t = p.txn()
    root = 0
    for i in range(0, len(changes), 700):
        root = t.apply(root, changes[i : i + 700])
    p.commit(t)
    u = q.txn()
    whole = u.apply(0, changes)
    q.commit(u)
    assert scan(p, root, None, True, None, False, 10**9) == scan(
        q, whole, None, True, None, False, 10**9
    )
    assert check(p, root) == set(p.pages) - {0, 1} - set(p.pool)


def test_a_txn_cannot_be_used_after_finish():
    p = Pager()
    t = p.txn()
    t.finish()
    with pytest.raises(RuntimeError):
        t.apply(0, [(b"k", _cell(b"v"))])


# -- copy on write -------------------------------------------------------------------------------


def test_an_old_root_still_reads_its_contents_after_a_commit():
    p = Pager()
    old_model: dict[bytes, Cell] = {}
    old = _apply(p, 0, old_model, {k: _cell(b"old") for k in _keys(5000)})
    t = p.txn()
    new = t.apply(old, [(k, _cell(b"new")) for k in _keys(5000)[::3]])
    new = t.delete_range(new, b"3", b"6")
    p.commit(t)  # freed pages not released: a reader holds `old`
    _assert_tree(p, old, old_model)
    assert set(t.freed) <= check(p, old)
    assert not set(t.freed) & check(p, new)


def _contents(n: Leaf | Branch) -> tuple[list[bytes], list[object]]:
    return list(n.keys), list(n.cells if isinstance(n, Leaf) else n.children)


def test_nodes_of_old_trees_are_never_mutated():
    p = Pager()
    model: dict[bytes, Cell] = {}
    root = _apply(p, 0, model, {k: _cell(b"v") for k in _keys(3000)})
    before = {no: _contents(p.node(no)) for no in check(p, root)}
    t = p.txn()
    t.apply(root, [(k, None) for k in _keys(3000)[::2]] + [(b"new", _cell(b"x"))])
    t.finish()
    for no, (keys, rest) in before.items():
        assert _contents(p.cache[no]) == (keys, rest)


# -- scan ----------------------------------------------------------------------------------------

_BOUNDS = [None, b"", b"0", b"2", b"25", b"5", b"50000000", b"9", b"\xff"]


@pytest.fixture(scope="module")
def scanned() -> tuple[Pager, int, list[bytes]]:
    p = Pager()
    model: dict[bytes, Cell] = {}
    root = _apply(p, 0, model, {k: _cell(k) for k in _keys(8000, seed=3)})
    return p, root, sorted(model)


@pytest.mark.parametrize("lo", _BOUNDS)
@pytest.mark.parametrize("hi", _BOUNDS)
@pytest.mark.parametrize("lo_inclusive", [True, False])
@pytest.mark.parametrize("reverse", [False, True])
def test_scan_matches_a_sorted_list(scanned, lo, hi, lo_inclusive, reverse):
    p, root, keys = scanned
    a = 0 if lo is None else (bisect_left if lo_inclusive else bisect_right)(keys, lo)
    b = len(keys) if hi is None else bisect_left(keys, hi)
    want = keys[a:b][::-1] if reverse else keys[a:b]
    for limit in (1, 7, 500, 10**9):
        got = scan(p, root, lo, lo_inclusive, hi, reverse, limit)
        assert [k for k, _ in got] == want[:limit]
        assert all(c == (PUT, k, 0) for k, c in got)


@pytest.mark.parametrize("reverse", [False, True])
def test_a_scan_resumed_from_its_last_key_sees_every_key_once(scanned, reverse):
    p, root, keys = scanned
    seen: list[bytes] = []
    bound = None
    while True:
        if reverse:
            got = scan(p, root, None, True, bound, True, 333)
        else:
            got = scan(p, root, bound, False, None, False, 333)
        if not got:
            break
        seen += [k for k, _ in got]
        bound = got[-1][0]
    assert seen == (keys[::-1] if reverse else keys)


def test_a_scan_with_a_zero_limit_is_empty(scanned):
    p, root, _ = scanned
    assert scan(p, root, None, True, None, False, 0) == []


# -- delete_range and drop -----------------------------------------------------------------------


@pytest.mark.parametrize(("lo", "hi"), [(b"", b"\xff"), (b"2", b"7"), (b"4", b"41"), (b"0", b"00")])
def test_delete_range_removes_exactly_the_range(lo, hi):
    p = Pager()
    model: dict[bytes, Cell] = {}
    root = _apply(p, 0, model, {k: _cell(k) for k in _keys(20000)})
    t = p.txn()
    root = t.delete_range(root, lo, hi)
    p.commit(t)
    p.release(t.freed)
    gone = [k for k in model if lo <= k < hi]
    for k in gone:
        del model[k]
    assert t.count_delta == -len(gone)
    pages = _assert_tree(p, root, model)
    assert pages == set(p.pages) - {0, 1} - set(p.pool)


def test_drop_frees_every_page_of_the_tree():
    p = Pager()
    model: dict[bytes, Cell] = {}
    big = {b"big%d" % i: _cell(bytes(5000 + i)) for i in range(20)}
    root = _apply(p, 0, model, {**{k: _cell(k) for k in _keys(10000)}, **big})
    pages = check(p, root)
    t = p.txn()
    t.drop(root)
    t.finish()
    assert sorted(t.freed) == sorted(pages)
    assert t.dirty == {} and t.count_delta == -len(model)


# -- overflow ------------------------------------------------------------------------------------


def test_a_large_value_spills_and_reads_back_whole():
    p = Pager()
    model: dict[bytes, Cell] = {}
    value = random.Random(5).randbytes(100_000)
    root = _apply(p, 0, model, {b"a": _cell(b"x"), b"big": _cell(value, 7), b"z": _cell(b"y")})
    assert get(p, root, b"big") == (PUT_EXPIRING, value, 7)
    assert scan(p, root, b"b", True, None, False, 1) == [(b"big", (PUT_EXPIRING, value, 7))]
    assert len(check(p, root)) == 1 + -(-len(value) // 4076)


def test_replacing_a_spilled_value_frees_its_chain():
    p = Pager()
    model: dict[bytes, Cell] = {}
    root = _apply(p, 0, model, {b"big": _cell(bytes(50_000))})
    old = check(p, root)
    t = p.txn()
    root = t.apply(root, [(b"big", _cell(b"small"))])
    p.commit(t)
    assert sorted(t.freed) == sorted(old)
    assert check(p, root) == {root}


def test_a_spilled_value_replaced_in_the_same_txn_never_reaches_disk():
    p = Pager()
    t = p.txn()
    root = t.apply(0, [(b"big", _cell(bytes(50_000)))])
    root = t.apply(root, [(b"big", _cell(b"small"))])
    p.commit(t)
    assert list(t.dirty) == [root]
    assert t.freed == [] and len(t.unused) >= 13


def test_long_keys_spill_in_leaves_and_branches():
    p = Pager()
    model: dict[bytes, Cell] = {}
    prefix = b"p" * (MAX_KEY_INLINE + 100)
    changes = {prefix + b"%06d" % i: _cell(b"v%d" % i) for i in range(600)}
    root = _apply(p, 0, model, changes)
    p.cache.clear()  # decode everything from the pages again
    pages = _assert_tree(p, root, model)
    root_node = p.node(root)
    assert isinstance(root_node, Branch) and root_node.kref  # separators too long to keep inline
    assert pages == set(p.pages) - {0, 1} - set(p.pool)
    root = _apply(p, root, model, {k: None for k in list(changes)[::2]})
    assert _assert_tree(p, root, model) == set(p.pages) - {0, 1} - set(p.pool) - {
        n for n, pg in p.pages.items() if pg == b"freed"
    }


# -- check ---------------------------------------------------------------------------------------


def _corrupt(p: Pager, no: int, node: Leaf | Branch) -> None:
    p.pages[no] = encode_node(node, no)
    p.cache.pop(no, None)


@pytest.fixture
def two_level() -> tuple[Pager, int]:
    p = Pager()
    model: dict[bytes, Cell] = {}
    root = _apply(p, 0, model, {k: _cell(k) for k in _keys(400)})
    assert isinstance(p.node(root), Branch)
    return p, root


def test_check_finds_keys_out_of_order(two_level):
    p, root = two_level
    no = p.node(root).children[0]  # type: ignore[union-attr]
    leaf = p.node(no)
    _corrupt(p, no, Leaf(leaf.keys[::-1], leaf.cells, 0))  # type: ignore[union-attr]
    with pytest.raises(CorruptionError, match="ascending") as info:
        check(p, root)
    assert info.value.offset == no * PAGE_SIZE


def test_check_finds_a_wrong_separator(two_level):
    p, root = two_level
    node = p.node(root)
    assert isinstance(node, Branch)
    _corrupt(p, root, Branch([b"0", *node.keys[1:]], node.children, 0))
    with pytest.raises(CorruptionError, match="separators"):
        check(p, root)


def test_check_finds_an_underfull_leaf(two_level):
    p, root = two_level
    no = p.node(root).children[1]  # type: ignore[union-attr]
    leaf = p.node(no)
    _corrupt(p, no, Leaf(leaf.keys[:2], leaf.cells[:2], 0))  # type: ignore[union-attr]
    with pytest.raises(CorruptionError, match="minimum fill"):
        check(p, root)


def test_check_finds_a_page_reached_twice(two_level):
    p, root = two_level
    node = p.node(root)
    assert isinstance(node, Branch)
    _corrupt(p, root, Branch(node.keys, [node.children[0], *node.children[:-1]], 0))
    with pytest.raises(CorruptionError, match="twice"):
        check(p, root)


def test_check_finds_leaves_at_different_depths():
    p = Pager()
    model: dict[bytes, Cell] = {}
    prefix = b"k" * 40
    root = _apply(p, 0, model, {prefix + k: _cell(k * 12) for k in _keys(30000)})
    node = p.node(root)
    assert isinstance(node, Branch)
    deep = node.children[0]
    assert isinstance(p.node(deep), Branch)
    while isinstance(p.node(deep), Branch):
        deep = p.node(deep).children[-1]  # type: ignore[union-attr]
    children = list(node.children)
    children[0] = deep  # a leaf where a branch should be
    _corrupt(p, root, Branch(node.keys, children, 0))
    with pytest.raises(CorruptionError, match="depth"):
        check(p, root)


def test_separator_is_the_shortest_prefix_between():
    assert separator(b"abc", b"abd") == b"abd"
    assert separator(b"a", b"b") == b"b"
    assert separator(b"abc", b"abcd") == b"abcd"
    assert separator(b"x" * 9 + b"a", b"x" * 9 + b"bcdef") == b"x" * 9 + b"b"


# -- the model test ------------------------------------------------------------------------------

_step = st.tuples(
    st.sampled_from(["apply", "apply", "apply", "range", "drop"]),
    st.integers(0, 2**32),  # seed of the step's keys and values
    st.sampled_from([1, 3, 30, 300, 3000]),  # how many keys
)


def _step_changes(seed: int, n: int, prefix: bytes) -> dict[bytes, Cell | None]:
    rnd = random.Random(seed)
    out: dict[bytes, Cell | None] = {}
    for _ in range(n):
        r = rnd.random()
        key = prefix + b"%05d" % rnd.randrange(5000)
        if r < 0.02:
            key = b"L" * 520 + key  # spills
        if r < 0.3:
            out[key] = None
        elif r < 0.33:
            out[key] = _cell(rnd.randbytes(rnd.choice([1100, 9000])))  # spills
        elif r < 0.5:
            out[key] = (MERGE, rnd.randbytes(rnd.randrange(20)), 0)
        else:
            out[key] = _cell(rnd.randbytes(rnd.randrange(120)), rnd.choice([0, 0, 5]))
    return out


# Family 1's keys share a long prefix: its branches hold few keys, so its trees are deep and
# branches split and merge too.
_PREFIXES = [b"", b"P" * 300]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(_step, min_size=1, max_size=4), min_size=1, max_size=6))
def test_txns_match_a_dict_and_account_for_every_page(txns):
    p = Pager()
    fams = 2
    roots = [0] * fams
    models: list[dict[bytes, Cell]] = [{} for _ in range(fams)]
    for steps in txns:
        old_roots = list(roots)
        old_models = [dict(m) for m in models]
        t = p.txn()
        delta = 0
        for i, (kind, seed, n) in enumerate(steps):
            f = (seed + i) % fams
            before = len(models[f])
            if kind == "apply":
                changes = _step_changes(seed, n, _PREFIXES[f])
                roots[f] = t.apply(roots[f], sorted(changes.items()))
                for k, c in changes.items():
                    if c is None:
                        models[f].pop(k, None)
                    else:
                        models[f][k] = c
            elif kind == "range":
                rnd = random.Random(seed)
                lo, hi = sorted(_PREFIXES[f] + b"%05d" % rnd.randrange(5200) for _ in range(2))
                roots[f] = t.delete_range(roots[f], lo, hi)
                for k in [k for k in models[f] if lo <= k < hi]:
                    del models[f][k]
            else:
                t.drop(roots[f])
                roots[f] = 0
                models[f].clear()
            delta += len(models[f]) - before
        p.commit(t)
        assert t.count_delta == delta
        for no, node in t.nodes.items():  # the new nodes are what their pages decode to
            back = decode_node(no, t.dirty[no], p.page)
            assert _contents(back) == _contents(node) and back.size == node.size
            p.cache[no] = node  # as the engine does: check() then checks the Txn's own sizes
        # A reader of the old roots still sees the old contents: freed pages are not reused yet.
        for root, model in zip(old_roots, old_models, strict=True):
            _assert_tree(p, root, model)
        p.release(t.freed)
        reached = [_assert_tree(p, r, m) for r, m in zip(roots, models, strict=True)]
        every = [no for pages in reached for no in pages] + p.pool
        assert len(every) == len(set(every)), "a page reached or free twice"
        assert set(every) == set(range(2, p.high)), "a page neither reached nor free"
        for pages in reached:
            for no in pages:
                node_page = p.pages[no]
                if node_page[8] in (2, 3):
                    n = p.node(no)
                    base = 22 if isinstance(n, Branch) else 18
                    assert n.size - base <= CAPACITY
                    assert no == roots[reached.index(pages)] or n.size - base >= MIN_FILL


# -- relocate (the vacuum) -----------------------------------------------------------------------


def _scattered(seed: int, txns: int = 6) -> tuple[Pager, list[int], list[dict[bytes, Cell]]]:
    """Two trees built and thinned by several transactions: pages of both interleave, and
    spilled keys and values lie all over the file."""
    p = Pager()
    roots = [0, 0]
    models: list[dict[bytes, Cell]] = [{}, {}]
    rnd = random.Random(seed)
    for i in range(txns):
        t = p.txn()
        for f in (0, 1):
            changes = _step_changes(rnd.randrange(2**32), 1500 if i < 2 else 400, _PREFIXES[f])
            roots[f] = t.apply(roots[f], sorted(changes.items()))
            for k, c in changes.items():
                if c is None:
                    models[f].pop(k, None)
                else:
                    models[f][k] = c
        p.commit(t)
        p.release(t.freed)
    return p, roots, models


def _reached(p: Pager, roots: list[int]) -> list[int]:
    return [no for r in roots for no in check(p, r)]


def _relocate_all(p: Pager, roots: list[int], below: int) -> tuple[Txn, list[int]]:
    t = p.txn()
    new = [t.relocate(r, below) for r in roots]
    p.commit(t)
    return t, new


def test_relocating_above_every_page_changes_nothing():
    p, roots, _ = _scattered(1)
    pages = [p.pages[no] for no in _reached(p, roots)]
    p.cache.clear()
    p.reads = 0
    t, new = _relocate_all(p, roots, p.high)
    assert new == roots
    assert t.dirty == {} and t.freed == [] and t.unused == [] and t.count_delta == 0
    # Only branches and leaves that spill are decoded: a plain leaf that stays is not.
    assert p.reads == sum(pg[8] == 2 or (pg[8] == 3 and pg[9] & 1) for pg in pages) < len(pages)


def test_relocating_below_every_page_moves_every_page_and_keeps_the_contents():
    p, roots, models = _scattered(2)
    old = _reached(p, roots)
    t, new = _relocate_all(p, roots, 2)
    assert sorted(t.freed) == sorted(old)
    assert set(_reached(p, new)) == set(t.dirty)
    for root, model in zip(new, models, strict=True):
        _assert_tree(p, root, model)


def test_a_relocated_tree_has_the_same_shape_and_fill():
    p, roots, _ = _scattered(3)

    def shape(root: int) -> list[tuple[str, list[bytes], int]]:
        out = []
        todo = [root]
        while todo:
            node = p.node(todo.pop(0))
            out.append((type(node).__name__, list(node.keys), node.size))
            if isinstance(node, Branch):
                todo += node.children
        return out

    before = [shape(r) for r in roots]
    _t, new = _relocate_all(p, roots, p.high // 2)
    assert [shape(r) for r in new] == before


def test_a_vacuum_with_enough_free_pages_below_empties_the_tail():
    p, roots, models = _scattered(4)
    t = p.txn()
    roots = [t.delete_range(r, b"", b"3") for r in roots]  # frees pages all over the file
    for m in models:
        for k in [k for k in m if k < b"3"]:
            del m[k]
    p.commit(t)
    p.release(t.freed)
    reached = _reached(p, roots)
    # A copy needs a fresh page while the old one is still in use: the branches on the paths
    # and the rewritten key chains of copied nodes need room beyond the pages that move.
    nodes = [p.node(no) for no in reached if p.pages[no][8] in (2, 3)]
    extra = sum(isinstance(n, Branch) for n in nodes)
    extra += sum(-(-len(k) // 4076) for n in nodes if n.kref for k in n.kref)
    below = 2 + len(reached) + extra
    assert max(reached) >= below, "the test wants pages to move"
    p.lowest_first = True
    t, new = _relocate_all(p, roots, below)
    assert max(_reached(p, new)) < below
    p.release(t.freed)
    assert set(range(below, p.high)) <= set(p.pool), "the tail is free: the file can be cut"
    for root, model in zip(new, models, strict=True):
        _assert_tree(p, root, model)


def test_relocate_moves_a_value_chain_whole_when_any_page_is_above():
    p = Pager()
    model: dict[bytes, Cell] = {}
    value = random.Random(9).randbytes(3 * 4076 + 5)
    root = _apply(p, 0, model, {b"a": _cell(b"x"), b"big": _cell(value)})
    chain = sorted(check(p, root) - {root})
    assert len(chain) == 4
    t = p.txn()
    new = t.relocate(root, chain[-1])  # only the last chain page is at or above
    p.commit(t)
    assert sorted(t.freed) == sorted([root, *chain])
    assert get(p, new, b"big") == (PUT, value, 0)
    assert get(p, root, b"big") == (PUT, value, 0)  # the old tree still reads


def test_relocate_moves_the_chains_of_spilled_keys():
    p = Pager()
    model: dict[bytes, Cell] = {}
    prefix = b"p" * (MAX_KEY_INLINE + 100)
    root = _apply(p, 0, model, {prefix + b"%06d" % i: _cell(b"v%d" % i) for i in range(600)})
    nodes = [p.node(no) for no in check(p, root) if p.pages[no][8] in (2, 3)]
    key_chains = {h for n in nodes if n.kref for h in n.kref.values()}
    assert key_chains
    below = max(key_chains)
    t = p.txn()
    new = t.relocate(root, below)
    p.commit(t)
    assert max(key_chains) in t.freed
    assert all(no < below or no in t.dirty for no in check(p, new))
    p.cache.clear()
    _assert_tree(p, new, model)


def test_relocate_in_one_txn_with_apply_before_and_after():
    p, roots, models = _scattered(5)
    t = p.txn()
    extra = {b"zz%05d" % i: _cell(bytes(2000 + i)) for i in range(30)}
    roots[0] = t.apply(roots[0], sorted(extra.items()))
    roots[0] = t.relocate(roots[0], 2)
    roots[0] = t.relocate(roots[0], 2)  # its pages are the Txn's own now: they stay
    dropped = sorted(models[0])[::5]
    roots[0] = t.apply(roots[0], [(k, None) for k in dropped])
    p.commit(t)
    models[0].update(extra)
    for k in dropped:
        del models[0][k]
    assert set(check(p, roots[0])) <= set(t.dirty)
    _assert_tree(p, roots[0], models[0])


def test_relocate_of_an_empty_tree_is_empty():
    p = Pager()
    t = p.txn()
    assert t.relocate(0, 2) == 0
    t.finish()
    assert t.dirty == {}


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(_step, min_size=1, max_size=3), min_size=1, max_size=5),
    st.lists(_step, max_size=2),
    st.lists(_step, max_size=2),
    st.floats(0, 1.05),
    st.booleans(),
)
def test_relocate_keeps_contents_and_accounts_for_every_page(history, before, after, where, lowest):
    p = Pager()
    roots = [0, 0]
    models: list[dict[bytes, Cell]] = [{}, {}]

    def run(t: Txn, steps: list[tuple[str, int, int]]) -> None:
        for i, (kind, seed, n) in enumerate(steps):
            f = (seed + i) % 2
            if kind == "drop":
                t.drop(roots[f])
                roots[f] = 0
                models[f].clear()
                continue
            if kind == "range":
                rnd = random.Random(seed)
                lo, hi = sorted(_PREFIXES[f] + b"%05d" % rnd.randrange(5200) for _ in range(2))
                roots[f] = t.delete_range(roots[f], lo, hi)
                for k in [k for k in models[f] if lo <= k < hi]:
                    del models[f][k]
                continue
            changes = _step_changes(seed, n, _PREFIXES[f])
            roots[f] = t.apply(roots[f], sorted(changes.items()))
            for k, c in changes.items():
                if c is None:
                    models[f].pop(k, None)
                else:
                    models[f][k] = c

    for steps in history:
        t = p.txn()
        run(t, steps)
        p.commit(t)
        p.release(t.freed)
    old_roots = list(roots)
    old_models = [dict(m) for m in models]
    old = set(_reached(p, roots))
    pool = set(p.pool)
    assert old | pool == set(range(2, p.high))
    p.lowest_first = lowest
    p.taken = []
    below = 2 + int(where * (p.high - 2))
    t = p.txn()
    run(t, before)
    roots = [t.relocate(r, below) for r in roots]
    moved_at = [r for r in roots]
    run(t, after)
    p.commit(t)
    for no, node in t.nodes.items():
        p.cache[no] = node
    # The old trees still read what they held: nothing they reach was changed.
    for root, model in zip(old_roots, old_models, strict=True):
        _assert_tree(p, root, model)
    reached = [_assert_tree(p, r, m) for r, m in zip(roots, models, strict=True)]
    new = set().union(*reached)
    assert sum(map(len, reached)) == len(new)
    assert all(no < below or no in t.dirty for no in new)
    if not before and not after:
        assert moved_at == roots
    # Every old page is kept or freed, exactly once; every page taken is dirty or unused.
    assert len(set(t.freed)) == len(t.freed)
    assert set(t.freed) <= old
    assert (new & old) | set(t.freed) == old and not new & set(t.freed)
    assert sorted(p.taken) == sorted([*t.dirty, *t.unused])
    assert new - old == set(t.dirty) - set(t.unused)
