"""Persistent episodic memory: what the glasses saw, searchable by image, object, time and place.

    from glasses_runtime.memory import EpisodicMemory, KeyframeIn
    with EpisodicMemory.open("memory.db") as mem:
        sid = mem.start_session("camera")
        mem.add_keyframes([KeyframeIn(t_ns, z, model_id)], sid)
        mem.search(z, model_id, k=10)
        table = mem.keyframe_table(model_id, with_tokens=True)   # KeyframeTable: ids, emb, poses, tokens

See docs/memory.md for the design, schema and CLI.
"""

from glasses_runtime.memory.codec import Episode, EventIn, KeyframeIn, KeyframeTable, Moment
from glasses_runtime.memory.config import IndexConfig, MemoryConfig, RetentionPolicy
from glasses_runtime.memory.errors import (
    CorruptMemoryError,
    EncryptionKeyError,
    MemoryStoreError,
    ModelMismatchError,
    NotFoundError,
    ReadOnlyError,
    SchemaVersionError,
    WriterBusyError,
)
from glasses_runtime.memory.retention import RetentionWorker
from glasses_runtime.memory.store import EpisodicMemory

__all__ = [
    "CorruptMemoryError",
    "EncryptionKeyError",
    "Episode",
    "EpisodicMemory",
    "EventIn",
    "IndexConfig",
    "KeyframeIn",
    "KeyframeTable",
    "MemoryConfig",
    "MemoryStoreError",
    "ModelMismatchError",
    "Moment",
    "NotFoundError",
    "ReadOnlyError",
    "RetentionPolicy",
    "RetentionWorker",
    "SchemaVersionError",
    "WriterBusyError",
]
