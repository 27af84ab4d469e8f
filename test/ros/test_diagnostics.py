import time

from diagnostic_msgs.msg import DiagnosticStatus
from std_msgs.msg import Header

from lumde_ros.ros.diagnostics import FrameStats, diagnostic_array, diagnostic_values


def test_stats_count_and_measure():
    stats = FrameStats()
    for _ in range(5):
        stats.frame_done(latency_s=0.02, forward_s=0.01, processing_s=0.015)
        time.sleep(0.01)
    stats.dropped += 2
    stats.frame_skipped("EncodingError: bad")
    s = stats.summary()
    assert s["processed_frames"] == 5 and s["dropped_frames"] == 2 and s["skipped_frames"] == 1
    assert s["latency_p50_ms"] == 20.0 and s["forward_p50_ms"] == 10.0
    assert s["processing_p50_ms"] == 15.0
    assert 20 < s["rate_hz"] < 110 and s["last_error"] == "EncodingError: bad"


def test_rate_falls_to_zero_when_the_stream_stops():
    stats = FrameStats()
    stats.frame_done(None, 0.0, 0.0)
    stats.frame_done(None, 0.0, 0.0)
    stats._stamps = type(stats._stamps)(t - 10.0 for t in stats._stamps)
    assert stats.summary()["rate_hz"] == 0.0


def test_diagnostic_array_round_trip():
    msg = diagnostic_array("n", "hw", DiagnosticStatus.WARN, "why", {"a": 1.5}, Header())
    assert msg.status[0].level == DiagnosticStatus.WARN
    assert diagnostic_values(msg, "n") == {"a": "1.5"} and diagnostic_values(msg, "x") == {}


def test_sequence_gaps_count_as_drops_per_publisher():
    stats = FrameStats()
    for publisher, seq in ((b"a", 5), (b"a", 6), (b"a", 9), (b"b", 1), (b"b", 3), (b"a", 10),
                           (b"c", None)):
        stats.frame_received(publisher, seq)
    assert stats.dropped == 3
