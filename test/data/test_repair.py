"""What a dead recorder left is read back: every complete chunk of an MCAP without summary,
footer or metadata.yaml, from a repaired copy beside it; the original is never changed.
Oracle: the chunk index rosbags reads from the intact file (where each chunk starts and how
many messages of each topic it holds)."""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from rosbags.highlevel import AnyReader
from rosbags.rosbag2.storage_mcap import McapReader

from lumde_ros.data import Recording
from lumde_ros.data.repair import SUFFIX, recover, unfinished
from lumde_ros.errors import BagError
from lumde_ros.nodes.bag_io import BagWriter


def digest(folder: Path) -> dict[str, str]:
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in folder.iterdir()}


def chunk_index(mcap: Path) -> list[tuple[int, int, dict[str, int]]]:
    """(start offset, length, messages per topic) of each chunk, from the file's own index."""
    reader = McapReader(mcap)
    reader.open()
    topics = {c.id: c.topic for c in reader.connections}
    chunks = [(c.chunk_start_offset, c.chunk_length,
               {topics[i]: n for i, n in c.channel_count.items()}) for c in reader.chunks]
    reader.close()
    return sorted(chunks)


def kept_before(chunks: list, k: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _, _, per_topic in chunks[:k]:
        for topic, n in per_topic.items():
            counts[topic] = counts.get(topic, 0) + n
    return counts


@pytest.mark.parametrize("metadata", [True, False])
def test_a_file_cut_in_the_middle_of_a_chunk_keeps_every_chunk_before(sim_bag, tmp_path,
                                                                       metadata):
    chunks = chunk_index(next(sim_bag.glob("*.mcap")))
    assert len(chunks) >= 4
    k = len(chunks) // 2
    cut = tmp_path / "cut"
    shutil.copytree(sim_bag, cut)
    mcap = next(cut.glob("*.mcap"))
    data = mcap.read_bytes()
    mcap.write_bytes(data[:chunks[k][0] + chunks[k][1] // 2])
    if not metadata:  # as the recorder leaves it: metadata.yaml is written on close
        (cut / "metadata.yaml").unlink()
    before = digest(cut)
    assert unfinished(cut) == [mcap]

    with Recording(cut) as rec, Recording(sim_bag) as whole:
        frames, reference = list(rec.frames()), list(whole.frames())
        recovery = rec.recovered
    assert recovery.messages == kept_before(chunks, k)
    assert recovery.path == tmp_path / f"cut{SUFFIX}" and recovery.lost_bytes > 0
    assert "recovered" in recovery.describe() and "untouched" in recovery.describe()
    assert 0 < len(frames) < len(reference)
    for got, want in zip(frames, reference):  # the frames kept are the recording's first
        np.testing.assert_array_equal(got.rgb, want.rgb)
        np.testing.assert_array_equal(got.depth, want.depth)
        np.testing.assert_array_equal(got.odom_from_camera, want.odom_from_camera)
    assert digest(cut) == before


def test_the_copy_is_made_once_and_again_when_the_original_changes(sim_bag, tmp_path):
    chunks = chunk_index(next(sim_bag.glob("*.mcap")))
    dead = tmp_path / "dead"
    dead.mkdir()
    data = next(sim_bag.glob("*.mcap")).read_bytes()
    mcap = dead / "dead_0.mcap"
    mcap.write_bytes(data[:chunks[1][0] + 100])
    first = recover(dead)
    made = (first.path / "metadata.yaml").stat().st_mtime_ns
    assert recover(dead) == first
    assert (first.path / "metadata.yaml").stat().st_mtime_ns == made  # reused, not rewritten
    mcap.write_bytes(data[:chunks[3][0] + 100])  # the file grew (a recorder still writing)
    again = recover(dead)
    assert again.messages == kept_before(chunks, 3) != first.messages


def test_nothing_readable_is_refused_with_the_reason(sim_bag, tmp_path):
    chunks = chunk_index(next(sim_bag.glob("*.mcap")))
    data = next(sim_bag.glob("*.mcap")).read_bytes()
    for name, content, why in (("garbage", b"not a bag at all" * 8, "not an MCAP file"),
                               ("early", data[:chunks[0][0] + 50], "no complete message")):
        folder = tmp_path / name
        folder.mkdir()
        (folder / f"{name}_0.mcap").write_bytes(content)
        with pytest.raises(BagError, match=why):
            Recording(folder)
        assert not (tmp_path / f"{name}{SUFFIX}").exists()  # no half-made copy left behind


def test_a_live_recording_is_readable_up_to_its_last_complete_chunk(tmp_path, monkeypatch):
    """BagWriter flushes and fsyncs each chunk as it completes: what a reader finds on disk
    while the recorder still runs, or after it died, is every chunk but the one being filled.
    (That fsync outlives a power cut cannot be shown here; that it happens once per chunk
    can.)"""
    synced = []
    fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), fsync(fd)))
    image = "/camera/image_raw"
    writer = BagWriter(tmp_path / "live", {image: "sensor_msgs/msg/CompressedImage"})
    payload = bytes(300_000)  # four messages fill a 1 MiB chunk
    for i in range(10):
        assert writer.write(image, i * 10**8, payload)
    live = recover(tmp_path / "live")
    assert len(synced) == 2  # two chunks completed
    writer.close()
    assert live.messages[image] == 8
    assert unfinished(tmp_path / "live") == []  # closed: finished, read directly


