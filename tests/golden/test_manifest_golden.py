"""The worked examples of docs/format/manifest.md, executed: their bytes, edits, CURRENT and
damage (version 2, the one written) and a version 1 manifest that still reads."""

from __future__ import annotations

import ast
from dataclasses import replace

import pytest

from aiokv.engine.fs import join
from aiokv.engine.lsm.manifest import ManifestState, read_manifest, replay_edits
from aiokv.engine.lsm.manifest_format import (
    CURRENT,
    MANIFEST_MAGIC,
    MANIFEST_VERSION,
    ManifestDecodeError,
    ManifestRecordType,
    Tag,
    decode_current,
    decode_edit,
    encode_current,
    encode_edit,
    manifest_name,
)
from aiokv.engine.lsm.version import FileMeta
from aiokv.engine.lsm.version_edit import VersionEdit
from aiokv.engine.memfs import MemFileSystem
from aiokv.engine.wal_format import RECORD_MARK, encode_record, encode_segment_header
from aiokv.errors import CorruptionError
from tests.golden.docblocks import (
    check_dump_covers,
    check_note,
    fenced,
    flipped,
    golden_block,
    hex_dump,
    read_doc,
    table,
)

DOC = read_doc("manifest.md")
DUMP = hex_dump(fenced(golden_block(DOC, "manifest-hex")))
MANIFEST = b"".join(line.data for line in DUMP)
RECORDS = table(golden_block(DOC, "manifest-records"))
SCALARS = table(golden_block(DOC, "manifest-scalars"))
FILES = table(golden_block(DOC, "manifest-files"))
FLUSHED = table(golden_block(DOC, "manifest-flushed"))
FLUSHED_REPLAY = table(golden_block(DOC, "manifest-flushed-replay"))
FIELDS = table(golden_block(DOC, "manifest-fields"))
CURRENT_BYTES = fenced(golden_block(DOC, "manifest-current")).encode()
NUMBER = 5  # the example is MANIFEST-000005
DIR = "/db"
PATH = join(DIR, manifest_name(NUMBER))
_ENUMS = {**Tag.__members__, **ManifestRecordType.__members__}
_META = ["number", "size", "smallest", "largest", "smallest_seq", "largest_seq", "entries"]
_META += ["tombstones", "smallest_expiry", "range_dels", "created_ms"]
V1_DUMP = hex_dump(fenced(golden_block(DOC, "manifest-v1-hex")))
V1_MANIFEST = b"".join(line.data for line in V1_DUMP)
V1_NUMBER = 3  # MANIFEST-000003
V1_EDIT = VersionEdit(log_number=2, new_files=[(0, 0, FileMeta(2, 512, b"a", b"b", 1, 3, 3, 0))])


def _edit(record: str) -> VersionEdit:
    (row,) = [r for r in SCALARS if r["record"] == record]
    edit = VersionEdit(**{k: int(v) for k, v in row.items() if k != "record" and v})
    for f in (r for r in FILES if r["record"] == record):
        cf, level, number = int(f["cf"]), int(f["level"]), int(f["number"])
        if f["change"] == "DELETED_FILE":
            edit.deleted_files.append((cf, level, number))
            continue
        assert f["change"] == "NEW_FILE"
        fields = {k: ast.literal_eval(f[k].strip("`")) for k in _META}
        edit.new_files.append((cf, level, FileMeta(**fields)))
    edit.family_flushed = [(int(r["cf"]), int(r["seq"])) for r in FLUSHED if r["record"] == record]
    return edit


EDITS = [_edit(r["record"]) for r in RECORDS]


def _fs(
    manifest: bytes = MANIFEST, current: bytes = CURRENT_BYTES, number: int = NUMBER
) -> MemFileSystem:
    fs = MemFileSystem()
    fs.mkdir(DIR)
    for name, data in ((manifest_name(number), manifest), (CURRENT, current)):
        f = fs.create(join(DIR, name))
        f.append(data)
        f.sync()
        f.close()
    fs.sync_dir(DIR)
    return fs


def _read(manifest: bytes = MANIFEST, current: bytes = CURRENT_BYTES) -> ManifestState:
    state = read_manifest(_fs(manifest, current), DIR)
    assert state is not None
    return state


