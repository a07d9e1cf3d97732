"""Edit payloads (version 2, and version 1 read), CURRENT, and the shared WAL reader on manifest
bytes: whole, byte at a time, with garbage, truncation and damage."""

from __future__ import annotations

import dataclasses
import struct

import pytest
import xxhash
from hypothesis import given
from hypothesis import strategies as st

from aiokv.engine.lsm.manifest_format import (
    MANIFEST_MAGIC,
    MANIFEST_VERSION,
    READ_VERSIONS,
    ManifestDecodeError,
    Tag,
    claimed_after,
    decode_current,
    decode_edit,
    encode_current,
    encode_edit,
    header_version,
    manifest_name,
    manifest_reader,
)
from aiokv.engine.lsm.version import NUM_LEVELS, FileMeta
from aiokv.engine.lsm.version_edit import VersionEdit
from aiokv.engine.wal_format import (
    END,
    NEED_DATA,
    SEGMENT_HEADER,
    WalReader,
    WalRecord,
    encode_record,
    encode_segment_header,
)
from aiokv.errors import CorruptionError, UnsupportedFormatError

PATH = "/db/MANIFEST-000003"
U64 = (1 << 64) - 1


def _meta(number: int = 1, smallest: bytes = b"a", largest: bytes = b"z") -> FileMeta:
    """A FileMeta whose every field (present and future) holds its own value."""
    values: dict[str, object] = {"number": number, "smallest": smallest, "largest": largest}
    for i, f in enumerate(dataclasses.fields(FileMeta)):
        values.setdefault(f.name, 1000 + i)
    return FileMeta(**values)  # type: ignore[arg-type]


def _full_edit() -> VersionEdit:
    return VersionEdit(
        log_number=11,
        next_file_number=U64,
        last_seq=1 << 56,
        max_family_id=(1 << 32) - 1,
        new_files=[(0, 0, _meta(5)), (3, NUM_LEVELS - 1, _meta(6, b"", b"\xff" * 3))],
        deleted_files=[(0, 2, 9), ((1 << 32) - 1, 6, U64)],
        compact_pointers=[(0, 1, b"kiwi"), (2, 3, b"")],
        added_families=[(1, "sessions", b'{"ttl": 3600}'), (2, "\u00e9t\u00e9", b"")],
        dropped_families=[7, 8],
    )


# -- edits ----------------------------------------------------------------------------------------


def test_every_field_of_an_edit_round_trips():
    edit = _full_edit()
    assert decode_edit(encode_edit(edit)) == edit


def test_every_filemeta_field_round_trips_with_its_own_value():
    meta = _meta()
    (_, _, back), *_ = decode_edit(encode_edit(VersionEdit(new_files=[(0, 1, meta)]))).new_files
    assert dataclasses.asdict(back) == dataclasses.asdict(meta)


def test_the_empty_edit_is_the_empty_payload():
    assert encode_edit(VersionEdit()) == b""
    assert decode_edit(b"") == VersionEdit()


def test_large_keys_names_and_options_round_trip():
    big = bytes(range(256)) * 4096  # 1 MiB
    edit = VersionEdit(
        new_files=[(0, 1, _meta(1, big, big + b"\x00"))],
        compact_pointers=[(0, 1, big)],
        added_families=[(4, "n" * 70000, big)],
    )
    assert decode_edit(encode_edit(edit)) == edit


_keys = st.binary(max_size=20)
_metas = st.builds(
    FileMeta, st.integers(0, U64), st.integers(0, U64), _keys, _keys,
    st.integers(0, U64), st.integers(0, U64), st.integers(0, U64), st.integers(0, U64),
    st.integers(0, U64), st.integers(0, U64), st.integers(0, U64),
)  # fmt: skip
_cf = st.integers(0, (1 << 32) - 1)
_level = st.integers(0, NUM_LEVELS - 1)
_edits = st.builds(
    VersionEdit,
    st.none() | st.integers(0, U64),
    st.none() | st.integers(0, U64),
    st.none() | st.integers(0, U64),
    st.none() | st.integers(0, U64),
    st.lists(st.tuples(_cf, _level, _metas), max_size=3),
    st.lists(st.tuples(_cf, _level, st.integers(0, U64)), max_size=3),
    st.lists(st.tuples(_cf, _level, _keys), max_size=3),
    st.lists(st.tuples(_cf, st.text(max_size=8), _keys), max_size=3),
    st.lists(_cf, max_size=3),
)


@given(_edits)
def test_any_edit_round_trips_and_reencodes_to_the_same_bytes(edit):
    payload = encode_edit(edit)
    assert decode_edit(payload) == edit
    assert encode_edit(decode_edit(payload)) == payload


