"""The MANIFEST on a FileSystem: create, append, CURRENT, read_manifest at every crash point and
under every damage, and replay_edits."""

from __future__ import annotations

import errno
import random

import pytest

from aiokv.engine.fs import join
from aiokv.engine.lsm.manifest import (
    ManifestReplayError,
    ManifestWriter,
    RecoveredVersions,
    read_manifest,
    replay_edits,
    snapshot_edit,
)
from aiokv.engine.lsm.manifest_format import (
    CURRENT,
    MANIFEST_MAGIC,
    MANIFEST_VERSION,
    encode_current,
    encode_edit,
    header_version,
    manifest_name,
)
from aiokv.engine.lsm.version import FileMeta, Version
from aiokv.engine.lsm.version_edit import VersionEdit
from aiokv.engine.memfs import CrashMode, MemFileSystem
from aiokv.engine.wal_format import encode_record, encode_segment_header
from aiokv.errors import CorruptionError, UnsupportedFormatError

DIR = "/db"


def _fs() -> MemFileSystem:
    fs = MemFileSystem()
    fs.mkdir(DIR)
    return fs


def _t(number: int, lo: bytes = b"a", hi: bytes = b"z", seq: int = 10) -> FileMeta:
    return FileMeta(number, 100 * number, lo, hi, 1, seq, 10, 0)


SNAP = VersionEdit(log_number=2, next_file_number=10, last_seq=50, new_files=[(0, 0, _t(4))])
E1 = VersionEdit(log_number=3, new_files=[(0, 0, _t(5, seq=60))], last_seq=60)
E2 = VersionEdit(deleted_files=[(0, 0, 4), (0, 0, 5)], new_files=[(0, 1, _t(11))])
E3 = VersionEdit(next_file_number=12, compact_pointers=[(0, 1, b"m")])


def _write(fs: MemFileSystem, name: str, data: bytes) -> None:
    f = fs.create(join(DIR, name))
    f.append(data)
    f.sync()
    f.close()
    fs.sync_dir(DIR)


def _edits(fs: MemFileSystem) -> list[VersionEdit] | None:
    state = read_manifest(fs, DIR)
    return None if state is None else state.edits


def _is_prefix(got: list[VersionEdit], edits: list[VersionEdit]) -> bool:
    return got == edits[: len(got)]


# -- create and append ----------------------------------------------------------------------------


def test_a_directory_without_current_is_a_new_store():
    assert read_manifest(_fs(), DIR) is None


def test_create_writes_the_snapshot_and_current_names_it():
    fs = _fs()
    w = ManifestWriter.create(fs, DIR, 7, SNAP)
    assert (w.number, w.path, w.size) == (7, "/db/MANIFEST-000007", fs.file_size(w.path))
    assert fs.read_file("/db/CURRENT") == encode_current(7, w.size)
    state = read_manifest(fs, DIR)
    assert state is not None
    assert (state.number, state.edits, state.torn_at, state.path) == (7, [SNAP], None, w.path)


def test_create_takes_a_list_of_snapshot_edits():
    fs = _fs()
    ManifestWriter.create(fs, DIR, 1, [SNAP, E1, VersionEdit()])
    assert _edits(fs) == [SNAP, E1, VersionEdit()]


def test_appended_edits_read_back_in_order_and_size_follows_the_file():
    fs = _fs()
    w = ManifestWriter.create(fs, DIR, 1, SNAP)
    for e in (E1, E2, E3):
        before = w.size
        w.append(e)
        assert w.size == fs.file_size(w.path) > before
    assert _edits(fs) == [SNAP, E1, E2, E3]
    w.close()
    w.close()


def test_a_new_manifest_replaces_the_old_and_removes_every_other_manifest():
    fs = _fs()
    ManifestWriter.create(fs, DIR, 1, SNAP).append(E1)
    _write(fs, manifest_name(9), b"orphan of a crashed create")
    _write(fs, "000003.log", b"not a manifest")
    _write(fs, "MANIFEST-1", b"not a manifest name")
    ManifestWriter.create(fs, DIR, 5, E3)
    assert _edits(fs) == [E3]
    assert fs.list_dir(DIR) == ["000003.log", CURRENT, "MANIFEST-000005", "MANIFEST-1"]