def _bounds() -> list[tuple[int, int]]:
    starts = [int(r["offset"]) for r in RECORDS]
    return list(zip(starts, [*starts[1:], len(MANIFEST)], strict=True))


# -- the dump itself ------------------------------------------------------------------------------


@pytest.mark.parametrize(("dump", "data"), [(DUMP, MANIFEST), (V1_DUMP, V1_MANIFEST)])
def test_hex_dump_offsets_follow_the_bytes(dump, data):
    check_dump_covers(dump, data)


@pytest.mark.parametrize(("dump", "data"), [(DUMP, MANIFEST), (V1_DUMP, V1_MANIFEST)])
def test_hex_dump_notes_match_their_bytes(dump, data):
    for line in dump:
        checked = check_note(line, data, lambda name: int(_ENUMS[name]))
        if line.note.startswith("mark"):
            assert line.data == RECORD_MARK, line
            checked = True
        assert checked, f"nothing in the note of {line} is checked"


def test_the_example_is_written_in_the_current_version():
    assert MANIFEST_VERSION == 2
    assert MANIFEST[8:12] == MANIFEST_VERSION.to_bytes(4, "little")


# -- encode and decode ----------------------------------------------------------------------------


def test_encoding_the_documented_edits_gives_the_documented_bytes():
    out = encode_segment_header(NUMBER, magic=MANIFEST_MAGIC, version=MANIFEST_VERSION)
    for row, edit in zip(RECORDS, EDITS, strict=True):
        payload = encode_edit(edit)
        assert len(payload) == int(row["length"])
        assert len(out) == int(row["offset"])
        out += encode_record(int(ManifestRecordType[row["type"]]), int(row["synced_to"]), payload)
    assert out == MANIFEST


def test_reading_the_documented_bytes_gives_the_documented_edits():
    state = _read()
    assert (state.number, state.torn_at, state.path) == (NUMBER, None, PATH)
    assert state.edits == EDITS
    assert state.offsets == [int(r["offset"]) for r in RECORDS]


def test_replaying_the_documented_edits_gives_the_documented_state():
    rec = replay_edits(EDITS)
    assert rec.versions[0].levels[0] == ()
    assert [f.number for f in rec.versions[0].levels[1]] == [7, 8]
    assert (rec.log_number, rec.next_file_number, rec.last_seq) == (4, 9, 100)
    assert rec.max_family_id == 2
    assert [f.created_ms for f in rec.versions[0].levels[1]] == [1700000060000] * 2
    assert rec.family_flushed == {0: 100}


def test_the_examples_flushed_point_comes_from_its_field_not_from_last_seq():
    lower = [replace(EDITS[0], family_flushed=[(0, 60)]), *EDITS[1:]]
    assert replay_edits(lower).family_flushed == {0: 60}


@pytest.mark.parametrize("row", FLUSHED_REPLAY, ids=[r["why"][:40] for r in FLUSHED_REPLAY])
def test_flushed_points_replay_as_documented(row):
    edits = eval(row["edits"].strip("`"), {"VersionEdit": VersionEdit})
    expected = ast.literal_eval(row["family_flushed"].strip("`"))
    assert replay_edits(edits).family_flushed == expected


@pytest.mark.parametrize("row", FIELDS, ids=[r["payload"][:2] for r in FIELDS])
def test_field_examples_encode_and_decode_as_documented(row):
    edit = eval(row["edit"].strip("`"), {"VersionEdit": VersionEdit})
    payload = b"" if row["payload"] == "(empty)" else bytes.fromhex(row["payload"].strip("`"))
    assert encode_edit(edit) == payload
    assert decode_edit(payload) == edit


def test_the_documented_current_names_the_example_and_its_creation_size():
    created = int(RECORDS[1]["offset"])  # the snapshot is record 1; record 2 was appended
    assert encode_current(NUMBER, created) == CURRENT_BYTES
    assert decode_current(CURRENT_BYTES) == (NUMBER, created)
    assert len(CURRENT_BYTES) == 47


# -- the damage table -----------------------------------------------------------------------------


def test_a_flipped_header_byte_is_corruption_at_offset_0():
    for at in range(32):
        with pytest.raises(CorruptionError) as info:
            _read(flipped(MANIFEST, at))
        assert (info.value.path, info.value.offset) == (PATH, 0)


