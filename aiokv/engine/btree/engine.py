"""The B+Tree engine: memtables over one WAL in front of a copy-on-write B+Tree per family.

Writes go through the same group committer as the LSM engine (engine/front.py): a group of
batches is one WAL record and one fsync when any of them asked for sync, and durability modes
mean the same.  A *checkpoint* moves the frozen memtables of every family into the trees as
one copy-on-write transaction (tree.Txn): the dirty pages are written and synced, then the
other meta page, then synced again (docs/format/btree.md); only then do the trees' new roots
replace the memtables in the read path, and the WAL segments they held are deleted.

Reads run inline on the loop: memtables, then the tree from the page file's mapping through a
cache of decoded nodes; a get of a key the memtables lack walks root to leaf.  A tree entry
reads as sequence number `checkpoint_seq` (every op at or below it is in the tree), so range
tombstones newer than the checkpoint cover it and older ones do not.

Snapshots: a snapshot (or scan) pins the roots of the checkpoint it began under, and the
memtables a later checkpoint moved into the trees stay readable for it (`_retired`) until it
is released.  Free pages: the pages a checkpoint frees are reused only once no snapshot pins
a checkpoint older than it (`_pending`), and only by a later checkpoint, after its meta page
is durable, so the previous meta page's tree stays whole for a torn meta write.

Open (blocking, in the pool): directory, LOCK, IDENTITY ("btree"), the page file (created
with an empty default family, or its newest valid meta page read), the catalog and the free
list, then the WAL replayed past `checkpoint_seq`.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiokv.engine.batch_format import Op
from aiokv.engine.btree import scan as btree_scan
from aiokv.engine.btree import tree
from aiokv.engine.btree.chain import decode_chain, encode_chain
from aiokv.engine.btree.nodes import NodeCache
from aiokv.engine.btree.page_format import (
    PAGE_SIZE,
    FamilyRecord,
    Meta,
    catalog_pages_needed,
    decode_catalog,
    decode_freelist,
    decode_meta,
    encode_catalog,
    encode_freelist,
    encode_meta,
    freelist_pages_needed,
)
from aiokv.engine.btree.pagefile import PAGES_FILE, PageFile
from aiokv.engine.front import DEFAULT_CF, MemtableEngine, RangeDel, open_failure
from aiokv.engine.fs import join
from aiokv.engine.lsm.recovery import replay_wal
from aiokv.engine.memtable import DELETE, MERGE, PUT, PUT_EXPIRING, Entry, Memtable
from aiokv.engine.merge_fold import fold
from aiokv.engine.wal import WalWriter
from aiokv.errors import (
    ColumnFamilyError,
    CorruptionError,
    StorageIOError,
)
from aiokv.family_options import (
    DEFAULT_FAMILY,
    FamilyOptions,
    decode,
    encode,
    for_new_family,
    reconcile,
)
from aiokv.merge import MergeOperator
from aiokv.options import Options

CHECKPOINT_SLICE = 1024  # keys applied to a tree between two yields to the loop
Node = Any  # tree.Leaf | tree.Branch


class BTreeFamily:
    """A live family: its options and its tree's root page (0: empty)."""

    __slots__ = ("count", "expiring", "id", "name", "opts", "root")

    def __init__(self, cf: int, name: str, opts: FamilyOptions, root: int, count: int) -> None:
        self.id = cf
        self.name = name
        self.opts = opts
        self.root = root
        self.count = count
        # Whether the tree may hold PUT_EXPIRING cells: unknown after an open, so the first
        # TTL sweep walks it; a sweep that finds none clears it, a checkpoint writing one sets it.
        self.expiring = True

    @property
    def op(self) -> MergeOperator | None:
        return self.opts.merge_operator


class _TxnReader:
    """Reads through a transaction's own new nodes first (a checkpoint folding merges)."""

    __slots__ = ("_engine", "_txn")

    def __init__(self, reader: NodeCache, txn: tree.Txn) -> None:
        self._engine = reader
        self._txn = txn

    def node(self, no: int) -> Node:
        n = self._txn.nodes.get(no)
        return n if n is not None else self._engine.node(no)

    def page(self, no: int) -> bytes:
        page = self._txn.dirty.get(no)  # an overflow chain this transaction wrote
        return page if page is not None else self._engine.page(no)

    @property
    def path(self) -> str:
        return self._engine.path


