"""MemFileSystem: what is durable, what a power cut keeps of the rest, locks and injected faults.

The crash tests trust these semantics, so each promise of the module docstring is pinned here:
synced bytes and synced directory entries survive every crash mode; DROP_UNSYNCED drops all
that was not synced; TORN_TAIL keeps a prefix; RANDOM_SUBSET keeps a subset, with zero-filled
holes where a lost write sits below a kept one.
"""

from __future__ import annotations

import errno
import random

import pytest

from aiokv.engine.memfs import CrashMode, MemFileSystem

ALL_MODES = list(CrashMode)
SEEDS = range(200)  # enough for every random choice of a small image to show up


def _fs_with_dir() -> MemFileSystem:
    fs = MemFileSystem()
    fs.mkdir("/d")
    return fs


def _synced_file(fs: MemFileSystem, path: str, data: bytes):
    f = fs.create(path)
    f.append(data)
    f.sync()
    fs.sync_dir(path.rpartition("/")[0] or "/")
    return f


def _clone(fs: MemFileSystem, mode: CrashMode, seed: int = 0) -> MemFileSystem:
    return fs.crash_clone(mode, random.Random(seed))


def _content(fs: MemFileSystem, path: str) -> bytes | None:
    return fs.read_file(path) if fs.exists(path) else None


# -- what is durable ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ALL_MODES)
def test_synced_data_and_entries_survive_every_crash_mode(mode):
    fs = _fs_with_dir()
    f = _synced_file(fs, "/d/a", b"hello")
    f.append(b" world")  # pending: may or may not survive, but "hello" must
    for seed in SEEDS:
        image = _clone(fs, mode, seed)
        assert image.read_file("/d/a").startswith(b"hello")


def test_unsynced_appends_are_dropped_by_drop_unsynced():
    fs = _fs_with_dir()
    f = _synced_file(fs, "/d/a", b"durable")
    f.append(b"-pending")
    assert fs.read_file("/d/a") == b"durable-pending"  # the live view has it all
    assert _clone(fs, CrashMode.DROP_UNSYNCED).read_file("/d/a") == b"durable"


def test_sync_makes_every_earlier_append_durable():
    fs = _fs_with_dir()
    f = _synced_file(fs, "/d/a", b"a")
    f.append(b"b")
    f.append(b"c")
    f.sync()
    for mode in ALL_MODES:
        assert _clone(fs, mode).read_file("/d/a") == b"abc"


def test_file_whose_entry_was_not_synced_is_lost_even_with_its_data_synced():
    fs = _fs_with_dir()
    f = fs.create("/d/a")
    f.append(b"data")
    f.sync()  # the bytes are durable, the directory entry is not
    image = _clone(fs, CrashMode.DROP_UNSYNCED)
    assert not image.exists("/d/a")
    assert image.list_dir("/d") == []


def test_unsynced_removal_is_undone_by_a_crash():
    fs = _fs_with_dir()
    _synced_file(fs, "/d/a", b"keep")
    fs.remove("/d/a")
    assert not fs.exists("/d/a")
    assert _clone(fs, CrashMode.DROP_UNSYNCED).read_file("/d/a") == b"keep"
    fs.sync_dir("/d")
    assert not _clone(fs, CrashMode.DROP_UNSYNCED).exists("/d/a")


def test_rename_is_durable_only_after_sync_dir():
    fs = _fs_with_dir()
    _synced_file(fs, "/d/CURRENT", b"old")
    f = fs.create("/d/CURRENT.tmp")
    f.append(b"new")
    f.sync()
    fs.rename("/d/CURRENT.tmp", "/d/CURRENT")
    assert fs.read_file("/d/CURRENT") == b"new"
    before = _clone(fs, CrashMode.DROP_UNSYNCED)
    assert before.read_file("/d/CURRENT") == b"old"
    assert not before.exists("/d/CURRENT.tmp")
    fs.sync_dir("/d")
    for mode in ALL_MODES:
        after = _clone(fs, mode)
        assert after.read_file("/d/CURRENT") == b"new"
        assert after.list_dir("/d") == ["CURRENT"]


def test_crash_during_rename_leaves_old_or_new_but_never_neither():
    fs = _fs_with_dir()
    _synced_file(fs, "/d/CURRENT", b"old")
    f = fs.create("/d/CURRENT.tmp")
    f.append(b"new")
    f.sync()
    fs.sync_dir("/d")  # the temp file is durable; only the rename is pending
    fs.rename("/d/CURRENT.tmp", "/d/CURRENT")
    seen = set()
    for seed in SEEDS:
        image = _clone(fs, CrashMode.TORN_TAIL, seed)
        seen.add(image.read_file("/d/CURRENT"))
    assert seen == {b"old", b"new"}


