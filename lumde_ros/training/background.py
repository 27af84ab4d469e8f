"""A fine-tune (`lumde finetune`) running in its own process at a lower OS priority and with a
thread limit, so the robot's own nodes keep their rate; watched through the files the run
writes (progress.json per phase, the result JSON, a log). No rclpy: the trainer node wires
this to services and topics."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from lumde_ros.training.finetune import PHASES, FinetuneOptions
from lumde_ros.training.log import PROGRESS_FILE

RESULT_FILE = "result.json"
LOG_FILE = "finetune.log"
# Thread pools a training process may start besides torch's own setting.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


class FinetuneProcess:
    """Start `lumde finetune` into `out` and watch it. `student` None: the package default."""

    def __init__(self, out: Path, bags: list[Path], teacher: str | None, student: str | None,
                 options: FinetuneOptions, config_path: str | None, nice: int) -> None:
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        args = [sys.executable, "-m", "lumde_ros.cli", "finetune", "--out", str(self.out),
                "--json", str(self.out / RESULT_FILE),
                "--teacher-steps", str(options.teacher_steps),
                "--student-steps", str(options.student_steps),
                "--learning-rate", str(options.learning_rate), "--holdout", str(options.holdout),
                "--gate-margin", str(options.gate_margin), "--threads", str(options.threads)]
        args += [a for bag in bags for a in ("--bag", str(bag))]
        for flag, value in (("--teacher", teacher), ("--student", student),
                            ("--config", config_path)):
            if value:
                args += [flag, value]
        env = dict(os.environ)
        if options.threads:
            env.update(dict.fromkeys(THREAD_VARIABLES, str(options.threads)))
        self._log = open(self.out / LOG_FILE, "ab")
        # Its own session: a Ctrl-C meant for the node's terminal is not the trainer's; the node
        # stops it deliberately (cancel) so it saves its state first.
        self._process = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT,
                                         env=env, start_new_session=True)
        try:
            os.setpriority(os.PRIO_PROCESS, self._process.pid,
                           min(19, os.getpriority(os.PRIO_PROCESS, 0) + nice))
        except OSError:  # the process ended already, or the OS refuses: it still runs
            pass

    @property
    def pid(self) -> int:
        return self._process.pid

    def returncode(self) -> int | None:
        """None while running, else the exit status (0 accepted, 3 rejected, 130 stopped)."""
        return self._process.poll()

    def progress(self) -> dict[str, Any]:
        """The running phase's latest progress (phase, step, steps, eta_s, losses), {} before
        the first logged step."""
        for phase in reversed(PHASES):
            path = self.out / phase / PROGRESS_FILE
            if path.is_file():
                try:
                    return {"phase": phase, **json.loads(path.read_text())}
                except (OSError, ValueError):  # replaced while read: next time
                    return {}
        return {}

    def result(self) -> dict[str, Any] | None:
        """What the finished run reported (None when it wrote nothing)."""
        try:
            return json.loads((self.out / RESULT_FILE).read_text())
        except (OSError, ValueError):
            return None

    def log_tail(self, lines: int = 3) -> str:
        try:
            text = (self.out / LOG_FILE).read_text(errors="replace")
        except OSError:
            return ""
        return " | ".join(line.strip() for line in text.splitlines()[-lines:])

    def stop(self, timeout_s: float = 30.0) -> int:
        """Ask the run to stop (it saves a resumable state first) and wait; kill on timeout.
        Returns the exit status."""
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)
            try:
                self._process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._log.close()
        return self._process.returncode
