"""Frame statistics for /diagnostics: rate, latency, drops, CPU. Pure Python, no rclpy."""
from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from std_msgs.msg import Header


@dataclass
class FrameStats:
    """Counts and timings over a sliding window of the last `window` processed frames."""

    window: int = 100
    processed: int = 0
    dropped: int = 0
    skipped: int = 0
    last_error: str = ""
    _stamps: collections.deque = field(default_factory=collections.deque)
    _latency_s: collections.deque = field(default_factory=collections.deque)
    _forward_s: collections.deque = field(default_factory=collections.deque)
    _processing_s: collections.deque = field(default_factory=collections.deque)
    _cpu_mark: tuple[float, float] = field(default_factory=lambda: (time.monotonic(),
                                                                      time.process_time()))
    _last_sequence: dict[bytes, int] = field(default_factory=dict)

    def frame_received(self, publisher: bytes, sequence: int | None) -> None:
        """Count frames the middleware dropped before delivery (keep-last-1 history, best
        effort) from gaps in one publisher's sequence numbers."""
        if sequence is None:
            return
        last = self._last_sequence.get(publisher)
        if last is not None and sequence > last + 1:
            self.dropped += sequence - last - 1
        self._last_sequence[publisher] = sequence

    def frame_done(self, latency_s: float | None, forward_s: float,
                   processing_s: float) -> None:
        """Record one published frame. latency_s: input stamp to publish (None if unknown);
        forward_s: the network alone; processing_s: decode to last publish."""
        self.processed += 1
        for queue, value in ((self._stamps, time.monotonic()), (self._forward_s, forward_s),
                             (self._latency_s, latency_s), (self._processing_s, processing_s)):
            if value is not None:
                queue.append(value)
                if len(queue) > self.window:
                    queue.popleft()

    def frame_skipped(self, reason: str) -> None:
        """Record a frame refused for bad input."""
        self.skipped += 1
        self.last_error = reason

    def summary(self) -> dict[str, float | int | str]:
        """Current figures; resets the CPU-use measurement interval."""
        now, cpu = time.monotonic(), time.process_time()
        wall0, cpu0 = self._cpu_mark
        self._cpu_mark = (now, cpu)
        stamps = self._stamps
        rate = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0
        if stamps and now - stamps[-1] > 2.0 * max(1.0 / max(rate, 1e-9), 1.0):
            rate = 0.0  # the stream stopped: a stale window would report a rate nobody gets
        def ms(values: collections.deque, q: float) -> float:
            return round(1e3 * float(np.percentile(values, q)), 2) if values else float("nan")

        return {"rate_hz": round(rate, 2),
                "latency_p50_ms": ms(self._latency_s, 50),
                "latency_p95_ms": ms(self._latency_s, 95),
                "processing_p50_ms": ms(self._processing_s, 50),
                "forward_p50_ms": ms(self._forward_s, 50),
                "cpu_percent": round(100.0 * (cpu - cpu0) / max(now - wall0, 1e-9), 1),
                "processed_frames": self.processed, "dropped_frames": self.dropped,
                "skipped_frames": self.skipped, "last_error": self.last_error}


def diagnostic_array(name: str, hardware_id: str, level: bytes, message: str,
                     values: dict[str, object], header: Header) -> DiagnosticArray:
    """A one-status DiagnosticArray, values as strings (diagnostic_msgs' convention)."""
    status = DiagnosticStatus(level=level, name=name, message=message, hardware_id=hardware_id,
                              values=[KeyValue(key=k, value=str(v)) for k, v in values.items()])
    return DiagnosticArray(header=header, status=[status])


def diagnostic_values(msg: DiagnosticArray, name: str) -> dict[str, str]:
    """The key/values of the status called `name` in a DiagnosticArray ({} if absent)."""
    for status in msg.status:
        if status.name == name:
            return {kv.key: kv.value for kv in status.values}
    return {}