def test_pending_truncation_is_undone_by_a_crash_and_durable_after_sync():
    fs = _fs_with_dir()
    f = _synced_file(fs, "/d/a", b"0123456789")
    f.truncate(4)
    assert fs.read_file("/d/a") == b"0123"
    assert f.size == 4
    assert _clone(fs, CrashMode.DROP_UNSYNCED).read_file("/d/a") == b"0123456789"
    f.sync()
    assert _clone(fs, CrashMode.DROP_UNSYNCED).read_file("/d/a") == b"0123"


def test_a_clone_is_all_durable_and_independent_of_its_original():
    fs = _fs_with_dir()
    f = _synced_file(fs, "/d/a", b"abc")
    f.append(b"def")
    image = _clone(fs, CrashMode.TORN_TAIL, 3)
    kept = image.read_file("/d/a")
    assert _clone(image, CrashMode.DROP_UNSYNCED).read_file("/d/a") == kept  # all of it synced
    f.append(b"ghi")
    g = image.open_append("/d/a")
    g.append(b"!")
    assert image.read_file("/d/a") == kept + b"!"
    assert fs.read_file("/d/a") == b"abcdefghi"


def test_same_seed_gives_the_same_image():
    fs = _fs_with_dir()
    f = _synced_file(fs, "/d/a", b"x")
    for i in range(20):
        f.append(bytes([65 + i]) * 7)
    for mode in ALL_MODES:
        images = [_clone(fs, mode, 42).read_file("/d/a") for _ in range(3)]
        assert images[0] == images[1] == images[2]


def test_directories_are_durable_once_made():
    fs = MemFileSystem()
    fs.mkdir("/a/b/c")
    image = _clone(fs, CrashMode.DROP_UNSYNCED)
    assert image.is_dir("/a/b/c")
    assert image.list_dir("/a") == ["b"]


# -- what a crash keeps of the rest ---------------------------------------------------------------


def _pending_appends(fs: MemFileSystem, path: str, chunks: list[bytes]) -> bytes:
    f = _synced_file(fs, path, b"SYNCED|")
    for c in chunks:
        f.append(c)
    return b"SYNCED|" + b"".join(chunks)


def test_torn_tail_keeps_a_prefix_of_the_pending_bytes():
    fs = _fs_with_dir()
    full = _pending_appends(fs, "/d/a", [b"aaaa", b"bbbb", b"cccc"])
    lengths = set()
    for seed in SEEDS:
        got = _clone(fs, CrashMode.TORN_TAIL, seed).read_file("/d/a")
        assert full.startswith(got)
        assert len(got) >= len(b"SYNCED|")
        lengths.add(len(got))
    assert min(lengths) == len(b"SYNCED|")
    assert max(lengths) == len(full)
    assert len(lengths) > 4  # some writes are cut inside, not only at write boundaries


def test_torn_tail_keeps_a_prefix_of_the_pending_directory_operations():
    fs = _fs_with_dir()
    for name in "abcd":
        f = fs.create(f"/d/{name}")
        f.append(name.encode())
        f.sync()
    seen = set()
    for seed in SEEDS:
        names = tuple(_clone(fs, CrashMode.TORN_TAIL, seed).list_dir("/d"))
        assert names == tuple("abcd"[: len(names)])
        seen.add(names)
    assert len(seen) == 5  # every prefix, from none to all


def test_random_subset_may_leave_zero_filled_holes():
    fs = _fs_with_dir()
    chunks = [bytes([ord("a") + i]) * 4 for i in range(6)]
    full = _pending_appends(fs, "/d/a", chunks)
    holes = 0
    for seed in SEEDS:
        got = _clone(fs, CrashMode.RANDOM_SUBSET, seed).read_file("/d/a")
        assert got.startswith(b"SYNCED|")
        assert len(got) <= len(full)
        assert all(g == w or g == 0 for g, w in zip(got, full, strict=False))
        assert got[-1:] != b"\0"  # a lost write at the end shortens the file instead
        holes += b"\0" in got
    assert holes > 0


