import math

import numpy as np
import pytest
from bags import copy_bag

from lumde_ros.checkpoint import save_checkpoint, untrained_student
from lumde_ros.errors import BagError
from lumde_ros.evaluation import (CAMERA_HEIGHT, CONSTANT, MIDDLEBURY, MetricAccumulator,
                                  ProtocolMetrics, evaluate_recording, format_table,
                                  image_metrics, middlebury_motorcycle)


def test_hand_computed_values():
    gt = np.array([1.0, 2.0, 4.0, np.nan, 50.0])
    pred = np.array([1.0, 2.5, 2.0, 3.0, 9.0])
    m = image_metrics(pred, gt, 0.1, 10.0, median_scaling=False)
    # valid pixels: gt 1, 2, 4 with pred 1, 2.5, 2
    assert m["abs_rel"] == pytest.approx((0 + 0.25 + 0.5) / 3)
    assert m["sq_rel"] == pytest.approx((0 + 0.25 / 2 + 4 / 4) / 3)
    assert m["rmse"] == pytest.approx(math.sqrt((0 + 0.25 + 4) / 3))
    assert m["rmse_log"] == pytest.approx(math.sqrt((0 + math.log(1.25) ** 2
                                                     + math.log(2) ** 2) / 3))
    assert (m["a1"], m["a2"], m["a3"]) == pytest.approx((1 / 3, 2 / 3, 2 / 3))


def test_median_scaling_removes_a_global_scale():
    gt = np.random.default_rng(0).uniform(1, 8, (20, 30))
    m = image_metrics(gt * 3.7, gt, 0.1, 10.0, median_scaling=True)
    assert m["abs_rel"] == pytest.approx(0.0, abs=1e-12) and m["a1"] == 1.0
    unscaled = image_metrics(gt * 3.7, gt, 0.1, 10.0, median_scaling=False)
    assert unscaled["a1"] < 0.1


def test_predictions_are_clipped_and_empty_images_skipped():
    gt = np.array([2.0, 2.0])
    assert image_metrics(np.array([100.0, 2.0]), gt, 0.1, 10.0, False)["rmse"] == \
        pytest.approx(math.sqrt(64 / 2))
    acc = MetricAccumulator(0.1, 10.0, False)
    acc.add(np.ones(3), np.full(3, np.nan))
    acc.add(np.ones(3), np.ones(3))
    assert acc.frames == 1 and acc.result()["abs_rel"] == 0.0
    assert "abs_rel" in format_table({"model": acc.result()})


def test_a_recording_without_ground_truth_is_refused_not_scored_nan(tmp_path, sim_bag):
    bare = copy_bag(sim_bag, tmp_path / "bare", drop={"/camera/depth/ground_truth"})
    with pytest.raises(BagError, match="no camera frame with ground-truth depth.*none found"):
        evaluate_recording(bare, None, 0.1, 10.0)


def test_every_result_carries_the_constant_baseline_on_the_same_pixels():
    rng = np.random.default_rng(1)
    metrics = ProtocolMetrics(0.1, 10.0)
    expected = MetricAccumulator(0.1, 10.0, False)
    for _ in range(3):
        gt = rng.uniform(0.5, 8.0, (12, 16))
        gt[0, :4] = np.nan
        pred = gt * rng.uniform(0.8, 1.2, gt.shape)
        pred[5, 5] = np.nan                      # the model's holes are the baseline's too
        metrics.add(pred, gt)
        keep = np.isfinite(pred) & np.isfinite(gt)
        expected.add(np.where(keep, np.median(gt[keep]), np.nan), gt)
    results = metrics.results()
    assert results[CONSTANT] == pytest.approx(expected.result())
    assert results["median_scaled"]["a1"] > results[CONSTANT]["a1"] + 0.3


def test_the_camera_height_protocol_scores_the_prediction_times_the_floor_scale():
    rng = np.random.default_rng(2)
    metrics = ProtocolMetrics(0.1, 10.0)
    gt = rng.uniform(0.5, 8.0, (12, 16))
    metrics.add(gt / 3.0, gt, floor_scale=3.0)
    results = metrics.results()
    assert results[CAMERA_HEIGHT]["a1"] == 1.0 and results["unscaled"]["a1"] < 0.2
    without = ProtocolMetrics(0.1, 10.0)
    without.add(gt / 3.0, gt)
    assert CAMERA_HEIGHT not in without.results()


def test_the_camera_height_line_falls_back_to_the_model_s_scale_until_a_floor_is_seen(
        tmp_path, floor_bag):
    """Odometry and the camera's mount place the camera over the floor, so there is a
    camera-height line. An untrained student's depth is a wall facing the camera, with no level
    plane in it: each frame is refused, with the reason, and served at the model's own scale,
    as the node would. Without tf there is no height, and no such line."""
    flat = save_checkpoint(untrained_student(), tmp_path / "flat.pt")
    result = evaluate_recording(floor_bag, flat, 0.1, 10.0, threads=1)
    assert result["floor_refused"] == result["floor_fits"] == 3  # frames 1, 4 and 7 of 8
    assert result["floor_last_refusal"].startswith("no floor in view")
    assert result[CAMERA_HEIGHT] == result["unscaled"]
    no_tf = copy_bag(floor_bag, tmp_path / "no_tf", drop={"/odom", "/tf", "/tf_static"})
    assert CAMERA_HEIGHT not in evaluate_recording(no_tf, flat, 0.1, 10.0, threads=1)


def test_the_middlebury_photograph_has_metric_depth_from_its_calibration():
    rgb, depth = middlebury_motorcycle()
    assert rgb.shape == (500, 741, 3) and depth.shape == (500, 741)
    valid = depth[np.isfinite(depth)]
    assert valid.size > 0.9 * depth.size
    # a motorcycle a couple of metres in front of a wall: the disparity range 7-270/4 px
    assert 1.5 < np.percentile(valid, 1) and np.percentile(valid, 99) < 10.0
    assert np.median(valid) == pytest.approx(
        MIDDLEBURY["baseline_m"] * MIDDLEBURY["focal_px"]
        / (np.nanmedian(middlebury_disparity()) + MIDDLEBURY["doffs_px"]), rel=0.02)


def middlebury_disparity() -> np.ndarray:
    from skimage.data import stereo_motorcycle
    disparity = stereo_motorcycle()[2].astype(np.float64)
    return np.where(np.isfinite(disparity), disparity, np.nan)