def _fields(edit: VersionEdit) -> list[bytes]:
    """The encoded fields of `edit`, one by one."""
    one = [VersionEdit(log_number=edit.log_number), VersionEdit(last_seq=edit.last_seq)]
    one += [VersionEdit(max_family_id=edit.max_family_id)]
    one += [VersionEdit(new_files=[f]) for f in edit.new_files]
    one += [VersionEdit(deleted_files=[d]) for d in edit.deleted_files]
    one += [VersionEdit(compact_pointers=[p]) for p in edit.compact_pointers]
    one += [VersionEdit(added_families=[a]) for a in edit.added_families]
    one += [VersionEdit(dropped_families=[c]) for c in edit.dropped_families]
    return [encode_edit(e) for e in one]


def test_fields_decode_in_any_order():
    edit = _full_edit()
    edit.next_file_number = None
    back = decode_edit(b"".join(reversed(_fields(edit))))
    for name in ("new_files", "deleted_files", "compact_pointers", "added_families"):
        setattr(back, name, getattr(back, name)[::-1])
    back.dropped_families.reverse()
    assert back == edit


def test_a_payload_cut_anywhere_but_between_fields_fails_to_decode():
    fields = _fields(_full_edit())
    payload = b"".join(fields)
    boundaries = {sum(len(f) for f in fields[:i]) for i in range(len(fields) + 1)}
    for size in range(len(payload)):
        if size in boundaries:
            decode_edit(payload[:size])  # a shorter, valid edit
        else:
            with pytest.raises(ManifestDecodeError):
                decode_edit(payload[:size])


@pytest.mark.parametrize("tag", [0, 11, 127, 255])
def test_an_unknown_tag_is_an_error(tag):
    with pytest.raises(ManifestDecodeError, match=f"unknown tag {tag} at payload offset 9"):
        decode_edit(encode_edit(VersionEdit(log_number=1)) + bytes([tag]) + bytes(16))


def test_trailing_garbage_after_the_fields_is_an_error():
    with pytest.raises(ManifestDecodeError):
        decode_edit(encode_edit(_full_edit()) + b"\xff\x00\x01")


def test_a_scalar_given_twice_is_an_error():
    once = encode_edit(VersionEdit(last_seq=5))
    with pytest.raises(ManifestDecodeError, match="LAST_SEQ given twice"):
        decode_edit(once + once)


def test_a_level_past_the_last_is_an_error():
    good = encode_edit(VersionEdit(deleted_files=[(0, NUM_LEVELS - 1, 1)]))
    bad = good[:5] + bytes([NUM_LEVELS]) + good[6:]
    with pytest.raises(ManifestDecodeError, match="level 7"):
        decode_edit(bad)


def test_a_family_name_that_is_not_utf8_is_an_error():
    payload = struct.pack("<BII", Tag.ADD_FAMILY, 1, 1) + b"\xff" + struct.pack("<I", 0)
    with pytest.raises(ManifestDecodeError, match="UTF-8"):
        decode_edit(payload)


@pytest.mark.parametrize(
    "edit",
    [
        VersionEdit(log_number=-1),
        VersionEdit(last_seq=1 << 64),
        VersionEdit(deleted_files=[(0, 256, 1)]),
        VersionEdit(dropped_families=[1 << 32]),
        VersionEdit(new_files=[(0, 0, _meta(-5))]),
    ],
)
def test_an_out_of_range_field_fails_to_encode_with_value_error(edit):
    with pytest.raises(ValueError, match="out of range"):
        encode_edit(edit)


def test_decode_errors_are_value_errors_with_a_detail():
    with pytest.raises(ValueError) as info:
        decode_edit(b"\x0b")
    assert isinstance(info.value, ManifestDecodeError)
    assert "tag 11" in info.value.detail


# -- versions -------------------------------------------------------------------------------------


def _v1_payload(edit: VersionEdit) -> bytes:
    """`edit` as a version 1 writer encoded it (no created_ms, no MAX_FAMILY_ID)."""
    assert edit.max_family_id is None and all(f.created_ms == 0 for _, _, f in edit.new_files)
    scalars = dataclasses.replace(edit, new_files=[], deleted_files=[], compact_pointers=[],
                                  added_families=[], dropped_families=[])  # fmt: skip
    files = [encode_edit(VersionEdit(new_files=[f])) for f in edit.new_files]
    lists = dataclasses.replace(edit, log_number=None, next_file_number=None, last_seq=None,
                                new_files=[])  # fmt: skip
    # created_ms is the ninth u64 of NEW_FILE: after tag, cf and level (6) and eight u64 (64).
    return encode_edit(scalars) + b"".join(f[:70] + f[78:] for f in files) + encode_edit(lists)