def test_an_appended_edit_survives_a_power_cut_once_append_returned():
    fs = _fs()
    w = ManifestWriter.create(fs, DIR, 1, SNAP)
    w.append(E1)
    assert _edits(fs.crash_clone(CrashMode.DROP_UNSYNCED)) == [SNAP, E1]


def _fail_on(fs: MemFileSystem, op: str) -> None:
    def fault(what: str, path: str) -> None:
        if what == op:
            raise OSError(errno.EIO, "injected", path)

    fs.fault = fault


@pytest.mark.parametrize("op", ["append", "sync"])
def test_a_failed_append_raises_and_every_later_append_too(op):
    fs = _fs()
    w = ManifestWriter.create(fs, DIR, 1, SNAP)
    _fail_on(fs, op)
    with pytest.raises(OSError):
        w.append(E1)
    fs.fault = None
    size = fs.file_size(w.path)
    with pytest.raises(OSError, match="earlier manifest append failed"):
        w.append(E2)
    assert fs.file_size(w.path) == size  # nothing written after the failure


def test_an_edit_that_does_not_encode_writes_nothing_and_breaks_nothing():
    fs = _fs()
    w = ManifestWriter.create(fs, DIR, 1, SNAP)
    with pytest.raises(ValueError, match="out of range"):
        w.append(VersionEdit(log_number=-1))
    w.append(E1)
    assert _edits(fs) == [SNAP, E1]


@pytest.mark.parametrize("op", ["create", "append", "sync", "sync_dir", "rename"])
def test_a_failed_create_raises_and_current_still_names_the_old_manifest(op):
    fs = _fs()
    ManifestWriter.create(fs, DIR, 1, SNAP)
    _fail_on(fs, op)
    with pytest.raises(OSError):
        ManifestWriter.create(fs, DIR, 2, E3)
    fs.fault = None
    assert _edits(fs) in ([SNAP], [E3])
    assert _edits(fs.crash_clone()) in ([SNAP], [E3])


def test_a_failed_removal_of_an_old_manifest_is_ignored():
    fs = _fs()
    ManifestWriter.create(fs, DIR, 1, SNAP)
    _fail_on(fs, "remove")
    ManifestWriter.create(fs, DIR, 2, E3)
    assert _edits(fs) == [E3]
    assert "MANIFEST-000001" in fs.list_dir(DIR)


# -- reading damaged files ------------------------------------------------------------------------


def _small() -> tuple[MemFileSystem, bytes, int]:
    """A manifest of SNAP then E1, E2 appended; returns the fs, its bytes and its creation size."""
    fs = _fs()
    w = ManifestWriter.create(fs, DIR, 1, SNAP)
    created = w.size
    w.append(E1)
    w.append(E2)
    return fs, fs.read_file(w.path), created


def _replace(fs: MemFileSystem, data: bytes) -> MemFileSystem:
    _write(fs, manifest_name(1), data)
    return fs


def test_a_flipped_byte_anywhere_is_corruption_or_a_torn_tail_never_a_wrong_state():
    fs, data, _ = _small()
    edits = [SNAP, E1, E2]
    for at in range(len(data)):
        for bit in (0x01, 0x80):
            damaged = data[:at] + bytes([data[at] ^ bit]) + data[at + 1 :]
            try:
                state = read_manifest(_replace(fs, damaged), DIR)
            except CorruptionError as e:
                assert e.path == "/db/MANIFEST-000001"
                continue
            assert state is not None and _is_prefix(state.edits, edits), at
            assert len(state.edits) == 2  # only the last record has no later record vouching


def test_the_file_cut_at_every_length_recovers_a_prefix_or_is_corruption_before_creation_size():
    fs, data, created = _small()
    edits = [SNAP, E1, E2]
    for size in range(len(data) + 1):
        if size < created:
            with pytest.raises(CorruptionError) as info:
                read_manifest(_replace(fs, data[:size]), DIR)
            assert info.value.path == "/db/MANIFEST-000001"
            continue
        state = read_manifest(_replace(fs, data[:size]), DIR)
        assert state is not None and _is_prefix(state.edits, edits)
        assert len(state.edits) >= 2 or size < len(data) - len(encode_edit(E2))


