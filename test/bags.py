"""Recordings for tests, derived from real ones with rosbags (no ROS needed)."""
from __future__ import annotations

from pathlib import Path

from rosbags.rosbag2 import Reader, StoragePlugin, Writer


def copy_without(bag: Path, out: Path, drop: set[str]) -> Path:
    """A copy of `bag` (MCAP) without the topics in `drop`, messages written as recorded."""
    with Reader(bag) as reader, Writer(out, version=9,
                                       storage_plugin=StoragePlugin.MCAP) as writer:
        conns = {c.id: writer.add_connection(c.topic, c.msgtype, msgdef=c.msgdef.data,
                                             rihs01=c.digest)
                 for c in reader.connections if c.topic not in drop}
        for conn, stamp, raw in reader.messages():
            if conn.id in conns:
                writer.write(conns[conn.id], stamp, raw)
    return out
