"""The LSM-tree engine: memtables over a WAL now; SSTables, manifest and compaction next."""