def test_random_subset_keeps_whole_writes_only():
    fs = _fs_with_dir()
    chunks = [bytes([ord("a") + i]) * 4 for i in range(6)]
    _pending_appends(fs, "/d/a", chunks)
    for seed in SEEDS:
        body = _clone(fs, CrashMode.RANDOM_SUBSET, seed).read_file("/d/a")[len(b"SYNCED|") :]
        pieces = [body[i : i + 4] for i in range(0, len(body), 4)]
        assert all(p in (chunks[i], b"\0" * 4) for i, p in enumerate(pieces))


def test_crash_modes_keep_the_entry_of_a_file_whose_creation_is_pending_only_sometimes():
    fs = _fs_with_dir()
    f = fs.create("/d/new")
    f.append(b"header")
    f.sync()
    for mode in (CrashMode.TORN_TAIL, CrashMode.RANDOM_SUBSET):
        seen = {_content(_clone(fs, mode, seed), "/d/new") for seed in SEEDS}
        assert seen == {None, b"header"}


# -- the file system API --------------------------------------------------------------------------


def test_read_list_exists_and_size():
    fs = _fs_with_dir()
    fs.mkdir("/d/sub")
    f = fs.create("/d/b")
    f.append(b"12345")
    fs.create("/d/a").close()
    assert fs.list_dir("/d") == ["a", "b", "sub"]
    assert fs.list_dir("/") == ["d"]
    assert fs.file_size("/d/b") == 5 == f.size
    assert fs.exists("/d/b") and fs.exists("/d/sub") and not fs.exists("/d/c")
    assert fs.is_dir("/d/sub") and not fs.is_dir("/d/b")
    assert fs.open_append("/d/b").size == 5


def test_missing_paths_raise_file_not_found():
    fs = _fs_with_dir()
    for call in (
        lambda: fs.read_file("/d/x"),
        lambda: fs.file_size("/d/x"),
        lambda: fs.open_append("/d/x"),
        lambda: fs.remove("/d/x"),
        lambda: fs.rename("/d/x", "/d/y"),
        lambda: fs.list_dir("/nope"),
        lambda: fs.sync_dir("/nope"),
        lambda: fs.create("/nope/x"),
    ):
        with pytest.raises(FileNotFoundError):
            call()


def test_create_on_a_directory_and_mkdir_over_a_file_fail():
    fs = _fs_with_dir()
    with pytest.raises(IsADirectoryError):
        fs.create("/d")
    fs.create("/d/f").close()
    with pytest.raises(FileExistsError):
        fs.mkdir("/d/f/sub")
    fs.mkdir("/d")  # an existing directory is no error


def test_create_truncates_an_existing_file():
    fs = _fs_with_dir()
    _synced_file(fs, "/d/a", b"old")
    fs.create("/d/a").append(b"n")
    assert fs.read_file("/d/a") == b"n"
    assert _clone(fs, CrashMode.DROP_UNSYNCED).read_file("/d/a") == b"old"


def test_a_closed_file_refuses_writes():
    fs = _fs_with_dir()
    f = fs.create("/d/a")
    f.close()
    f.close()  # idempotent
    for call in (lambda: f.append(b"x"), f.sync, lambda: f.truncate(0)):
        with pytest.raises(OSError) as info:
            call()
        assert info.value.errno == errno.EBADF


def test_sync_count_counts_file_and_directory_syncs():
    fs = _fs_with_dir()
    f = fs.create("/d/a")
    f.sync()
    f.sync()
    fs.sync_dir("/d")
    assert fs.sync_count == 3


def test_rename_onto_itself_keeps_the_file():
    fs = _fs_with_dir()
    _synced_file(fs, "/d/a", b"x")
    fs.rename("/d/a", "/d/a")
    assert fs.read_file("/d/a") == b"x"


# -- locks ----------------------------------------------------------------------------------------


def test_a_held_lock_conflicts_until_released():
    fs = _fs_with_dir()
    lock = fs.lock("/d/LOCK")
    with pytest.raises(BlockingIOError):
        fs.lock("/d/LOCK")
    other = fs.lock("/d/OTHER")  # another path is another lock
    lock.release()
    lock.release()  # idempotent
    again = fs.lock("/d/LOCK")
    again.release()
    other.release()
    assert fs.exists("/d/LOCK")  # the lock file is created, like the real one


def test_locks_are_not_part_of_a_crash_image():
    fs = _fs_with_dir()
    lock = fs.lock("/d/LOCK")
    fs.sync_dir("/d")
    image = _clone(fs, CrashMode.DROP_UNSYNCED)
    image.lock("/d/LOCK").release()  # a power cut releases every lock
    lock.release()