def write_split(folder: Path, messages: int, **limits: float) -> BagWriter:
    """A BagWriter fed `messages` 300 kB messages, one every 0.1 s, left open."""
    writer = BagWriter(folder, {"/camera/image_raw": "sensor_msgs/msg/CompressedImage"},
                       **limits)
    for i in range(messages):
        assert writer.write("/camera/image_raw", 10**9 + i * 10**8, bytes([i]) * 300_000)
    return writer


@pytest.mark.parametrize("limits, per_file", [({"max_file_s": 0.35}, 4),
                                               ({"max_file_mb": 1.0}, 3)])
def test_a_recording_is_split_into_bounded_files_read_back_as_one_bag(tmp_path, limits,
                                                                      per_file):
    writer = write_split(tmp_path / "rec", 10, **limits)
    writer.close()
    files = sorted((tmp_path / "rec").iterdir())
    expected = [f"rec_{i}.mcap" for i in range(-(-10 // per_file))]
    assert [f.name for f in files] == sorted(["metadata.yaml", *expected])
    # Each file is a closed MCAP of its own, and the bag reads as one, in order.
    assert unfinished(tmp_path / "rec") == []
    counts = [sum(n for _, _, c in chunk_index(tmp_path / "rec" / name) for n in c.values())
              for name in expected]
    assert counts == [per_file] * (10 // per_file) + [10 % per_file] * (10 % per_file > 0)
    with AnyReader([tmp_path / "rec"]) as reader:
        read = [(stamp, bytes(raw)[0]) for _, stamp, raw in reader.messages()]
        assert reader.message_count == 10 and reader.duration == 9 * 10**8 + 1
    assert read == [(10**9 + i * 10**8, i) for i in range(10)]


def test_a_split_recording_left_open_is_recovered_from_its_closed_files_and_live_chunks(
        tmp_path):
    writer = write_split(tmp_path / "rec", 10, max_file_mb=1.0)  # files of 3 messages
    closed = {f.name: hashlib.sha256(f.read_bytes()).hexdigest()
              for f in (tmp_path / "rec").glob("*.mcap")}
    assert sorted(closed) == ["rec_0.mcap", "rec_1.mcap", "rec_2.mcap"]
    # The recorder dies here: the fourth file (one message, no chunk completed) is in the
    # folder it is written in, and there is no metadata.yaml.
    assert [f.relative_to(tmp_path) for f in unfinished(tmp_path / "rec")] == [
        Path("rec/rec_0.mcap"), Path("rec/rec_1.mcap"), Path("rec/rec_2.mcap"),
        Path("rec/rec_3/rec_3.mcap")]
    recovery = recover(tmp_path / "rec")
    assert recovery.messages == {"/camera/image_raw": 9}
    with AnyReader([recovery.path]) as reader:
        assert [bytes(raw)[0] for _, _, raw in reader.messages()] == list(range(9))
    assert {f.name: hashlib.sha256(f.read_bytes()).hexdigest()
            for f in (tmp_path / "rec").glob("*.mcap")} == closed
    writer.close()