def test_any_damage_to_a_snapshot_with_no_append_after_it_is_corruption():
    fs = _fs()
    w = ManifestWriter.create(fs, DIR, 1, [SNAP, E1])
    data = fs.read_file(w.path)
    for at in range(len(data)):
        damaged = data[:at] + bytes([data[at] ^ 0x20]) + data[at + 1 :]
        with pytest.raises(CorruptionError):
            read_manifest(_replace(fs, damaged), DIR)


def test_a_damaged_length_still_ending_inside_the_file_is_corruption_not_a_torn_tail():
    fs, data, created = _small()  # E1 starts at `created`; E2 follows and vouches for it
    for delta in (1, 4, 9):
        length = int.from_bytes(data[created + 21 : created + 25], "little") + delta
        damaged = data[: created + 21] + length.to_bytes(4, "little") + data[created + 25 :]
        assert created + 25 + length < len(data)
        with pytest.raises(CorruptionError, match="later one says") as info:
            read_manifest(_replace(fs, damaged), DIR)
        assert info.value.offset == created


def test_a_record_that_checks_but_does_not_decode_is_corruption_at_its_offset():
    fs = _fs()
    w = ManifestWriter.create(fs, DIR, 1, SNAP)
    at = w.size
    _write(fs, manifest_name(1), fs.read_file(w.path) + encode_record(1, at, b"\x0b"))
    with pytest.raises(CorruptionError, match="unknown tag 11") as info:
        read_manifest(fs, DIR)
    assert info.value.offset == at


@pytest.mark.parametrize(
    ("version", "match"),
    [(3, "version 3 is newer than this build reads \\(2\\)"), (0, "version 0 is not one this")],
)
def test_a_manifest_of_an_unknown_version_is_unsupported(version, match):
    fs = _fs()
    data = encode_segment_header(1, magic=MANIFEST_MAGIC, version=version)
    data += encode_record(1, 0, encode_edit(VersionEdit(log_number=1)))
    _write(fs, manifest_name(1), data)
    _write(fs, CURRENT, encode_current(1, len(data)))
    with pytest.raises(UnsupportedFormatError, match=match):
        read_manifest(fs, DIR)


def test_create_writes_the_current_version():
    fs = _fs()
    w = ManifestWriter.create(fs, DIR, 1, SNAP)
    assert header_version(fs.read_file(w.path)) == MANIFEST_VERSION == 2


# -- version 1 manifests --------------------------------------------------------------------------


def _v1_payload(edit: VersionEdit) -> bytes:
    """`edit`, whose scalars and tables only are set, as a version 1 writer encoded it."""
    files = [encode_edit(VersionEdit(new_files=[f])) for f in edit.new_files]
    head = encode_edit(VersionEdit(edit.log_number, edit.next_file_number, edit.last_seq))
    # created_ms is the ninth u64 of NEW_FILE: after tag, cf and level (6) and eight u64 (64).
    return head + b"".join(f[:70] + f[78:] for f in files)


def _v1_manifest(edits: list[VersionEdit], created: int = 1) -> bytes:
    """Manifest 1 in version 1: the first `created` edits the snapshot, the others appended."""
    data = encode_segment_header(1, magic=MANIFEST_MAGIC, version=1)
    for i, e in enumerate(edits):
        data += encode_record(1, 0 if i < created else len(data), _v1_payload(e))
    return data


V1_EDITS = [SNAP, E1, VersionEdit(deleted_files=[], new_files=[(0, 1, _t(11))])]


def _v1_fs(data: bytes, created: int) -> MemFileSystem:
    fs = _fs()
    _write(fs, manifest_name(1), data)
    _write(fs, CURRENT, encode_current(1, created))
    return fs


def test_a_version_1_manifest_reads_with_created_ms_unknown():
    data = _v1_manifest(V1_EDITS)
    state = read_manifest(_v1_fs(data, len(data)), DIR)
    assert state is not None and (state.edits, state.torn_at) == (V1_EDITS, None)
    assert all(f.created_ms == 0 for e in state.edits for _, _, f in e.new_files)