# -- fault injection ------------------------------------------------------------------------------


def test_fault_hook_sees_every_mutating_operation():
    fs = MemFileSystem()
    calls: list[tuple[str, str]] = []
    fs.fault = lambda op, path: calls.append((op, path))
    fs.mkdir("/d")
    f = fs.create("/d/a")
    f.append(b"x")
    f.sync()
    f.truncate(0)
    fs.rename("/d/a", "/d/b")
    fs.sync_dir("/d")
    fs.read_file("/d/b")  # reads are never faulted
    fs.list_dir("/d")
    fs.exists("/d/b")
    fs.file_size("/d/b")
    fs.remove("/d/b")
    assert calls == [
        ("mkdir", "/d"),
        ("create", "/d/a"),
        ("append", "/d/a"),
        ("sync", "/d/a"),
        ("truncate", "/d/a"),
        ("rename", "/d/a"),
        ("sync_dir", "/d"),
        ("remove", "/d/b"),
    ]


def test_a_failing_fault_leaves_the_state_unchanged():
    fs = _fs_with_dir()
    f = _synced_file(fs, "/d/a", b"durable")
    f.append(b"+pending")

    def fail(op: str, path: str) -> None:
        raise OSError(errno.EIO, f"injected {op}", path)

    fs.fault = fail
    for call in (
        lambda: f.append(b"lost"),
        f.sync,
        lambda: f.truncate(0),
        lambda: fs.create("/d/b"),
        lambda: fs.rename("/d/a", "/d/c"),
        lambda: fs.remove("/d/a"),
        lambda: fs.sync_dir("/d"),
        lambda: fs.mkdir("/e"),
    ):
        with pytest.raises(OSError) as info:
            call()
        assert info.value.errno == errno.EIO
    fs.fault = None
    assert fs.list_dir("/d") == ["a"]
    assert not fs.exists("/e")
    assert fs.read_file("/d/a") == b"durable+pending"
    assert _clone(fs, CrashMode.DROP_UNSYNCED).read_file("/d/a") == b"durable"  # sync failed


def test_write_at_overwrites_in_place_and_a_crash_keeps_old_or_new_page_bytes():
    fs = _fs_with_dir()
    f = _synced_file(fs, "/d/p", b"A" * 8 + b"B" * 8)
    f.write_at(8, b"C" * 8)  # overwrite the second "page"
    f.write_at(24, b"D" * 4)  # past the end: the gap reads as zeros
    assert fs.read_file("/d/p") == b"A" * 8 + b"C" * 8 + bytes(8) + b"D" * 4
    assert f.size == 28
    assert fs.crash_clone(CrashMode.DROP_UNSYNCED).read_file("/d/p") == b"A" * 8 + b"B" * 8
    for seed in SEEDS:
        got = fs.crash_clone(CrashMode.RANDOM_SUBSET, random.Random(seed)).read_file("/d/p")
        assert got[:8] == b"A" * 8
        assert got[8:16] in (b"B" * 8, b"C" * 8)
    f.sync()
    image = fs.crash_clone(CrashMode.DROP_UNSYNCED).read_file("/d/p")
    assert image == b"A" * 8 + b"C" * 8 + bytes(8) + b"D" * 4


def test_os_file_write_at_overwrites_and_extends(tmp_path):
    from aiokv.engine.fs import OsFileSystem

    fs = OsFileSystem()
    path = str(tmp_path / "p")
    f = fs.create(path)
    try:
        f.append(b"x" * 10)
    finally:
        f.close()
    f = fs.open_write(path)
    try:
        f.write_at(2, b"yy")
        f.write_at(12, b"z")
        assert f.size == 13
        f.sync()
    finally:
        f.close()
    assert fs.read_file(path) == b"xxyyxxxxxx\x00\x00z"


def test_truncate_past_the_end_extends_with_zeros_as_ftruncate_does():
    fs = _fs_with_dir()
    f = _synced_file(fs, "/d/p", b"ab")
    f.truncate(5)
    assert fs.read_file("/d/p") == b"ab\x00\x00\x00"
    assert fs.crash_clone(CrashMode.DROP_UNSYNCED).read_file("/d/p") == b"ab"
    f.sync()
    assert fs.crash_clone(CrashMode.DROP_UNSYNCED).read_file("/d/p") == b"ab\x00\x00\x00"
