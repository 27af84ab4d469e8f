"""Reading what a dead recorder left. A recorder ended by kill -9, a crash, a power cut or a
write failing on a full disk leaves an MCAP without its summary and footer, and a bag
directory without metadata.yaml: rosbags refuses both. Every complete record is still there,
in order, so the file is read record by record up to the first incomplete one (the chunk being
written when the recorder died) and what it held is written, with the recording's own message
definitions, into a repaired copy beside it: `<name>.recovered`. The original is never
changed; the copy is made once and reused while the original stays as it is."""
from __future__ import annotations

import io
import json
import os
import shutil
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore
from rosbags.typesys.idl import get_types_from_idl
from rosbags.typesys.msg import get_types_from_msg

from lumde_ros.errors import BagError

MAGIC = b"\x89MCAP0\r\n"
SCHEMA, CHANNEL, MESSAGE, CHUNK, DATA_END = 0x03, 0x04, 0x05, 0x06, 0x0F
SUFFIX = ".recovered"
# What the copy was made from: the original's files, sizes and modification times.
SOURCE_FILE = "recovered_from.json"
TYPESTORE = get_typestore(Stores.ROS2_JAZZY)


@dataclass(frozen=True)
class Recovery:
    """A repaired copy: where it is, what it was made from, what it kept and what it lost."""

    path: Path
    source: Path
    messages: dict[str, int]  # kept per topic
    lost_bytes: int           # the unfinished tail: the chunk being written at the end

    def describe(self) -> str:
        kept = sum(self.messages.values())
        return (f"{self.source} was left unfinished (no index: its recorder was killed, "
                f"crashed, lost power or hit a full disk); recovered {kept} messages into "
                f"{self.path}, {self.lost_bytes} bytes at the end were incomplete; the "
                "original is untouched")

    def as_dict(self) -> dict[str, object]:
        return {"copy": str(self.path), "messages": sum(self.messages.values()),
                "lost_bytes": self.lost_bytes}


def unfinished(path: Path) -> list[Path]:
    """The MCAP files of a recording (a bag directory or one .mcap) that were never closed:
    a directory without metadata.yaml counts all its files (see `recording_files`),
    otherwise a file counts when it does not end with MCAP's footer magic. Empty for a
    finished recording or another format (sqlite3 is left to rosbags)."""
    path = Path(path)
    if path.is_file():
        files = [path] if path.suffix == ".mcap" else []
    elif path.is_dir():
        files = recording_files(path)
        if not (path / "metadata.yaml").exists():
            return files
    else:
        return []
    return [f for f in files if not _has_footer(f)]


def recording_files(folder: Path) -> list[Path]:
    """A bag directory's MCAP files in recording order: split files `<name>_<i>.mcap` by
    their index, each followed by what lies in its own folder `<name>_<i>/` (where
    lumde_ros.nodes.bag_io.BagWriter keeps the file it is still writing)."""
    def order(file: Path) -> tuple[int, str]:
        index = file.stem.rsplit("_", 1)[-1]
        return (int(index) if index.isdigit() else -1, str(file.relative_to(folder)))
    return sorted([*folder.glob("*.mcap"), *folder.glob("*/*.mcap")], key=order)


def _has_footer(file: Path) -> bool:
    with open(file, "rb") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() < 2 * len(MAGIC):
            return False
        f.seek(-len(MAGIC), os.SEEK_END)
        return f.read() == MAGIC


