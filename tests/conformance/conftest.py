"""The stores every contract test runs on: each engine configuration, and the dict model."""

from __future__ import annotations

import pytest

import aiokv
from aiokv.engine.memfs import MemFileSystem
from tests.model import ModelDB

# Sizes small enough that a few hundred writes flush memtables and compact tables, so every
# contract test also runs across flushes and compactions.
TINY_LSM = {
    "write_buffer_size": 16 * 1024,
    "block_size": 256,
    "target_file_size": 16 * 1024,
    "max_bytes_for_level_base": 64 * 1024,
    "level_multiplier": 4,
    "l0_compaction_trigger": 2,
}


@pytest.fixture(params=["model", "lsm-in-memory", "lsm-memfs", "lsm-disk", "lsm-tiny"])
async def store(request, tmp_path):
    if request.param == "model":
        yield ModelDB()
        return
    if request.param == "lsm-in-memory":
        opening = aiokv.open(None)
    elif request.param == "lsm-memfs":
        opening = aiokv.open("/db", fs=MemFileSystem(), wal_segment_size=64 * 1024)
    elif request.param == "lsm-tiny":
        opening = aiokv.open("/db", fs=MemFileSystem(), wal_segment_size=64 * 1024, **TINY_LSM)
    else:
        opening = aiokv.open(tmp_path / "db")
    async with opening as db:
        yield db
        db.check()
