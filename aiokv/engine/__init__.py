"""Storage engines and what they share: codecs, the WAL, the FileSystem seam, the memtable.

Internal: users import from `aiokv` only.
"""
