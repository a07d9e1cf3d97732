"""The block cache stays within its byte bound; the table cache within its count."""

from __future__ import annotations

import aiokv
from aiokv.engine.memfs import MemFileSystem
from tests.tiny import TINY_LSM


async def _store(**options):
    fs = MemFileSystem()
    db = await aiokv.open("/db", fs=fs, **TINY_LSM, **options)
    for i in range(4000):
        await db.put(f"k{i:05d}", b"v" * 60)
    await db.compact_range()
    return db


async def test_block_cache_never_holds_more_than_its_capacity():
    db = await _store(block_cache_size=20_000)
    try:
        cache = db._engine.block_cache
        for i in range(0, 4000, 7):
            for _ in range(2):  # the second get of a key finds its block cached
                assert await db.get(f"k{i:05d}") == b"v" * 60
            assert cache.used <= cache.capacity
        assert len(cache) > 0
        assert cache.used == sum(b.nbytes for b in cache._map.values())
        stats = db.stats()
        assert stats["block_cache_misses"] > 0 and stats["block_cache_hits"] > 0
    finally:
        await db.aclose()


async def test_table_cache_keeps_at_most_max_open_files_tables_open():
    db = await _store(max_open_files=16)
    try:
        tables = db._engine.tables
        assert len(db._engine.versions.current[0].numbers()) > 16
        for i in range(0, 4000, 3):
            assert await db.get(f"k{i:05d}") == b"v" * 60
            assert len(tables._open) <= 16
        assert db.stats()["table_opens"] > 16  # closed tables were opened again on demand
    finally:
        await db.aclose()


async def test_a_scan_in_progress_survives_compactions_that_delete_its_tables():
    db = await _store()
    try:
        want = [f"k{i:05d}".encode() for i in range(4000)]
        seen = []
        async for k, _ in db.scan():
            seen.append(k)
            if len(seen) == 1000:
                for i in range(4000):  # every table is rewritten under the scan
                    await db.put(f"k{i:05d}", b"w" * 60)
                await db.compact_range()
        assert seen == want
    finally:
        await db.aclose()