def recover(path: Path) -> Recovery:
    """The repaired copy of an unfinished recording (see `unfinished`), made now or reused.
    Raises BagError when nothing in it can be read (not MCAP, or no complete message)."""
    path = Path(path)
    source = path.parent / path.name.removesuffix(".mcap")
    target = source.with_name(source.name + SUFFIX)
    files = [path] if path.is_file() else recording_files(path)
    root = path.parent if path.is_file() else path
    stamp = {str(f.relative_to(root)): [f.stat().st_size, f.stat().st_mtime_ns]
             for f in files}
    made = target / SOURCE_FILE
    if made.exists():
        try:
            record = json.loads(made.read_text())
            if record["files"] == stamp:
                return Recovery(target, path, record["messages"], record["lost_bytes"])
        except (OSError, ValueError, KeyError):
            pass  # an unreadable record: make the copy again
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        messages, lost = _rewrite(files, tmp / target.name)
        if not messages:
            raise BagError(f"{path} holds no complete message: nothing to recover")
        (tmp / target.name / SOURCE_FILE).write_text(json.dumps(
            {"files": stamp, "messages": messages, "lost_bytes": lost}))
        if target.exists():
            shutil.rmtree(target)  # made from an older state of the original
        os.replace(tmp / target.name, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Recovery(target, path, messages, lost)


def _rewrite(files: list[Path], out: Path) -> tuple[dict[str, int], int]:
    """Every complete message of `files`, in their order, into a new bag `out`; returns the
    messages kept per topic (empty: none) and the bytes lost at the files' ends."""
    writer = Writer(out, version=9, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    schemas: dict[int, tuple[str, str, str]] = {}
    channels: dict[int, object] = {}
    connections: dict[tuple[str, str, str], object] = {}
    counts: dict[str, int] = {}
    lost = 0
    try:
        for file in files:
            with open(file, "rb") as f:
                # Schema and channel ids are per file.
                schemas.clear()
                channels.clear()
                for op, body in _records(f, file):
                    if op == SCHEMA:
                        sid, name, encoding, data = _schema(body)
                        schemas[sid] = (name, encoding, data)
                    elif op == CHANNEL:
                        cid, sid, topic, encoding = _channel(body)
                        if sid not in schemas:
                            raise BagError(f"{file}: channel {topic} names schema {sid}, "
                                           "which the file does not hold")
                        key = (topic, schemas[sid][0], encoding)
                        if key not in connections:  # a topic in several files: one connection
                            connections[key] = _connection(writer, topic, encoding,
                                                           *schemas[sid])
                        channels[cid] = connections[key]
                    elif op == MESSAGE:
                        cid, log_time = struct.unpack_from("<HxxxxQ", body)
                        if cid in channels:
                            writer.write(channels[cid], log_time, body[22:])
                            topic = channels[cid].topic
                            counts[topic] = counts.get(topic, 0) + 1
                if not _has_footer(file):  # a closed file's summary is not lost
                    lost += file.stat().st_size - f.tell()
    finally:
        writer.close()
    return counts, lost


def _connection(writer: Writer, topic: str, encoding: str, msgtype: str,
                schema_encoding: str, msgdef: str):
    """The repaired bag's connection for a channel, with the recording's own definition."""
    if msgtype in TYPESTORE.fielddefs:
        rihs01 = TYPESTORE.hash_rihs01(msgtype)
    else:
        parse = get_types_from_idl if schema_encoding == "ros2idl" else \
            lambda text: get_types_from_msg(text, msgtype)
        store = get_typestore(Stores.EMPTY)
        store.register(parse(msgdef))
        rihs01 = store.hash_rihs01(msgtype)
    return writer.add_connection(topic, msgtype, msgdef=msgdef, rihs01=rihs01,
                                 serialization_format=encoding)


def _records(f: BinaryIO, file: Path) -> Iterator[tuple[int, bytes]]:
    """(opcode, body) of the schema, channel and message records in order, those inside
    chunks included; stops at the first incomplete or undecodable record, or at the end of
    the data section. `f` is left after the last complete record."""
    head = f.read(len(MAGIC))
    if head != MAGIC:
        if MAGIC.startswith(head):  # died before its first write reached the disk
            f.seek(0)
            return
        raise BagError(f"{file} is not an MCAP file (no MCAP magic at its start)")
    for start, op, body in _framed(f):
        inner = _chunk(body) if op == CHUNK else None
        if op == DATA_END or (op == CHUNK and inner is None):
            f.seek(start)  # the data ends here (a chunk cut or damaged in the middle)
            return
        if inner is None:
            yield op, body
        else:
            yield from ((o, b) for _, o, b in _framed(io.BytesIO(inner)))


def _framed(stream: BinaryIO) -> Iterator[tuple[int, int, bytes]]:
    """(offset, opcode, body) of each complete record from the stream's position on (a file,
    or a chunk's records); at the first incomplete one the stream is left at its start."""
    while True:
        start = stream.tell()
        head = stream.read(9)
        body = b""
        if len(head) == 9:
            op, length = struct.unpack("<BQ", head)
            body = stream.read(length)
        if len(head) < 9 or len(body) < length:
            stream.seek(start)
            return
        yield start, op, body


def _chunk(body: bytes) -> bytes | None:
    """A chunk record's decompressed records, or None when they do not decode."""
    try:
        size = struct.unpack_from("<Q", body, 16)[0]
        compression, at = _string(body, 28)
        length = struct.unpack_from("<Q", body, at)[0]
        data = body[at + 8:at + 8 + length]
        if compression == "":
            out = data
        elif compression == "zstd":
            try:
                from compression import zstd  # Python 3.14
            except ImportError:
                from backports import zstd
            out = zstd.decompress(data)
        elif compression == "lz4":
            import lz4.frame
            out = lz4.frame.decompress(data)
        else:
            return None
    except Exception:  # noqa: BLE001 - any decoding failure means a damaged chunk
        return None
    return out if len(out) == size else None


def _string(body: bytes, at: int) -> tuple[str, int]:
    n = struct.unpack_from("<I", body, at)[0]
    return body[at + 4:at + 4 + n].decode(), at + 4 + n


def _schema(body: bytes) -> tuple[int, str, str, str]:
    sid = struct.unpack_from("<H", body)[0]
    name, at = _string(body, 2)
    encoding, at = _string(body, at)
    n = struct.unpack_from("<I", body, at)[0]
    return sid, name, encoding, body[at + 4:at + 4 + n].decode()


def _channel(body: bytes) -> tuple[int, int, str, str]:
    cid, sid = struct.unpack_from("<HH", body)
    topic, at = _string(body, 4)
    encoding, _ = _string(body, at)
    return cid, sid, topic, encoding