def _v1_edit() -> VersionEdit:
    edit = _full_edit()
    edit.max_family_id = None
    edit.new_files = [
        (cf, lv, dataclasses.replace(f, created_ms=0)) for cf, lv, f in edit.new_files
    ]
    return edit


def test_the_version_is_2_and_1_is_still_read():
    assert MANIFEST_VERSION == 2
    assert sorted(READ_VERSIONS) == [1, 2]


def test_created_ms_and_max_family_id_round_trip():
    meta = dataclasses.replace(_meta(), created_ms=1_700_000_000_123)
    edit = VersionEdit(max_family_id=7, new_files=[(2, 3, meta)])
    back = decode_edit(encode_edit(edit))
    assert back == edit
    assert (back.max_family_id, back.new_files[0][2].created_ms) == (7, 1_700_000_000_123)


def test_max_family_id_is_written_with_the_scalars_after_last_seq():
    payload = encode_edit(VersionEdit(last_seq=1, max_family_id=2, dropped_families=[3]))
    assert payload == struct.pack(
        "<BQBQBI", Tag.LAST_SEQ, 1, Tag.MAX_FAMILY_ID, 2, Tag.DROP_FAMILY, 3
    )


def test_a_version_1_payload_decodes_with_created_ms_unknown():
    edit = _v1_edit()
    payload = _v1_payload(edit)
    assert len(payload) == len(encode_edit(edit)) - 8 * len(edit.new_files)
    assert decode_edit(payload, version=1) == edit


def test_a_version_1_payload_cut_anywhere_but_between_fields_fails_to_decode():
    edit = _v1_edit()
    fields = [_v1_payload(VersionEdit(new_files=[f])) for f in edit.new_files]
    fields += [
        _v1_payload(VersionEdit(log_number=3)),
        _v1_payload(VersionEdit(dropped_families=[1])),
    ]
    payload = b"".join(fields)
    boundaries = {sum(len(f) for f in fields[:i]) for i in range(len(fields) + 1)}
    for size in range(len(payload)):
        if size in boundaries:
            decode_edit(payload[:size], version=1)
        else:
            with pytest.raises(ManifestDecodeError):
                decode_edit(payload[:size], version=1)


def test_max_family_id_is_an_unknown_tag_in_version_1():
    with pytest.raises(ManifestDecodeError, match="unknown tag 9"):
        decode_edit(encode_edit(VersionEdit(max_family_id=1)), version=1)


def test_max_family_id_given_twice_is_an_error():
    once = encode_edit(VersionEdit(max_family_id=5))
    with pytest.raises(ManifestDecodeError, match="MAX_FAMILY_ID given twice"):
        decode_edit(once + once)


@pytest.mark.parametrize("version", [0, 3])
def test_decoding_for_a_version_this_build_does_not_read_is_refused(version):
    with pytest.raises(ValueError, match=f"no MANIFEST format version {version}") as info:
        decode_edit(b"", version)
    assert not isinstance(info.value, ManifestDecodeError)  # a caller's bug, not bad bytes


@pytest.mark.parametrize("version", [1, 2])
def test_header_version_reads_the_headers_version(version):
    header = encode_segment_header(3, magic=MANIFEST_MAGIC, version=version)
    assert header_version(header) == version


# -- CURRENT --------------------------------------------------------------------------------------


@pytest.mark.parametrize("number", [1, 999999, 1000000, 1234567890])
def test_current_round_trips(number):
    data = encode_current(number, 4242)
    assert data.startswith(manifest_name(number).encode() + b"\n")
    assert decode_current(data) == (number, 4242)


def _current(body: bytes) -> bytes:
    return body + b"xxh3 %016x\n" % xxhash.xxh3_64_intdigest(body)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"MANIFEST-000001\n",  # LevelDB's CURRENT: no size, no checksum
        _current(b"MANIFEST-0000001\nsize 32\n"),  # not the canonical name of 1
        _current(b"MANIFEST-00001\nsize 32\n"),  # too few digits
        _current(b"MANIFEST-000001\nsize 032\n"),
        _current(b"MANIFEST-000001\nsize 32\n") + b"\n",
        _current(b"MANIFEST-000001\nsize 32\n")[:-1],
        _current(b"MANIFEST-000001\nsize 32\n").upper(),
        _current(b"MANIFEST-000001\nsize 32\n").replace(b"\n", b"\r\n"),
        encode_current(1, 32).replace(b"size 32", b"size 33"),
    ],
)
def test_garbled_current_is_an_error(data):
    with pytest.raises(ManifestDecodeError):
        decode_current(data)


# -- the shared reader on manifest bytes ----------------------------------------------------------


def _reader(number: int | None = 3) -> WalReader:
    return manifest_reader(PATH, number)