def test_a_version_1_manifest_cut_at_every_length_recovers_a_prefix_or_is_corruption():
    data = _v1_manifest(V1_EDITS)
    created = len(_v1_manifest(V1_EDITS[:1]))
    for size in range(len(data) + 1):
        fs = _v1_fs(data[:size], created)
        if size < created:
            with pytest.raises(CorruptionError):
                read_manifest(fs, DIR)
            continue
        state = read_manifest(fs, DIR)
        assert state is not None and _is_prefix(state.edits, V1_EDITS) and state.edits


def test_a_max_family_id_field_in_a_version_1_manifest_is_corruption():
    data = _v1_manifest([SNAP])
    at = len(data)
    data += encode_record(1, at, encode_edit(VersionEdit(max_family_id=4)))
    with pytest.raises(CorruptionError, match="unknown tag 9") as info:
        read_manifest(_v1_fs(data, at), DIR)
    assert info.value.offset == at


def test_a_version_1_store_recovers_and_its_next_manifest_is_version_2():
    data = _v1_manifest(V1_EDITS)
    fs = _v1_fs(data, len(data))
    state = read_manifest(fs, DIR)
    assert state is not None
    rv = replay_edits(state.edits)
    w = ManifestWriter.create(fs, DIR, rv.next_file_number, snapshot_edit(rv))
    assert header_version(fs.read_file(w.path)) == 2
    again = read_manifest(fs, DIR)
    assert again is not None and replay_edits(again.edits) == rv


def test_current_naming_a_missing_manifest_is_corruption():
    fs = _fs()
    _write(fs, CURRENT, encode_current(3, 32))
    with pytest.raises(CorruptionError, match="missing") as info:
        read_manifest(fs, DIR)
    assert info.value.path == "/db/MANIFEST-000003"


def test_a_leftover_current_tmp_is_ignored():
    fs = _fs()
    ManifestWriter.create(fs, DIR, 1, SNAP)
    _write(fs, "CURRENT.tmp", b"garbage")
    assert _edits(fs) == [SNAP]


# -- crash points ---------------------------------------------------------------------------------

MODES = [CrashMode.DROP_UNSYNCED, CrashMode.TORN_TAIL, CrashMode.RANDOM_SUBSET]


class _Recorder:
    """Takes crash images of `fs` before every mutating operation, and on demand."""

    def __init__(self, fs: MemFileSystem, seeds: int = 6) -> None:
        self.fs = fs
        self.seeds = seeds
        self.images: list[tuple[object, MemFileSystem]] = []
        self.tag: object = None
        fs.fault = lambda op, path: self.take()

    def take(self) -> None:
        for mode in MODES:
            for seed in range(1 if mode is CrashMode.DROP_UNSYNCED else self.seeds):
                clone = self.fs.crash_clone(mode, random.Random(seed))
                self.images.append((self.tag, clone))


def test_a_crash_anywhere_in_the_first_create_leaves_no_store_or_the_new_one():
    fs = _fs()
    rec = _Recorder(fs)
    ManifestWriter.create(fs, DIR, 1, SNAP)
    rec.take()
    assert {repr(_edits(img)) for _, img in rec.images} == {repr(None), repr([SNAP])}


def test_a_crash_anywhere_in_create_recovers_the_old_or_the_new_state():
    fs = _fs()
    ManifestWriter.create(fs, DIR, 1, SNAP).append(E1)
    _write(fs, manifest_name(4), b"orphan")
    rec = _Recorder(fs)
    ManifestWriter.create(fs, DIR, 3, E3)
    rec.take()
    seen = [_edits(img) for _, img in rec.images]
    assert all(s in ([SNAP, E1], [E3]) for s in seen)
    assert [SNAP, E1] in seen and [E3] in seen
    assert seen[-1] == [E3]


def test_a_crash_anywhere_during_appends_never_loses_an_acknowledged_edit():
    fs = _fs()
    w = ManifestWriter.create(fs, DIR, 1, SNAP)
    rec = _Recorder(fs)
    edits = [SNAP, E1, E2, E3]
    for acked in range(1, len(edits)):
        rec.tag = acked  # edits[:acked] were acknowledged when these images were taken
        w.append(edits[acked])
    rec.tag = len(edits)
    rec.take()
    outcomes = set()
    for acked, img in rec.images:
        assert isinstance(acked, int)
        got = _edits(img)
        assert got is not None and _is_prefix(got, edits)
        assert acked <= len(got) <= acked + 1  # the one in flight may or may not be there
        replay_edits(got)  # and whatever is there is consistent
        outcomes.add((acked, len(got)))
    assert (2, 2) in outcomes and (2, 3) in outcomes  # both outcomes of an unfinished append


