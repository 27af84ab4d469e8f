import cv2
import numpy as np
import pytest
import torch

from lumde_ros.checkpoint import untrained_student
from lumde_ros.errors import InferenceError, ModelLoadError
from lumde_ros.inference import Predictor, limit_threads, metric_depth, resolve_scale


@pytest.fixture(scope="module")
def predictor():
    return Predictor(untrained_student(), threads=1)


def test_predicts_network_or_requested_resolution(predictor, rgb):
    scale = resolve_scale(predictor.checkpoint, "checkpoint", 1.0)
    depth = predictor.predict(rgb, scale)
    assert depth.shape == (256, 320) and depth.dtype == np.float32
    assert predictor.predict(rgb, scale, out_size=(64, 48)).shape == (48, 64)


def test_fixed_scale_multiplies_depth(predictor, rgb):
    one = predictor.predict(rgb, resolve_scale(predictor.checkpoint, "fixed", 1.0))
    three = predictor.predict(rgb, resolve_scale(predictor.checkpoint, "fixed", 3.0))
    np.testing.assert_allclose(three, 3 * one, rtol=1e-6)


def test_scale_modes_report_metric():
    ckpt = untrained_student()
    assert resolve_scale(ckpt, "checkpoint", 5.0).metric is False
    assert resolve_scale(ckpt, "fixed", 5.0).value == 5.0
    with pytest.raises(ValueError):
        resolve_scale(ckpt, "magic", 1.0)


def test_range_and_non_finite_become_nan():
    depth = np.array([[0.05, 1.0, np.inf], [np.nan, 30.0, 2.0]], np.float32)
    out = metric_depth(depth, 1.0, 0.1, 20.0)
    assert np.isnan(out).tolist() == [[True, False, True], [True, True, False]]
    with pytest.raises(InferenceError, match="no finite depth"):
        metric_depth(np.full((2, 2), np.nan, np.float32), 1.0, 0.1, 20.0)


def test_input_size_must_fit_the_architecture():
    with pytest.raises(ModelLoadError, match="multiples of 32"):
        Predictor(untrained_student(), input_width=300, input_height=256)
    p = Predictor(untrained_student(), input_width=192, input_height=128)
    assert (p.width, p.height) == (192, 128)


def test_missing_cuda_is_a_clear_error():
    import torch
    if torch.cuda.is_available():
        pytest.skip("a CUDA device exists here")
    with pytest.raises(ModelLoadError, match="cpu"):
        Predictor(untrained_student(), device="cuda")


def test_a_misspelt_device_is_a_clear_error():
    with pytest.raises(ModelLoadError, match="'gpu0' is not a device name: use cpu, cuda"):
        Predictor(untrained_student(), device="gpu0")


def test_a_thread_limit_holds_for_opencv_as_for_torch():
    """The node's and the trainer's `threads` must bound OpenCV's pool too (it resizes every
    frame and tracks image motion), or a fine-tune beside the depth node takes every core."""
    before = torch.get_num_threads(), cv2.getNumThreads()
    try:
        limit_threads(1)
        assert (torch.get_num_threads(), cv2.getNumThreads()) == (1, 1)
        limit_threads(0)  # 0 leaves both as they are
        assert (torch.get_num_threads(), cv2.getNumThreads()) == (1, 1)
    finally:
        torch.set_num_threads(before[0])
        cv2.setNumThreads(before[1])
