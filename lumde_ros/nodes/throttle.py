"""Throttled warnings keyed by kind, so one noisy problem cannot hide a different one (rclpy's
own throttling is keyed by call site, and every per-frame error is logged from one site)."""
from __future__ import annotations

import time

from rclpy.impl.rcutils_logger import RcutilsLogger


class Throttle:
    """Log each kind of warning at most once per `period_s`, telling how many were held back."""

    def __init__(self, logger: RcutilsLogger, period_s: float) -> None:
        self._logger, self._period_s = logger, period_s
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def warn(self, kind: str, message: str) -> None:
        now = time.monotonic()
        if now - self._last.get(kind, -float("inf")) < self._period_s:
            self._held[kind] = self._held.get(kind, 0) + 1
            return
        held = self._held.pop(kind, 0)
        suffix = f" ({held} more like this in the last {self._period_s:g} s)" if held else ""
        self._last[kind] = now
        self._logger.warning(message + suffix)