def test_a_flipped_byte_in_the_snapshot_is_corruption_at_its_offset():
    start, end = _bounds()[0]
    for at in range(start, end):
        with pytest.raises(CorruptionError) as info:
            _read(flipped(MANIFEST, at))
        assert (info.value.path, info.value.offset) == (PATH, start)


def test_a_flipped_byte_in_the_appended_record_is_a_torn_tail():
    start, end = _bounds()[-1]
    for at in range(start, end):
        state = _read(flipped(MANIFEST, at))
        assert (state.edits, state.torn_at) == (EDITS[:1], start)


def test_the_file_cut_inside_the_appended_record_is_a_torn_tail():
    start, end = _bounds()[-1]
    for size in range(start, end):
        state = _read(MANIFEST[:size])
        assert state.edits == EDITS[:1]
        assert state.torn_at == (None if size == start else start)


def test_the_file_cut_before_its_creation_size_is_corruption():
    for size in range(int(RECORDS[1]["offset"])):
        with pytest.raises(CorruptionError) as info:
            _read(MANIFEST[:size])
        assert info.value.path == PATH


def test_garbage_after_the_example_is_a_torn_tail_at_its_end():
    state = _read(MANIFEST + b"\x00garbage")
    assert (state.edits, state.torn_at) == (EDITS, len(MANIFEST))


def test_any_damage_to_current_is_corruption_naming_current():
    damaged = [flipped(CURRENT_BYTES, at) for at in range(len(CURRENT_BYTES))]
    damaged += [CURRENT_BYTES[:size] for size in range(len(CURRENT_BYTES))]
    for current in damaged:
        with pytest.raises(CorruptionError) as info:
            _read(current=current)
        assert (info.value.path, info.value.offset) == (join(DIR, CURRENT), 0)


def test_a_missing_manifest_is_corruption_naming_it():
    fs = _fs()
    fs.remove(PATH)
    with pytest.raises(CorruptionError) as info:
        read_manifest(fs, DIR)
    assert (info.value.path, info.value.offset) == (PATH, 0)


# -- the version 1 example ------------------------------------------------------------------------


def _v1_current() -> bytes:
    return encode_current(V1_NUMBER, len(V1_MANIFEST))


def test_the_version_1_example_reads_with_created_ms_unknown():
    state = read_manifest(_fs(V1_MANIFEST, _v1_current(), V1_NUMBER), DIR)
    assert state is not None
    assert (state.number, state.edits, state.torn_at) == (V1_NUMBER, [V1_EDIT], None)
    assert state.edits[0].new_files[0][2].created_ms == 0
    assert replay_edits(state.edits).max_family_id == 0


def test_the_version_1_example_has_family_0_flushed_to_its_last_seq():
    rec = replay_edits([V1_EDIT])
    assert (rec.last_seq, rec.family_flushed) == (3, {0: 3})


@pytest.mark.parametrize("tag", [Tag.MAX_FAMILY_ID, Tag.FAMILY_FLUSHED])
def test_the_version_2_tags_are_unknown_in_a_version_1_payload(tag):
    payload = encode_edit(VersionEdit(max_family_id=3, family_flushed=[(0, 3)]))
    field = payload[:9] if tag == Tag.MAX_FAMILY_ID else payload[9:]
    assert field[0] == tag
    with pytest.raises(ManifestDecodeError, match=f"unknown tag {int(tag)}"):
        decode_edit(field, version=1)


def test_the_version_1_payload_is_not_a_version_2_payload():
    payload = V1_MANIFEST[32 + 25 :]
    assert decode_edit(payload, version=1) == V1_EDIT
    with pytest.raises(ManifestDecodeError):
        decode_edit(payload)  # read as version 2, the NEW_FILE's keys are misplaced


def test_the_version_1_example_reencodes_as_version_2_with_8_more_bytes_per_table():
    payload = V1_MANIFEST[32 + 25 :]
    assert len(encode_edit(V1_EDIT)) == len(payload) + 8


def test_the_version_1_example_cut_short_is_corruption():
    for size in range(len(V1_MANIFEST)):
        with pytest.raises(CorruptionError):
            read_manifest(_fs(V1_MANIFEST[:size], _v1_current(), V1_NUMBER), DIR)
