"""Exception types of the episodic memory. Every message names the problem and the fix."""

from __future__ import annotations


class MemoryStoreError(Exception):
    """Base class: a memory operation that a user can hit failed."""


class CorruptMemoryError(MemoryStoreError):
    """The SQLite file is not a readable memory database."""


class SchemaVersionError(MemoryStoreError):
    """The database was written by a newer version of glasses-runtime."""


class ModelMismatchError(MemoryStoreError):
    """A query embedding comes from another model or has the wrong dimension."""


class WriterBusyError(MemoryStoreError):
    """Another process already holds the single writer slot of this memory."""


class ReadOnlyError(MemoryStoreError):
    """A write was attempted through a memory opened read-only."""


class EncryptionKeyError(MemoryStoreError):
    """Encrypted thumbnails need a key, or the key given is not the one they were written with."""


class NotFoundError(MemoryStoreError):
    """A named object, episode or session does not exist."""
