"""LSM options small enough that a few hundred writes flush memtables and compact tables, so
that tests run across flushes and compactions."""

TINY_LSM = {
    "write_buffer_size": 16 * 1024,
    "block_size": 256,
    "target_file_size": 16 * 1024,
    "max_bytes_for_level_base": 64 * 1024,
    "level_multiplier": 4,
    "l0_compaction_trigger": 2,
}