def test_recovery_from_a_torn_append_then_a_new_manifest_is_stable():
    fs = _fs()
    w = ManifestWriter.create(fs, DIR, 1, SNAP)
    w.append(E1)
    rec = _Recorder(fs, seeds=20)
    w.append(E2)
    for _, img in rec.images:
        state = read_manifest(img, DIR)
        assert state is not None
        rv = replay_edits(state.edits)
        ManifestWriter.create(img, DIR, rv.next_file_number, snapshot_edit(rv))
        again = read_manifest(img.crash_clone(), DIR)
        assert again is not None and again.torn_at is None
        assert _same(replay_edits(again.edits), rv)


# -- replay_edits ---------------------------------------------------------------------------------


def _same(a: RecoveredVersions, b: RecoveredVersions) -> bool:
    def levels(r: RecoveredVersions) -> dict[int, tuple[tuple[FileMeta, ...], ...]]:
        return {cf: v.levels for cf, v in r.versions.items()}

    return (levels(a), a.families, a.compact_pointers, a.log_number, a.next_file_number,
            a.last_seq, a.max_family_id) == (levels(b), b.families, b.compact_pointers,
                                             b.log_number, b.next_file_number, b.last_seq,
                                             b.max_family_id)  # fmt: skip


def test_replay_folds_tables_and_takes_the_largest_counters():
    r = replay_edits([SNAP, E1, E2, E3])
    assert r.versions[0].levels[0] == () and r.versions[0].levels[1] == (_t(11),)
    assert (r.log_number, r.next_file_number, r.last_seq) == (3, 12, 60)
    assert r.compact_pointers == {(0, 1): b"m"}
    assert r.families == {0: ("default", b"")}


def test_replay_of_nothing_is_an_empty_default_family():
    r = replay_edits([])
    assert list(r.versions) == [0] and r.versions[0].levels == Version().levels
    assert (r.log_number, r.next_file_number, r.last_seq) == (0, 0, 0)


def test_replay_keeps_file_numbers_and_sequence_numbers_above_every_table():
    r = replay_edits([VersionEdit(next_file_number=3, last_seq=1, new_files=[(0, 2, _t(8))])])
    assert (r.next_file_number, r.last_seq) == (9, 10)


def test_a_table_moved_to_another_level_in_one_edit_is_a_trivial_move():
    move = VersionEdit(deleted_files=[(0, 0, 4)], new_files=[(0, 2, _t(4))])
    r = replay_edits([SNAP, move])
    assert (r.versions[0].levels[0], r.versions[0].levels[2]) == ((), (_t(4),))


def test_replay_orders_l0_newest_first():
    r = replay_edits([VersionEdit(new_files=[(0, 0, _t(1, seq=5)), (0, 0, _t(2, seq=9))])])
    assert [f.number for f in r.versions[0].levels[0]] == [2, 1]


@pytest.mark.parametrize(
    ("edits", "index", "match"),
    [
        ([VersionEdit(deleted_files=[(0, 1, 4)])], 0, "not on L1"),
        ([SNAP, VersionEdit(deleted_files=[(0, 1, 4)])], 1, "not on L1"),  # on L0
        ([SNAP, VersionEdit(new_files=[(0, 3, _t(4))])], 1, "added twice"),
        ([SNAP, VersionEdit(added_families=[(1, "x", b"")], new_files=[(1, 0, _t(4))])], 1,
         "added twice"),
        ([VersionEdit(new_files=[(2, 0, _t(4))])], 0, "unknown family 2"),
        ([VersionEdit(deleted_files=[(2, 0, 4)])], 0, "not on L0 of family 2"),
        ([VersionEdit(added_families=[(1, "x", b"")]), VersionEdit(added_families=[(1, "y", b"")])],
         1, "added twice"),
        ([VersionEdit(added_families=[(1, "x", b""), (2, "x", b"")])], 0, "added twice"),
        ([VersionEdit(dropped_families=[0])], 0, "not live"),
        ([VersionEdit(dropped_families=[3])], 0, "not live"),
        ([VersionEdit(compact_pointers=[(3, 1, b"k")])], 0, "unknown family 3"),
        ([VersionEdit(new_files=[(0, 1, _t(1, b"a", b"m")), (0, 1, _t(2, b"m", b"z"))])], 0,
         "overlap on L1"),
    ],
)  # fmt: skip
def test_replay_of_inconsistent_edits_is_an_error_naming_the_edit(edits, index, match):
    with pytest.raises(ManifestReplayError, match=match) as info:
        replay_edits(edits)
    assert info.value.index == index
    assert isinstance(info.value, ValueError)


