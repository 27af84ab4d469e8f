"""What a training run shows and leaves behind: a progress line, progress.json (the same for
programs, e.g. the trainer node), log.csv, and training.png (loss curves beside a few
predicted disparity maps). Written with OpenCV only."""
from __future__ import annotations

import csv
import json
import math
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from lumde_ros.files import atomic_path

LOG_FILE = "log.csv"
PROGRESS_FILE = "progress.json"
PLOT_FILE = "training.png"
# Columns every trainer writes; the rest are its loss terms.
BOOKKEEPING = ("step", "lr", "skipped", "s_per_step")
_CURVE_COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40),
                  (148, 103, 189), (140, 86, 75), (227, 119, 194), (127, 127, 127)]


class RunLog:
    """log.csv rows averaged over `every` steps, and the progress line. A resumed run keeps
    the rows up to the step it resumes from and drops any written after that checkpoint."""

    def __init__(self, folder: Path, title: str, total_steps: int, every: int,
                 resume_step: int, enabled: bool = True) -> None:
        self.path = folder / LOG_FILE
        self.title, self.total, self.every, self.enabled = title, total_steps, every, enabled
        self.rows: list[dict[str, float]] = []
        if resume_step > 0 and self.path.is_file():
            with open(self.path, newline="") as f:
                self.rows = [{k: float(v) if v else math.nan for k, v in row.items()}
                             for row in csv.DictReader(f) if float(row["step"]) <= resume_step]
        self._window: dict[str, list[float]] = {}
        self._times: list[float] = []
        self._start_step = resume_step
        self._last = time.monotonic()
        self._tty = sys.stderr.isatty()
        self._written = self._columns()
        if enabled:
            self._rewrite()

    def record(self, step: int, values: dict[str, float], lr: float, skipped: int) -> None:
        """One finished step: accumulate; every `every` steps write a row and show progress."""
        now = time.monotonic()
        self._times.append(now - self._last)
        self._last = now
        for key, value in values.items():
            if math.isfinite(value):
                self._window.setdefault(key, []).append(value)
        if step % self.every and step != self.total:
            return
        row = {"step": float(step), "lr": lr, "skipped": float(skipped),
               "s_per_step": float(np.median(self._times[-50:]))}
        row.update({k: float(np.mean(v)) for k, v in self._window.items()})
        self._window = {}
        self.rows.append(row)
        if self.enabled:
            self._append(row)
            self._progress(row)

    def seconds_per_step(self) -> float:
        return float(np.median(self._times)) if self._times else float("nan")

    def _columns(self) -> list[str]:
        """Every key any row has, in order of first appearance (a term can be missing from a
        row when all its values in the window were non-finite)."""
        return list(dict.fromkeys(key for row in self.rows for key in row))

    def _rewrite(self) -> None:
        with atomic_path(self.path) as tmp, open(tmp, "w", newline="") as f:
            if self.rows:
                writer = csv.DictWriter(f, fieldnames=self._columns(), restval="nan")
                writer.writeheader()
                writer.writerows(self.rows)

    def _append(self, row: dict[str, float]) -> None:
        columns = self._columns()
        if len(self.rows) == 1 or columns != self._written:
            self._rewrite()  # first row, or a new term: rewrite with the full header
            self._written = columns
            return
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=columns, restval="nan").writerow(row)

    def _progress(self, row: dict[str, float]) -> None:
        step = int(row["step"])
        width = 24
        filled = width * step // self.total
        losses = " ".join(f"{k} {v:.4f}" for k, v in row.items() if k not in BOOKKEEPING)
        eta = (self.total - step) * row["s_per_step"]
        skipped = f" | skipped {int(row['skipped'])}" if row["skipped"] else ""
        line = (f"{self.title} {step}/{self.total} [{'#' * filled}{'.' * (width - filled)}] "
                f"{losses} | {row['s_per_step']:.2f} s/step, ETA {_clock(eta)}{skipped}")
        progress = {"title": self.title, "step": step, "steps": self.total,
                    "s_per_step": row["s_per_step"], "eta_s": eta, "skipped": int(row["skipped"]),
                    "losses": {k: v for k, v in row.items() if k not in BOOKKEEPING}}
        with atomic_path(self.path.parent / PROGRESS_FILE) as tmp:
            tmp.write_text(json.dumps(progress))
        # On a terminal one line is redrawn; in a log file every row is a line.
        sys.stderr.write(f"\r{line}\033[K" if self._tty else f"{line}\n")
        if self._tty and step == self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    def plot(self, previews: list[tuple[np.ndarray, np.ndarray]]) -> Path:
        """Write training.png: loss curves on the left, (image, disparity) pairs on the right.
        previews: RGB uint8 (H, W, 3) and disparity (H, W) in [0, 1]."""
        height = 480
        curves = _curves(self.rows, 640, height)
        tiles = []
        for rgb, disp in previews:
            colour = cv2.applyColorMap((np.clip(disp / max(disp.max(), 1e-6), 0, 1) * 255)
                                       .astype(np.uint8), cv2.COLORMAP_MAGMA)
            tiles.append(np.hstack([cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), colour]))
        canvas = curves
        if tiles:
            column = np.vstack(tiles)
            scale = height / column.shape[0]
            column = cv2.resize(column, (max(1, round(column.shape[1] * scale)), height),
                                interpolation=cv2.INTER_AREA)
            canvas = np.hstack([curves, column])
        path = self.path.parent / PLOT_FILE
        with atomic_path(path, suffix=".png") as tmp:
            if not cv2.imwrite(str(tmp), canvas):
                raise OSError(f"cannot write {path}")
        return path


def _clock(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _curves(rows: list[dict[str, float]], width: int, height: int) -> np.ndarray:
    """Each loss term against the step, each on its own log scale (terms differ by orders of
    magnitude), with its range in the legend. BGR uint8 image."""
    canvas = np.full((height, width, 3), 255, np.uint8)
    left, right, top, bottom = 50, width - 10, 10, height - 30
    cv2.rectangle(canvas, (left, top), (right, bottom), (0, 0, 0), 1)
    if not rows:
        return canvas
    steps = np.array([r["step"] for r in rows])
    span = max(steps[-1] - steps[0], 1.0)
    keys = [k for k in rows[-1] if k not in BOOKKEEPING]
    for i, key in enumerate(keys):
        values = np.array([r.get(key, np.nan) for r in rows])
        good = np.isfinite(values) & (values > 0)
        if good.sum() < 1:
            continue
        logs = np.log10(values[good])
        lo, hi = logs.min(), logs.max()
        y = bottom - (logs - lo) / max(hi - lo, 1e-9) * (bottom - top)
        x = left + (steps[good] - steps[0]) / span * (right - left)
        colour = _CURVE_COLOURS[i % len(_CURVE_COLOURS)]
        points = np.stack([x, y], 1).round().astype(np.int32)
        cv2.polylines(canvas, [points], False, colour, 1, cv2.LINE_AA)
        label = f"{key}: {values[good][0]:.3g} -> {values[good][-1]:.3g}"
        cv2.putText(canvas, label, (left + 8, top + 18 + 16 * i), cv2.FONT_HERSHEY_SIMPLEX,
                    0.45, colour, 1, cv2.LINE_AA)
    cv2.putText(canvas, f"step {int(steps[0])}..{int(steps[-1])} (each curve log-scaled)",
                (left, height - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return canvas
