"""Recordings for tests, derived from real ones with rosbags (no ROS needed)."""
from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from pathlib import Path

from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore


def copy_bag(bag: Path, out: Path, drop: set[str] = frozenset(),
             edit: tuple[str, Callable[[object, int], None]] | None = None,
             rename: dict[str, tuple[str, ...]] | None = None,
             truncate: tuple[str, int] | None = None,
             delay: tuple[str, int] | None = None) -> Path:
    """A copy of `bag` (MCAP) without the topics in `drop`; with `edit` (topic, change) every
    message of that topic is deserialized, changed in place by change(msg, index) and written
    back; `rename` writes a topic under each of the names given instead of its own; `truncate`
    (topic, index) cuts that message's bytes in half; `delay` (topic, ns) logs that topic's
    messages later (or earlier) by ns, their header stamps unchanged. All else is written as
    recorded."""
    store = get_typestore(Stores.ROS2_JAZZY)
    index, seen = 0, 0
    with Reader(bag) as reader, Writer(out, version=9,
                                       storage_plugin=StoragePlugin.MCAP) as writer:
        conns = {c.id: [writer.add_connection(name, c.msgtype, msgdef=c.msgdef.data,
                                              rihs01=c.digest)
                        for name in (rename or {}).get(c.topic, (c.topic,))]
                 for c in reader.connections if c.topic not in drop}
        for conn, stamp, raw in reader.messages():
            if conn.id not in conns:
                continue
            if edit and conn.topic == edit[0]:
                msg = store.deserialize_cdr(raw, conn.msgtype)
                edit[1](msg, index)
                index += 1
                raw = store.serialize_cdr(msg, conn.msgtype)
            if truncate and conn.topic == truncate[0]:
                raw = raw[:len(raw) // 2] if seen == truncate[1] else raw
                seen += 1
            if delay and conn.topic == delay[0]:
                stamp += delay[1]
            for target in conns[conn.id]:
                writer.write(target, stamp, raw)
    return out


def humble_sqlite3_copy(bag: Path, out: Path) -> Path:
    """A copy of `bag` as ROS 2 Humble's default storage writes it: sqlite3 (schema 3),
    metadata version 5, and no message definitions or type hashes anywhere."""
    with Reader(bag) as reader, Writer(out, version=8,
                                       storage_plugin=StoragePlugin.SQLITE3) as writer:
        conns = {c.id: writer.add_connection(c.topic, c.msgtype, msgdef=c.msgdef.data,
                                             rihs01=c.digest) for c in reader.connections}
        for conn, stamp, raw in reader.messages():
            writer.write(conns[conn.id], stamp, raw)
    metadata = (out / "metadata.yaml").read_text()
    metadata = re.sub(r"\n\s+type_description_hash:[^\n]*(\n\s+RIHS01_[0-9a-f]+)?", "",
                      metadata).replace("version: 8", "version: 5")
    (out / "metadata.yaml").write_text(metadata)
    with sqlite3.connect(next(out.glob("*.db3"))) as db:
        db.execute("DROP TABLE IF EXISTS message_definitions")
        db.execute("ALTER TABLE topics DROP COLUMN type_description_hash")
        db.execute("UPDATE schema SET schema_version=3, ros_distro='humble'")
    return out