def test_a_dropped_family_takes_its_tables_and_pointers_and_its_id_can_return():
    fam = VersionEdit(added_families=[(1, "s", b"o")], new_files=[(1, 2, _t(6))],
                      compact_pointers=[(1, 2, b"k")])  # fmt: skip
    r = replay_edits([fam, VersionEdit(dropped_families=[1])])
    assert (list(r.versions), r.families, r.compact_pointers) == ([0], {0: ("default", b"")}, {})
    r = replay_edits([fam, VersionEdit(dropped_families=[1]), fam])
    assert r.versions[1].levels[2] == (_t(6),) and r.families[1] == ("s", b"o")
    assert r.max_family_id == 1


def test_an_added_default_family_sets_its_name_and_options():
    r = replay_edits([VersionEdit(added_families=[(0, "default", b'{"merge": "max"}')])])
    assert r.families == {0: ("default", b'{"merge": "max"}')}


def test_a_snapshot_edit_replays_to_the_state_it_was_taken_from():
    fam = VersionEdit(added_families=[(2, "s", b"o")], new_files=[(2, 0, _t(20))])
    r = replay_edits([SNAP, E1, fam, E2, E3])
    assert replay_edits([snapshot_edit(r)]) == r
    assert _same(replay_edits([snapshot_edit(r)]), r)


def test_a_snapshot_keeps_the_id_of_a_dropped_family_from_coming_back():
    fams = VersionEdit(added_families=[(1, "a", b""), (5, "b", b"")])
    r = replay_edits([SNAP, fams, VersionEdit(dropped_families=[5])])
    assert (sorted(r.families), r.max_family_id) == ([0, 1], 5)
    snap = snapshot_edit(r)
    assert snap.max_family_id == 5
    assert replay_edits([snap]) == r
    assert replay_edits([snap, VersionEdit(max_family_id=2)]).max_family_id == 5


def test_max_family_id_never_decreases_in_replay():
    steps = [
        (VersionEdit(max_family_id=5), 5),
        (VersionEdit(max_family_id=3), 5),
        (VersionEdit(added_families=[(7, "s", b"")]), 7),
        (VersionEdit(dropped_families=[7]), 7),
        (VersionEdit(max_family_id=0), 7),
        (VersionEdit(added_families=[(2, "t", b"")], max_family_id=6), 7),
    ]
    edits: list[VersionEdit] = []
    for edit, expected in steps:
        edits.append(edit)
        assert replay_edits(edits).max_family_id == expected


def test_recovered_states_compare_by_content():
    a, b = replay_edits([SNAP, E1]), replay_edits([SNAP, E1])
    assert a is not b and a.versions[0] is not b.versions[0]
    assert a == b
    assert a != replay_edits([SNAP, E1, VersionEdit(max_family_id=1)])
    assert a != replay_edits([SNAP])
    assert a != "a state"


def test_replay_agrees_with_version_apply_on_random_valid_histories():
    for seed in range(30):
        rng = random.Random(seed)
        model = Version()
        live: list[tuple[int, FileMeta]] = []
        edits = []
        number = 1
        for _ in range(40):
            gone = rng.sample(live, rng.randint(0, min(3, len(live))))
            added = [(0, _t(number + i, seq=number + i)) for i in range(rng.randint(0, 3))]
            number += len(added)
            live = [x for x in live if x not in gone] + added
            edits.append(VersionEdit(
                new_files=[(0, lv, f) for lv, f in added],
                deleted_files=[(0, lv, f.number) for lv, f in gone],
            ))  # fmt: skip
            model = model.apply(added, [(lv, f.number) for lv, f in gone])
        assert replay_edits(edits).versions[0].levels == model.levels
