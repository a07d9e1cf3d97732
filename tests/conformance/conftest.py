"""The stores every contract test runs on: each engine configuration, and the dict model."""

from __future__ import annotations

import pytest

import aiokv
from aiokv.engine.memfs import MemFileSystem
from tests.model import ModelDB
from tests.tiny import TINY_LSM


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