def _manifest(*edits: VersionEdit) -> bytes:
    data = encode_segment_header(3, magic=MANIFEST_MAGIC, version=MANIFEST_VERSION)
    for e in edits:
        data += encode_record(1, len(data), encode_edit(e))
    return data


def _drain(reader: WalReader, out: list[WalRecord]) -> object:
    while (rec := reader.next_record()) is not NEED_DATA and rec is not END:
        assert isinstance(rec, WalRecord)
        out.append(rec)
    return rec


def _read(data: bytes, bytewise: bool = False) -> tuple[list[VersionEdit], int | None]:
    reader = _reader()
    out: list[WalRecord] = []
    for chunk in [data[i : i + 1] for i in range(len(data))] if bytewise else [data]:
        reader.feed(chunk)
        assert _drain(reader, out) is NEED_DATA
    reader.feed_eof()
    assert _drain(reader, out) is END
    version = header_version(data) if out else MANIFEST_VERSION
    return [decode_edit(r.payload, version) for r in out], reader.torn_at


def _v1_manifest(*edits: VersionEdit) -> bytes:
    data = encode_segment_header(3, magic=MANIFEST_MAGIC, version=1)
    for e in edits:
        data += encode_record(1, len(data), _v1_payload(e))
    return data


EDITS = [_full_edit(), VersionEdit(log_number=12), VersionEdit(deleted_files=[(0, 0, 5)])]


def test_a_manifest_fed_one_byte_at_a_time_reads_the_same_edits():
    data = _manifest(*EDITS)
    assert _read(data, bytewise=True) == _read(data) == (EDITS, None)


def test_a_version_1_manifest_fed_one_byte_at_a_time_reads_the_same_edits():
    edits = [_v1_edit(), VersionEdit(log_number=12)]
    data = _v1_manifest(*edits)
    assert _read(data, bytewise=True) == _read(data) == (edits, None)


def test_a_version_1_manifest_cut_at_every_length_reads_a_prefix_then_a_torn_tail():
    edits = [_v1_edit(), VersionEdit(log_number=12)]
    data = _v1_manifest(*edits)
    ends = [len(_v1_manifest(*edits[:i])) for i in range(len(edits) + 1)]
    for size in range(32, len(data) + 1):
        got, torn_at = _read(data[:size])
        n = max(i for i, end in enumerate(ends) if end <= size)
        assert got == edits[:n]
        assert torn_at == (None if size == ends[n] else ends[n])


def test_trailing_garbage_after_a_manifest_is_a_torn_tail():
    data = _manifest(*EDITS)
    for read in (_read, lambda d: _read(d, bytewise=True)):
        assert read(data + b"\x00\xe8\x5a junk") == (EDITS, len(data))


def test_the_wal_reader_refuses_a_manifest_and_the_manifest_reader_a_wal_segment():
    data = _manifest(*EDITS)
    wal = WalReader(PATH, 3)
    wal.feed(data)
    wal.feed_eof()
    with pytest.raises(CorruptionError, match="bad WAL segment header"):
        wal.next_record()
    with pytest.raises(CorruptionError, match="bad MANIFEST file header"):
        _read(encode_segment_header(3) + data[32:])


def test_a_record_type_the_manifest_does_not_know_is_corruption():
    data = _manifest() + encode_record(2, 32, b"")
    with pytest.raises(CorruptionError, match="breaks the grammar"):
        _read(data)


def test_a_manifest_of_a_newer_version_is_unsupported():
    head = SEGMENT_HEADER.pack(MANIFEST_MAGIC, MANIFEST_VERSION + 1, 0, 3, 0)[:24]
    data = head + struct.pack("<Q", xxhash.xxh3_64_intdigest(head)) + _manifest(*EDITS)[32:]
    with pytest.raises(UnsupportedFormatError, match="MANIFEST format version 3 is newer"):
        _read(data)


def test_a_header_naming_another_manifest_is_corruption():
    reader = _reader(number=4)
    reader.feed(_manifest(*EDITS))
    reader.feed_eof()
    with pytest.raises(CorruptionError, match="header names file 3"):
        reader.next_record()


def test_claimed_after_finds_a_good_record_anywhere_after_a_bad_one():
    data = _manifest(*EDITS)
    second = 32 + 25 + len(encode_edit(EDITS[0]))
    third = second + 25 + len(encode_edit(EDITS[1]))
    assert claimed_after(data, 31) == claimed_after(data, second) == third
    assert claimed_after(data, third) == claimed_after(data, len(data)) == 0


def test_claimed_after_ignores_a_record_vouching_for_bytes_past_its_own_start():
    data = _manifest(EDITS[0])
    data += encode_record(1, len(data) + 1, b"")
    assert claimed_after(data, 32) == 0
