"""log.csv and training.png: written so a stopped run resumes and a person can read them."""
from __future__ import annotations

import math
import os
import stat

import cv2
import numpy as np

from lumde_ros.training.log import PLOT_FILE, RunLog


def test_rows_missing_a_term_and_a_resume_that_drops_lost_rows(tmp_path):
    log = RunLog(tmp_path, "test", total_steps=6, every=1, resume_step=0)
    log.record(1, {"loss": math.nan, "pixel": 1.0}, 0.1, 1)   # a term non-finite all window
    log.record(2, {"loss": 0.5, "pixel": 0.9}, 0.1, 1)
    log.record(3, {"loss": 0.4, "pixel": 0.8, "gan_d": 2.0}, 0.1, 1)  # a new term
    log.record(4, {"loss": 0.3, "pixel": 0.7, "gan_d": 1.9}, 0.1, 1)
    resumed = RunLog(tmp_path, "test", total_steps=6, every=1, resume_step=3)
    assert [r["step"] for r in resumed.rows] == [1, 2, 3]     # step 4 came after the checkpoint
    assert math.isnan(resumed.rows[0]["loss"]) and math.isnan(resumed.rows[1]["gan_d"])
    assert resumed.rows[2] == {"step": 3, "lr": 0.1, "skipped": 1, "s_per_step":
                               resumed.rows[2]["s_per_step"], "pixel": 0.8, "loss": 0.4,
                               "gan_d": 2.0}
    resumed.record(4, {"loss": 0.2, "pixel": 0.6, "gan_d": 1.8}, 0.1, 1)
    again = RunLog(tmp_path, "test", total_steps=6, every=1, resume_step=4)
    assert [r["loss"] for r in again.rows][1:] == [0.5, 0.4, 0.2]


def test_plot_is_a_readable_png_others_may_read(tmp_path):
    log = RunLog(tmp_path, "test", total_steps=2, every=1, resume_step=0)
    log.record(1, {"loss": 1.0}, 0.1, 0)
    log.record(2, {"loss": 0.5}, 0.1, 0)
    rgb = np.zeros((48, 64, 3), np.uint8)
    path = log.plot([(rgb, np.linspace(0, 1, 48 * 64).reshape(48, 64))])
    assert path.name == PLOT_FILE and cv2.imread(str(path)).shape[0] == 480
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # not mkstemp's private 0600