class BTreeEngine(MemtableEngine):
    """See the module docstring."""

    families: dict[int, BTreeFamily]

    def __init__(self, path: str | None, options: Options, pool: ThreadPoolExecutor) -> None:
        super().__init__(path, options, pool)
        self.pages: PageFile | None = None
        self.meta = Meta(
            txn_id=0, page_count=2, catalog_root=0, freelist_head=0, checkpoint_seq=0,
            max_family_id=0,
        )  # fmt: skip
        self.reader = NodeCache(options.block_cache_size // PAGE_SIZE)
        self._free: list[int] = []  # reusable now, highest first (pop() takes the lowest)
        self._pending: list[tuple[int, list[int]]] = []  # (txn that freed them, pages)
        self._chains: list[int] = []  # the pages of the catalog and free-list chains
        self._views: dict[int, int] = {}  # snapshot seq -> txn whose roots it reads
        self._roots_at: dict[int, tuple[int, dict[int, int]]] = {}  # txn -> (cp seq, roots)
        # Memtables a checkpoint moved into the trees, kept for older snapshots:
        # (txn that moved it, cf, memtable).
        self._retired: list[tuple[int, int, Memtable]] = []
        self._checkpoint_lock = asyncio.Lock()
        self._grow = 0  # the next page past the file's end, during a commit
        self._taken: list[int] = []  # free pages the commit in flight took
        self._install(DEFAULT_CF, DEFAULT_FAMILY, reconcile(
            DEFAULT_FAMILY, {}, self._default_given(), options.given
        ), 0, 0, 0)  # fmt: skip
        self.hot_table = self.mems[DEFAULT_CF].table
        self.committer = self._make_committer(None, 0)

    def _install(
        self, cf: int, name: str, fo: FamilyOptions, root: int, count: int, first_segment: int
    ) -> None:
        self.families[cf] = BTreeFamily(cf, name, fo, root, count)
        self._install_memtable(cf, fo, first_segment)
        self._refresh_rdels(cf)

    # -- open and recovery ----------------------------------------------------------------------

    @classmethod
    async def open(cls, path: str | None, options: Options) -> BTreeEngine:
        pool = ThreadPoolExecutor(max_workers=options.io_threads, thread_name_prefix="aiokv-io")
        engine = cls(path, options, pool)
        if path is None:
            engine._load_families([])
            return engine
        try:
            loop = asyncio.get_running_loop()
            wal, last_seq, new = await loop.run_in_executor(pool, engine._open_files, path)
        except BaseException:
            if engine.pages is not None:
                engine.pages.close()
            engine._release_lock()
            pool.shutdown(wait=False)
            raise
        engine.committer = engine._make_committer(wal, last_seq)
        engine._wal_number = wal.number
        engine._start_background()
        if new:  # families `column_families` named that did not exist: durable before use
            fams = engine.families
            await engine._commit(
                {}, {cf: FamilyRecord(cf, fams[cf].name, encode(fams[cf].opts), 0, 0) for cf in new}
            )
        return engine

    def _open_files(self, path: str) -> tuple[WalWriter, int, list[int]]:
        fs = self.fs
        try:
            self._open_dir(path, "btree")
            file = join(path, PAGES_FILE)
            if fs.exists(file):
                records = self._read_file(file)
            else:
                records = self._create_file(file)
                fs.sync_dir(path)
            new = self._load_families(records)
            cp = self.meta.checkpoint_seq
            flushed = {cf: cp for cf in self.families}
            last_seq, next_number = replay_wal(fs, path, 0, flushed, cp, self._replay_into)
            return WalWriter.create(fs, path, next_number), last_seq, new
        except StorageIOError:
            raise
        except OSError as e:
            raise open_failure(path, e) from e

    def _create_file(self, file: str) -> list[FamilyRecord]:
        """A new page file: an empty default family in the catalog, no free pages."""
        fo = self.families[DEFAULT_CF].opts
        records = [FamilyRecord(DEFAULT_CF, DEFAULT_FAMILY, encode(fo), 0, 0)]
        chain = list(range(2, 2 + catalog_pages_needed(records)))
        meta = Meta(
            txn_id=1, page_count=2 + len(chain), catalog_root=chain[0], freelist_head=0,
            checkpoint_seq=0, max_family_id=DEFAULT_CF,
        )  # fmt: skip
        pages = dict(zip(chain, encode_catalog(records, chain), strict=True))
        pages[0] = bytes(PAGE_SIZE)  # no valid meta in slot 0 yet
        pages[1] = encode_meta(meta)
        self.pages = self.reader.pages = PageFile.create(self.fs, file, pages)
        self.meta = meta
        self._chains = chain
        return records

    def _read_file(self, file: str) -> list[FamilyRecord]:
        pages = self.pages = self.reader.pages = PageFile.open(self.fs, file)
        metas = [m for m in (decode_meta(pages.read(0)), decode_meta(pages.read(1))) if m]
        if not metas:
            raise CorruptionError(file, 0, "neither meta page is valid")
        meta = max(metas, key=lambda m: m.txn_id)
        if meta.page_count > pages.page_count:
            raise CorruptionError(
                file, pages.page_count * PAGE_SIZE,
                f"the meta page counts {meta.page_count} pages; the file holds "
                f"{pages.page_count}",
            )  # fmt: skip
        self.meta = meta
        records, cat_chain = decode_catalog(pages.read, meta.catalog_root)
        free, free_chain = (
            decode_freelist(pages.read, meta.freelist_head) if meta.freelist_head else ([], [])
        )
        # Pages past the meta's count were written by a checkpoint that never committed.
        self._free = sorted(set(free), reverse=True)
        self._chains = cat_chain + free_chain
        return records

    def _load_families(self, records: list[FamilyRecord]) -> list[int]:
        """Installs the catalog's families with their reconciled options, then the ones
        `column_families` names that do not exist yet; returns the ids of those."""
        o = self.options
        for r in records:
            persisted = decode(r.options, PAGES_FILE)
            if r.id == DEFAULT_CF:
                names = o.given | set(o.column_families.get(DEFAULT_FAMILY, {}))
                fo = reconcile(r.name, persisted, self._default_given(), frozenset(names))
            else:
                given = dict(o.column_families.get(r.name, {}))
                fo = reconcile(r.name, persisted, given, frozenset(given))
            self._install(r.id, r.name, fo, r.root, r.count, 0)
        new: list[int] = []
        for name, wanted in o.column_families.items():
            if self.family_id(name) is None:
                cf = self.meta.max_family_id + 1
                self.meta = _with(self.meta, max_family_id=cf)
                self._install(cf, name, for_new_family(o, wanted), 0, 0, 0)
                new.append(cf)
        self.hot_table = self.mems[DEFAULT_CF].table
        return new

    def _replay_into(self, segment: int, ops: list[Op], base_seq: int) -> None:
        self._wal_number = segment
        self.apply_ops(ops, base_seq)

    def _start_background(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._checkpoint_loop(), name="aiokv-checkpoint"),
            loop.create_task(self._ttl_gc_loop(), name="aiokv-ttl-gc"),
        ]
        if any(self.imms.values()):
            self._flush_wanted.set()
        self._update_stall()

    # -- the persistent layer (front.py hooks) --------------------------------------------------

    def _tree_at(self, cf: int, seq: int | None) -> tuple[int, int, int | None]:
        """(root, checkpoint seq, txn of the view or None for the newest) for a read."""
        if seq is not None and self._views:
            t = self._views.get(seq)
            if t is not None and t != self.meta.txn_id:
                cp, roots = self._roots_at[t]
                return roots.get(cf, 0), cp, t
        return self.families[cf].root, self.meta.checkpoint_seq, None

    def get_latest(self, key: bytes) -> bytes | None:
        """The facade's get fast path after a memtable miss: with no frozen memtable and no
        range tombstone in the way, straight down the default family's tree."""
        if self.imms[DEFAULT_CF] or self._rdels[DEFAULT_CF]:
            return super().get_latest(key)
        cell = tree.get(self.reader, self.families[DEFAULT_CF].root, key)
        if cell is None:
            return None
        kind = cell[0]
        if kind == PUT:
            return cell[1]
        if kind == PUT_EXPIRING:
            return cell[1] if cell[2] > self._now_ms() else None
        entry = (kind, cell[1], self.meta.checkpoint_seq, cell[2])
        return self._value(DEFAULT_CF, key, entry, None)

    def _table_get(self, cf: int, key: bytes, seq: int | None) -> Entry | None:
        root, cp, view = self._tree_at(cf, seq)
        if view is not None:
            for txn, rcf, mem in self._retired:  # newest first
                if txn > view and rcf == cf:
                    e = mem.entry_at(key, seq) if seq is not None else mem.table.get(key)
                    if e is not None:
                        return e
        if not root:
            return None
        cell = tree.get(self.reader, root, key)
        if cell is None:
            return None
        return (cell[0], cell[1], cp, cell[2])

    def _table_chain(self, cf: int, key: bytes, seq: int | None, add: Any) -> None:
        root, cp, view = self._tree_at(cf, seq)
        if view is not None:
            for txn, rcf, mem in self._retired:
                if txn > view and rcf == cf and add(mem.versions_at(key, seq)):
                    return
        if not root:
            return
        cell = tree.get(self.reader, root, key)
        if cell is None:
            return
        if cell[0] == MERGE:
            add(decode_chain(cell[1], cp, PAGES_FILE))
        else:
            add([(cell[0], cell[1], cp, cell[2])])

    def _table_range_dels(self, cf: int) -> list[RangeDel]:
        out: list[RangeDel] = []
        for _, rcf, mem in self._retired:
            if rcf == cf:
                out += mem.range_dels
        return out

    def _table_stall(self) -> tuple[bool, bool]:
        return False, False

    @property
    def _log_number(self) -> int:
        return self._log_number_after(None)

    # Up to `limit` keys of a scan's walk: (items, last key looked at or None at the end).
    scan_chunk = btree_scan.scan_chunk

    # -- snapshots ------------------------------------------------------------------------------

    def acquire_snapshot(self, seq: int | None = None) -> int:
        seq = super().acquire_snapshot(seq)
        if seq not in self._views:
            t = self.meta.txn_id
            self._views[seq] = t
            if t not in self._roots_at:
                roots = {cf: f.root for cf, f in self.families.items()}
                self._roots_at[t] = (self.meta.checkpoint_seq, roots)
        return seq

    def release_snapshot(self, seq: int) -> None:
        super().release_snapshot(seq)
        if seq in self._snapshots or seq not in self._views:
            return
        del self._views[seq]
        self._forget_unpinned()

    def _forget_unpinned(self) -> None:
        """Lets go of what only released snapshots needed: old roots, retired memtables,
        and the pages freed since the oldest pinned checkpoint become reusable."""
        oldest = min(self._views.values(), default=self.meta.txn_id)
        self._roots_at = {t: r for t, r in self._roots_at.items() if t in self._views.values()}
        retired = [r for r in self._retired if r[0] > oldest]
        if len(retired) != len(self._retired):
            cfs = {r[1] for r in self._retired}
            self._retired = retired
            for cf in cfs:
                self._refresh_rdels(cf)
        ready = [p for t, p in self._pending if t <= oldest]
        if ready:
            self._pending = [(t, p) for t, p in self._pending if t > oldest]
            for pages in ready:
                self._free.extend(pages)
            self._free.sort(reverse=True)

    # -- checkpoints ----------------------------------------------------------------------------

    async def _checkpoint_loop(self) -> None:
        try:
            while not self._closing:
                await self._flush_wanted.wait()
                self._flush_wanted.clear()
                if self.error is None and not self._closing and any(self.imms.values()):
                    await self._commit({}, {})
        except asyncio.CancelledError:
            raise
        except BaseException as e:
            self.poison(e)

    async def flush(self) -> None:
        """Freezes every memtable and waits until the trees hold them (one checkpoint)."""
        if self.path is None:
            return
        await self._commit({}, {})

    def _alloc(self) -> int:
        if self._free:
            no = self._free.pop()
            self._taken.append(no)  # check() counts it while the commit is in flight
            return no
        no = self._grow
        self._grow += 1
        return no

    async def _commit(
        self,
        deletes: dict[int, list[bytes]],
        catalog: dict[int, FamilyRecord | None],
        relocate: bool = False,
    ) -> None:
        """One transaction: `deletes` (expired keys, by family) first, then every frozen
        memtable, oldest first; `catalog` adds (a record) or drops (None) families.
        `relocate` (a vacuum) moves every tree page above the count of pages in use down
        into free pages, so that the next transaction can cut the file."""
        async with self._checkpoint_lock:
            self._raise_if_poisoned()
            if self.path is None:
                return
            # Every family's memtable is frozen: the tree then holds every op up to cp_seq,
            # the one number the WAL replay skips to (a group still in flight has a higher
            # sequence number and goes to the new memtables).
            cp_seq = self.committer.last_seq
            for cf, mem in self.mems.items():
                if mem.table or mem.range_dels:
                    self._switch(cf, cp_seq)
            batch = {cf: [m for m, _, _ in reversed(imms)] for cf, imms in self.imms.items()}
            batch = {cf: ms for cf, ms in batch.items() if ms}
            if not (batch or deletes or catalog or relocate):
                return  # nothing to write: no transaction
            try:
                await self._transaction(batch, deletes, catalog, cp_seq, relocate)
            finally:
                if self._taken:  # failed (poisoned) or done: nothing is in flight any more
                    self._taken = []
        await self._delete_segments_below(self._log_number_after(None))

    async def _transaction(
        self,
        batch: dict[int, list[Memtable]],
        deletes: dict[int, list[bytes]],
        catalog: dict[int, FamilyRecord | None],
        cp_seq: int,
        relocate: bool,
    ) -> None:
        self._grow = self.meta.page_count
        self._trim_free_tail()
        in_use = self._grow - len(self._free) - sum(len(p) for _, p in self._pending)
        txn = tree.Txn(self.reader, self._alloc)
        reader = _TxnReader(self.reader, txn)
        roots = {cf: f.root for cf, f in self.families.items()}
        counts = {cf: f.count for cf, f in self.families.items()}  # keys in each tree
        for cf, keys in deletes.items():
            if cf in roots and keys:
                before = txn.count_delta
                roots[cf] = txn.apply(roots[cf], [(k, None) for k in keys])
                counts[cf] += txn.count_delta - before
        now = self._now_ms()
        for cf, mems in batch.items():
            if cf not in roots:
                continue  # dropped meanwhile
            for mem in mems:
                before = txn.count_delta
                roots[cf] = await self._apply_memtable(txn, reader, cf, roots[cf], mem, now)
                counts[cf] += txn.count_delta - before
        for cf, rec in catalog.items():
            if rec is None and cf in roots:
                txn.drop(roots.pop(cf))
        if relocate:
            # The nodes on the path to a moved page are copied too, and their old pages are
            # free only after the commit: a slack of about one branch per 32 pages lets all
            # of it land below the cut.
            below = in_use + in_use // 32 + 8
            for cf in roots:
                roots[cf] = txn.relocate(roots[cf], below)
        txn.finish()
        by_id = {
            cf: FamilyRecord(cf, f.name, encode(f.opts), roots[cf], counts[cf])
            for cf, f in self.families.items()
            if cf in roots
        }
        by_id.update((cf, r) for cf, r in catalog.items() if r is not None)
        records = [by_id[cf] for cf in sorted(by_id)]
        self._free.extend(txn.unused)  # taken and then not needed: free at once
        self._free.sort(reverse=True)
        freed = list(txn.freed) + self._chains
        cat_chain = [self._alloc() for _ in range(catalog_pages_needed(records))]
        pages = dict(txn.dirty)
        pages.update(zip(cat_chain, encode_catalog(records, cat_chain), strict=True))
        # The free list on disk: what is free once this transaction is durable (no
        # reader survives a reopen), less the pages of its own chain.
        free_all, free_chain = self._free_list(set(freed).union(*(p for _, p in self._pending)))
        if free_chain:
            pages.update(zip(free_chain, encode_freelist(free_all, free_chain), strict=True))
        max_cf = max([self.meta.max_family_id, *catalog])
        meta = Meta(
            txn_id=self.meta.txn_id + 1, page_count=self._grow,
            catalog_root=cat_chain[0], freelist_head=free_chain[0] if free_chain else 0,
            checkpoint_seq=cp_seq, max_family_id=max_cf,
        )  # fmt: skip
        if batch and len(self.families) > 0 and self.committer.wal is not None:
            await self.committer.sync_wal()  # a tree is never ahead of the WAL
        try:
            await self._in_pool(self._write_commit, pages, meta)
        except OSError as e:
            self.poison(e)
            raise StorageIOError(f"checkpoint of {self.path} failed: {e}", e) from e
        # No await from here to the end: the new roots replace the memtables at once.
        self._publish(meta, roots, counts, batch, freed, txn)
        self._chains = cat_chain + free_chain

    async def _apply_memtable(
        self, txn: tree.Txn, reader: _TxnReader, cf: int, root: int, mem: Memtable, now: int
    ) -> int:
        for lo, hi, _ in mem.range_dels:
            root = txn.delete_range(root, lo, hi)
        keys = mem.keys_in_range(None, None)
        table = mem.table
        op = self.families[cf].op
        for i in range(0, len(keys), CHECKPOINT_SLICE):
            changes: list[tuple[bytes, tree.Cell | None]] = []
            for k in keys[i : i + CHECKPOINT_SLICE]:
                e = table[k]
                kind = e[0]
                if kind == PUT:
                    changes.append((k, (PUT, e[1], 0)))
                elif kind == PUT_EXPIRING:
                    changes.append((k, (PUT_EXPIRING, e[1], e[3]) if e[3] > now else None))
                    self.families[cf].expiring = True
                elif kind == MERGE:
                    changes.append((k, self._fold_cell(reader, op, root, k, mem, now)))
                else:
                    changes.append((k, None))
            root = txn.apply(root, changes)
            await asyncio.sleep(0)
        return root

    def _fold_cell(
        self,
        reader: _TxnReader,
        op: MergeOperator | None,
        root: int,
        key: bytes,
        mem: Memtable,
        now: int,
    ) -> tree.Cell | None:
        """The cell a merge chain becomes: folded onto its base where it can be."""
        chain = mem.versions_at(key, None)
        run = next((i for i, e in enumerate(chain) if e[0] != MERGE), None)
        if run is not None:
            chain = chain[: run + 1]
        elif root:
            cell = tree.get(reader, root, key)
            if cell is not None:
                below = (
                    decode_chain(cell[1]) if cell[0] == MERGE else [(cell[0], cell[1], 0, cell[2])]
                )
                chain = chain + below
        if op is not None:
            try:
                chain = fold(op, key, chain, now, True)
            except Exception:
                self.stats.merge_failures += 1
        if len(chain) == 1:
            e = chain[0]
            if e[0] == PUT:
                return (PUT, e[1], 0)
            if e[0] == PUT_EXPIRING:
                return (PUT_EXPIRING, e[1], e[3]) if e[3] > now else None
            if e[0] == DELETE:
                return None
        return (MERGE, encode_chain(chain), 0)

    def _write_commit(self, pages: dict[int, bytes], meta: Meta) -> None:
        """Blocking: the pages, sync, the meta page in its slot, sync, then a new mapping.
        A file longer than the meta page's count (a free tail was cut) is truncated after:
        if that is lost to a crash, the pages past the count are ignored at open."""
        pf = self.pages
        assert pf is not None
        pf.write_pages(pages)
        if pf.file_pages < meta.page_count:  # pages taken, then unused, at the end
            pf.truncate(meta.page_count)
        pf.sync()
        pf.write_pages({meta.txn_id % 2: encode_meta(meta)})
        pf.sync()
        if pf.file_pages > meta.page_count:
            pf.truncate(meta.page_count)
        pf.remap()

    def _free_list(self, unsafe: set[int]) -> tuple[list[int], list[int]]:
        """The free list to write and the pages of its chain.  The chain takes the lowest
        free pages when a chain length c fits the list left, f(N - c) == c (so that the
        file's tail stays cuttable), else pages past the end.  `unsafe`: free pages an old
        root may still reach (pending), which the chain must not overwrite."""
        entries = set(self._free) | unsafe
        total = len(entries)
        need = freelist_pages_needed(range(total))
        for c in range(min(need, len(self._free)), 0, -1):
            if freelist_pages_needed(range(total - c)) == c:
                chain = [self._alloc() for _ in range(c)]
                return sorted(entries.difference(chain)), chain
        chain = list(range(self._grow, self._grow + need))
        self._grow += need
        return sorted(entries), chain

    def _trim_free_tail(self) -> None:
        """Free pages at the end of the file leave it: the transaction starts below them."""
        free = self._free  # highest first
        cut = self._grow
        n = 0
        while n < len(free) and free[n] == cut - 1:
            cut -= 1
            n += 1
        if n:
            del free[:n]
            self._grow = cut

    def _publish(
        self,
        meta: Meta,
        roots: dict[int, int],
        counts: dict[int, int],
        batch: dict[int, list[Memtable]],
        freed: list[int],
        txn: tree.Txn,
    ) -> None:
        cache = self.reader
        for no in freed:
            cache.forget(no)
        for no, node in txn.nodes.items():  # the new nodes, decoded already
            cache.put(no, node)
        self.meta = meta
        for cf, root in roots.items():
            fam = self.families.get(cf)
            if fam is not None:
                fam.root = root
                fam.count = counts[cf]
        pinned = bool(self._views)
        for cf, mems in batch.items():
            imms = self.imms.get(cf)
            if imms is None:
                continue
            done = {id(m) for m in mems}
            self.imms[cf] = [x for x in imms if id(x[0]) not in done]
            if pinned:
                self._retired[:0] = [(meta.txn_id, cf, m) for m in reversed(mems)]
            self._refresh_rdels(cf)
        self._pending.append((meta.txn_id, freed))
        self._forget_unpinned()
        self.stats.flushes += 1
        self._update_stall()

    # -- TTL ------------------------------------------------------------------------------------

    async def collect_expired(self) -> int:
        """Deletes from the trees every entry expired by the clock now; returns how many."""
        if self.path is None:
            return 0
        now = self._now_ms()
        deletes: dict[int, list[bytes]] = {}
        for cf, fam in list(self.families.items()):
            if not fam.expiring:
                continue
            lo: bytes | None = None
            live = False  # expiring cells still ahead of the clock
            while fam.root and self.error is None and not self._closing:
                items = tree.scan(self.reader, fam.root, lo, False, None, False, CHECKPOINT_SLICE)
                expiring = [(k, c[2]) for k, c in items if c[0] == PUT_EXPIRING]
                deletes.setdefault(cf, []).extend(k for k, x in expiring if x <= now)
                live = live or any(x > now for _, x in expiring)
                if len(items) < CHECKPOINT_SLICE:
                    break
                lo = items[-1][0]
                await asyncio.sleep(0)
            else:
                continue  # stopped early: keep the flag
            fam.expiring = live
        count = sum(map(len, deletes.values()))
        if count:
            await self._commit(deletes, {})
            self.stats.ttl_gc_tasks += 1
        self._raise_if_poisoned()
        return count

    async def compact_range(self, cf: int, lo: bytes | None, hi: bytes | None) -> None:
        """Moves every memtable into the trees, removes expired entries, then gives free
        space back: the tree pages past the pages in use move down into free ones (a
        vacuum), and the next transaction cuts the free tail off the file.  While a
        snapshot pins older pages the file is not cut (they are not free yet)."""
        if cf not in self.families:
            raise ColumnFamilyError("the column family was dropped")
        await self.flush()
        await self.collect_expired()
        if self.path is not None and not self._views:
            await self._commit({}, {}, relocate=True)
            await self._commit({}, {}, relocate=True)  # cuts what the first one freed
        self._raise_if_poisoned()

    # -- families -------------------------------------------------------------------------------

    async def create_family(self, name: str, given: dict[str, Any]) -> int:
        fo = for_new_family(self.options, given)
        async with self._family_lock:
            if self.family_id(name) is not None:
                raise ColumnFamilyError(f"column family {name!r} already exists")
            self._raise_if_poisoned()
            cf = self.meta.max_family_id + 1
            if self.path is not None:
                rec = FamilyRecord(cf, name, encode(fo), 0, 0)
                await self._commit({}, {cf: rec})
            else:
                self.meta = _with(self.meta, max_family_id=cf)
            self._install(cf, name, fo, 0, 0, self._wal_number_now())
            return cf

    async def drop_family(self, cf: int) -> None:
        async with self._family_lock:
            fam = self.families[cf]
            self._raise_if_poisoned()
            if self.path is not None:
                await self._commit({}, {cf: None})
            self.families.pop(cf, None)
            for m in (self.mems.pop(cf), *(m for m, _, _ in self.imms.pop(cf))):
                m.set_keep_history(False)
            self._rdels.pop(cf, None)
            self._retired = [r for r in self._retired if r[1] != cf]
            del fam
            self._update_stall()

    # -- checks, stats, shutdown ----------------------------------------------------------------

    def check(self) -> None:
        """Checks every memtable and tree, and that each page of the file is in exactly one
        place: a meta page, a chain, a tree, or free."""
        for mem in self.mems.values():
            mem.check()
        if self.pages is None:
            return
        seen: dict[int, str] = {0: "meta", 1: "meta"}

        def claim(pages: Any, what: str) -> None:
            for no in pages:
                if no in seen:
                    raise CorruptionError(
                        self.pages.path if self.pages else "", no * PAGE_SIZE,
                        f"page {no} is both {seen[no]} and {what}",
                    )  # fmt: skip
                seen[no] = what

        claim(self._chains, "catalog or free list")
        for cf, f in self.families.items():
            if f.root:
                claim(tree.check(self.reader, f.root), f"tree of family {cf}")
        claim(self._free, "free")
        claim(set(self._taken) - set(self._free), "taken by the commit in flight")
        claim([p for _, ps in self._pending for p in ps], "freed")
        missing = sorted(set(range(self.meta.page_count)) - set(seen))
        if missing:
            raise CorruptionError(
                self.pages.path, missing[0] * PAGE_SIZE,
                f"{len(missing)} page(s) neither reachable nor free (first {missing[0]})",
            )  # fmt: skip

    def stats_dict(self, cf: int = DEFAULT_CF) -> dict[str, int]:
        s = self.stats.as_dict()
        s["memtables_frozen"] = sum(len(x) for x in self.imms.values())
        s["column_families"] = len(self.families)
        s["btree_pages"] = self.meta.page_count
        s["btree_free_pages"] = len(self._free) + sum(len(p) for _, p in self._pending)
        s["btree_txn_id"] = self.meta.txn_id
        s["btree_keys"] = self.families[cf].count  # in the family's tree (not its memtables)
        s["btree_cached_nodes"] = len(self.reader)
        return s

    async def close(self) -> None:
        await self._stop_tasks()
        try:
            await self.committer.close(sync=self.error is None)
        finally:
            self._pool.shutdown(wait=True)
            if self.pages is not None:
                self.pages.close()
            self._release_lock()

    def abandon(self) -> None:
        for t in self._tasks:
            t.cancel()
        wal = self.committer.wal
        if wal is not None:
            wal.close()
        if self.pages is not None:
            self.pages.close()
        self._release_lock()
        self._pool.shutdown(wait=False)


def _with(meta: Meta, **changes: int) -> Meta:
    fields = {k: getattr(meta, k) for k in meta.__dataclass_fields__}
    fields.update(changes)
    return Meta(**fields)
