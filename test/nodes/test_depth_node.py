"""The depth node in this process, over DDS: outputs, geometry, threading, QoS, hot swap."""
from __future__ import annotations

import re
import time

import numpy as np
import pytest
from builtin_interfaces.msg import Time as TimeMsg
from diagnostic_msgs.msg import DiagnosticStatus
from rcl_interfaces.srv import GetParameters, SetParameters
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from lumde_ros import export
from lumde_ros.checkpoint import save_checkpoint, untrained_student
from lumde_ros.config import node_defaults
from lumde_ros.errors import EncodingError
from lumde_ros.inference import default_model, shipped_weights
from lumde_ros.nodes.depth_node import PARAMS, diagnostic_name, problem_kind
from lumde_ros.ros.camera_info import camera_intrinsics, pinhole_camera_info
from lumde_ros.ros.image import image_to_depth, image_to_rgb, rgb_to_image
from lumde_ros.ros.pointcloud import cloud_to_arrays

from node_graph import CAMERA, wait_until

# The default model's input size: what depth_resolution "network" publishes.
NETWORK = (default_model()[0].input_width, default_model()[0].input_height)


def _matching(msgs, header):
    return [m for m in msgs if m.header.stamp == header.stamp]


def _backproject_like_a_consumer(depth: np.ndarray, info: CameraInfo) -> np.ndarray:
    """What depth_image_proc does with depth/image + depth/camera_info (P matrix)."""
    fx, cx, fy, cy = info.p[0], info.p[2], info.p[5], info.p[6]
    v, u = np.mgrid[:depth.shape[0], :depth.shape[1]]
    return np.stack([(u - cx) / fx * depth, (v - cy) / fy * depth, depth], axis=-1)


@pytest.mark.parametrize("resolution, size", [("network", NETWORK), ("input", (640, 480))])
def test_outputs_agree_with_each_other(graph_factory, frames, resolution, size):
    g = graph_factory(depth_resolution=resolution)
    header = g.send(frames[0])
    depth_msg, info, cloud, colored = (g.output(t, header) for t in (
        "depth/image", "depth/camera_info", "points", "depth/colored"))
    for msg in (depth_msg, info, cloud, colored):
        assert msg.header.frame_id == "camera_optical_frame"
    assert depth_msg.encoding == "32FC1" and colored.encoding == "rgb8"
    assert (depth_msg.width, depth_msg.height) == size == (info.width, info.height)
    assert (cloud.width, cloud.height) == size and not cloud.is_dense
    assert camera_intrinsics(info) == CAMERA.resized(*size)
    depth = image_to_depth(depth_msg)
    assert np.isfinite(depth).mean() > 0.99 and np.nanmin(depth) >= 0.1
    xyz, rgb = cloud_to_arrays(cloud)
    np.testing.assert_allclose(xyz, _backproject_like_a_consumer(depth, info), rtol=1e-5,
                               atol=1e-6)
    assert rgb is not None and rgb.std() > 10  # real image colours, not a constant


def test_diagnostics_report_model_rate_and_latency(graph_factory, frames):
    g = graph_factory()
    for rgb in frames:
        g.send(rgb)
    wait_until(lambda: int(g.diagnostics().get("processed_frames", 0)) >= len(frames),
               what="diagnostics")
    d = g.diagnostics()
    # Without model_path the node serves the student the package ships: trained and metric.
    assert d["model_path"] == str(shipped_weights("student")) and "student" in d["model"]
    assert d["backend"] in ("torch", "onnxruntime", "openvino") and d["metric"] == "True"
    assert d["scale_source"] == "odometry" and "metric (odometry)" in d["model"]
    assert float(d["latency_p50_ms"]) > 0 and float(d["forward_p50_ms"]) > 0
    assert d["input_qos"] == "reliable" and d["intrinsics"] == "camera_info"


def test_always_the_newest_frame_and_drops_counted(graph_factory, frames):
    g = graph_factory(backend="torch")  # the slowest engine, so a burst must outrun it
    g.send(frames[0])
    headers = [g.player.publish(frames[k % len(frames)]) for k in range(30)]
    wait_until(lambda: _matching(g.recorder.received("depth/image"), headers[-1]),
               what="the newest frame")
    processed = {m.header.stamp.nanosec for m in g.recorder.received("depth/image")}
    assert len(processed) < 31  # frames inference had no time for were skipped, not queued
    wait_until(lambda: int(g.diagnostics().get("dropped_frames", 0)) > 0, what="drop count")


def test_a_burst_of_frames_is_served_or_counted_never_lost_unseen(graph_factory, frames):
    """Cameras deliver frames back to back when their driver catches up; every one must be
    processed or reported dropped (by the node, or by the middleware: a sequence gap)."""
    g = graph_factory(backend="torch")
    g.send(frames[0])
    for _ in range(4):
        for k in range(3):
            g.player.publish(frames[k])
        time.sleep(0.5)

    def accounted() -> int:
        d = g.diagnostics()
        return int(d.get("processed_frames", 0)) + int(d.get("dropped_frames", 0))
    wait_until(lambda: accounted() >= 13, what="every frame processed or counted", timeout_s=10)
    assert accounted() == 13


def test_best_effort_camera_is_matched(graph_factory, frames):
    g = graph_factory(publisher_qos="best_effort")
    assert g.node._image_sub.reliability == "best_effort"
    for _ in range(50):  # best effort may lose frames: send until one arrives
        g.player.publish(frames[0])
        try:
            wait_until(lambda: g.recorder.received("depth/image"), timeout_s=0.2)
            break
        except AssertionError:
            continue
    assert g.recorder.received("depth/image")


def test_compressed_transport(graph_factory, frames):
    import cv2
    g = graph_factory(image_transport="compressed")
    pub = g.player.create_publisher(CompressedImage, "image/compressed", 1)
    wait_until(lambda: pub.get_subscription_count() > 0, what="compressed subscription")
    ok, jpeg = cv2.imencode(".jpg", frames[0][:, :, ::-1])
    msg = CompressedImage(format="jpeg", data=jpeg.tobytes())
    msg.header.stamp = g.player.get_clock().now().to_msg()
    g.player.info_pub.publish(CameraInfo(header=msg.header, width=640, height=480,
                                         k=[500.0, 0, 320, 0, 500, 240, 0, 0, 1]))
    pub.publish(msg)
    wait_until(lambda: g.recorder.received("depth/image"), what="depth from jpeg")
    corrupt = CompressedImage(format="jpeg", data=jpeg.tobytes()[:40] + b"\x00" * 200)
    pub.publish(corrupt)
    wait_until(lambda: int(g.diagnostics().get("skipped_frames", 0)) == 1, what="skip")
    assert "cannot decode compressed image" in g.diagnostics()["last_error"]
    pub.publish(msg)
    wait_until(lambda: len(g.recorder.received("depth/image")) == 2, what="recovery")


def test_without_camera_info_uses_the_fallback_fov(graph_factory, frames):
    g = graph_factory(fallback_hfov_deg=90.0)
    header = g.player.get_clock().now().to_msg()
    from lumde_ros.ros.image import rgb_to_image
    from std_msgs.msg import Header
    g.player.image_pub.publish(rgb_to_image(frames[0], Header(stamp=header, frame_id="cam")))
    wait_until(lambda: g.recorder.received("depth/camera_info"), what="fallback camera_info")
    info = g.recorder.received("depth/camera_info")[0]
    assert info.k[0] == pytest.approx(NETWORK[0] / 2)  # at 90 degrees: half the width
    wait_until(lambda: g.diagnostics().get("intrinsics") == "fallback_hfov_deg", what="diag")


def test_camera_info_problems(graph_factory, frames):
    g = graph_factory()
    good = g.output("depth/camera_info", g.send(frames[0]))
    bad = CameraInfo(width=640, height=480, k=[0.0, 0, 320, 0, 0.0, 240, 0, 0, 1])
    header = g.send(frames[1], info=bad)
    kept = g.output("depth/camera_info", header)
    assert list(kept.k) == list(good.k)  # last good intrinsics kept
    other_aspect = CameraInfo(width=640, height=360, k=[500.0, 0, 320, 0, 500, 180, 0, 0, 1])
    g.player.info_pub.publish(other_aspect)
    wait_until(lambda: g.node._camera is not None and g.node._camera.height == 360)
    header = g.send(frames[2], info=other_aspect)
    g.send(frames[3], info=other_aspect)  # processed after `header`'s frame was complete
    assert not _matching(g.recorder.received("depth/camera_info"), header)  # depth only
    assert not _matching(g.recorder.received("points"), header)
    half = CameraInfo(width=320, height=240, k=[250.0, 0, 159.75, 0, 250, 119.75, 0, 0, 1])
    g.player.info_pub.publish(half)
    wait_until(lambda: g.node._camera is not None and g.node._camera.height == 240)
    header = g.send(frames[3], info=half)
    scaled = g.output("depth/camera_info", header)
    assert scaled.k[0] == pytest.approx(250.0 * 2 * NETWORK[0] / 640)


def test_frames_on_another_clock_or_without_frame_id_are_served_and_explained(
        graph_factory, frames, capfd):
    g = graph_factory()
    header = Header(stamp=TimeMsg(sec=1000), frame_id="")  # a driver's time since boot
    g.player.info_pub.publish(pinhole_camera_info(CAMERA, header))
    g.player.image_pub.publish(rgb_to_image(frames[0], header))
    assert g.output("depth/image", header).header == header
    wait_until(lambda: int(g.diagnostics().get("processed_frames", 0)) >= 1, what="diagnostics")
    assert g.diagnostics()["latency_p50_ms"] == "nan"  # not 1.8e12 ms
    logged = capfd.readouterr().err
    assert "empty header.frame_id" in logged and "from this node's clock" in logged


def _status(g) -> DiagnosticStatus | None:
    """The depth node's newest status in /diagnostics."""
    for msg in reversed(g.recorder.received("diagnostics")):
        for status in msg.status:
            if status.name == diagnostic_name(g.fqn):
                return status
    return None


def test_diagnostics_warn_while_frames_are_skipped_and_recover(graph_factory, frames):
    g = graph_factory(diagnostics_period_s=0.2)
    g.send(frames[0])
    bad = rgb_to_image(frames[1], Header(frame_id="camera"))
    bad.encoding = "weird8"
    g.player.image_pub.publish(bad)

    def status() -> DiagnosticStatus | None:
        return _status(g)
    wait_until(lambda: "skipped" in status().message, what="skipped frames reported")
    assert status().level == DiagnosticStatus.WARN
    assert re.search(r"1 of \d frames skipped since the last report", status().message)
    assert "unsupported encoding 'weird8'" in status().message
    g.send(frames[2])
    wait_until(lambda: status().level == DiagnosticStatus.OK, what="OK again")


def _refusal_kind(**fields: object) -> str:
    with pytest.raises(EncodingError) as refused:
        image_to_rgb(Image(**{"width": 64, "height": 48, "encoding": "rgb8", "step": 192,
                              "data": bytes(192 * 48), **fields}), 1 << 24)
    return problem_kind(refused.value)


def test_one_recurring_problem_is_one_throttling_key_whatever_the_publisher_sends():
    kinds = {_refusal_kind(encoding=e) for e in ("16UC1", "weird", "z" * 100_000, "it's")}
    assert len(kinds) == 1 and len(kinds.pop()) < 100
    assert _refusal_kind(width=0) != _refusal_kind(encoding="16UC1")  # another problem


def _set(g, **values):
    client = g.player.create_client(SetParameters, f"{g.fqn}/set_parameters")
    assert client.wait_for_service(timeout_sec=10)
    future = client.call_async(SetParameters.Request(
        parameters=[Parameter(k, value=v).to_parameter_msg() for k, v in values.items()]))
    wait_until(future.done, what="set_parameters")
    return future.result().results[0]


def _get(g, name):
    client = g.player.create_client(GetParameters, f"{g.fqn}/get_parameters")
    assert client.wait_for_service(timeout_sec=10)
    future = client.call_async(GetParameters.Request(names=[name]))
    wait_until(future.done, what="get_parameters")
    return future.result().values[0].string_value


def test_hot_swap_accepts_a_good_model_and_refuses_a_bad_one(graph_factory, frames,
                                                             student_path, tmp_path):
    g = graph_factory()
    h0 = g.send(frames[0])
    d0 = image_to_depth(g.output("depth/image", h0))
    result = _set(g, model_path=str(student_path))
    assert result.successful, result.reason
    h1 = g.send(frames[0])
    d1 = image_to_depth(g.output("depth/image", h1))
    assert d0.shape != d1.shape or not np.allclose(d0, d1, equal_nan=True)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(student_path.read_bytes()[:1000])
    result = _set(g, model_path=str(corrupt))
    assert not result.successful and "corrupt.pt" in result.reason
    assert _get(g, "model_path") == str(student_path)
    h2 = g.send(frames[0])
    d2 = image_to_depth(g.output("depth/image", h2))
    np.testing.assert_allclose(d2, d1)  # the old model keeps serving
    wait_until(lambda: g.diagnostics().get("model_path") == str(student_path))


def test_scale_and_range_change_at_runtime(graph_factory, frames):
    g = graph_factory()
    h0 = g.send(frames[0])
    d0 = image_to_depth(g.output("depth/image", h0))
    # Integers for float parameters, as `ros2 param set /depth_node depth_scale 2` sends them.
    assert _set(g, scale_mode="fixed", depth_scale=2, max_depth_m=100).successful
    assert g.node.get_parameter("depth_scale").value == 2.0
    h1 = g.send(frames[0])
    d1 = image_to_depth(g.output("depth/image", h1))
    np.testing.assert_allclose(d1, 2 * d0, rtol=1e-5)
    wait_until(lambda: g.diagnostics().get("metric") == "True", what="metric in diagnostics")
    refused = _set(g, min_depth_m=200.0)
    assert not refused.successful and "min_depth_m" in refused.reason
    refused = _set(g, scale_mode="guess")
    assert not refused.successful and "scale_mode" in refused.reason
    assert not _set(g, threads=1).successful  # read-only: needs a restart


def test_integers_for_float_parameters_start_the_node(graph_factory, frames):
    """`-p camera_height_m:=1` or `max_depth_m: 20` in a params file arrive as integers."""
    g = graph_factory(camera_height_m=1, camera_tilt_deg=5, max_depth_m=20)
    assert isinstance(g.node.get_parameter("camera_height_m").value, float)
    assert g.node.get_parameter("max_depth_m").type_.name == "DOUBLE"
    g.send(frames[0])


def test_non_finite_network_output_skips_frames_and_recovers(graph_factory, frames,
                                                             student_path):
    import torch
    g = graph_factory(backend="torch")
    g.send(frames[0])
    with torch.no_grad():  # a bit flip in memory: every weight of the served model goes NaN
        for p in g.node._served.predictor._engine.model.parameters():
            p.fill_(float("nan"))
    g.player.publish(frames[1])
    wait_until(lambda: int(g.diagnostics().get("skipped_frames", 0)) >= 1, what="skip count")
    assert "InferenceError" in g.diagnostics()["last_error"]
    assert _set(g, model_path=str(student_path)).successful
    g.send(frames[2])


def test_every_parameter_is_declared_described_and_in_the_yaml(graph_factory):
    g = graph_factory()
    builtin = {"use_sim_time", "start_type_description_service"}
    declared = {name for name in g.node._parameters if name not in builtin}
    assert declared == set(node_defaults("depth.yaml")) == {s.name for s in PARAMS}
    for spec in PARAMS:
        assert g.node.describe_parameter(spec.name).description == spec.description != ""


def _plane_checkpoint(path, depth_m: float):
    """A student whose every output is `depth_m`: zero head weights, bias at the disparity
    giving that depth, so the node's outputs can be checked against a known plane."""
    import torch
    from lumde_ros.checkpoint import save_checkpoint, untrained_student
    ckpt = untrained_student()
    near, far = ckpt.arch_config["near_m"], ckpt.arch_config["far_m"]
    disp = (1 / depth_m - 1 / far) / (1 / near - 1 / far)
    for name, tensor in ckpt.state_dict.items():
        if name.startswith("heads."):
            tensor.zero_()
            if name.endswith("bias"):
                tensor.fill_(float(torch.logit(torch.tensor(disp, dtype=torch.float64))))
    return save_checkpoint(ckpt, path)


@pytest.mark.parametrize("resolution, size", [("network", (320, 256)), ("input", (640, 480))])
def test_fronto_parallel_plane_is_back_projected_exactly(graph_factory, frames, tmp_path,
                                                         resolution, size):
    plane_m = 2.5
    g = graph_factory(model_path=str(_plane_checkpoint(tmp_path / "plane.pt", plane_m)),
                      depth_resolution=resolution, points_stride=3)
    header = g.send(frames[0])
    depth = image_to_depth(g.output("depth/image", header))
    # 1e-3: OpenVINO's CPU kernels (auto may pick them) approximate exp in the sigmoid
    np.testing.assert_allclose(depth, plane_m, rtol=1e-3)
    xyz, _ = cloud_to_arrays(g.output("points", header))
    camera = CAMERA.resized(*size)
    v, u = np.mgrid[0:size[1]:3, 0:size[0]:3]
    expected = np.stack([(u - camera.cx) / camera.fx * plane_m,
                         (v - camera.cy) / camera.fy * plane_m, np.full(u.shape, plane_m)], -1)
    np.testing.assert_allclose(xyz, expected, rtol=1e-3, atol=1e-5)


def test_camera_height_scales_depth_so_the_floor_lies_that_far_below(graph_factory, frames,
                                                                     tmp_path):
    """A camera looking straight down sees only floor: the plane model's 2.5 units become
    the camera's height. Looking level at the same plane there is no floor: the model's own
    scale is served, and diagnostics say why."""
    g = graph_factory(model_path=str(_plane_checkpoint(tmp_path / "plane.pt", 2.5)),
                      scale_mode="camera_height", camera_height_m=0.8, camera_tilt_deg=90.0)
    depth = image_to_depth(g.output("depth/image", g.send(frames[0])))
    np.testing.assert_allclose(depth, 0.8, rtol=1e-3)
    wait_until(lambda: g.diagnostics().get("metric") == "True", what="metric in diagnostics")
    assert float(g.diagnostics()["depth_scale"]) == pytest.approx(0.8 / 2.5, rel=1e-3)
    assert _set(g, camera_tilt_deg=0.0).successful
    depth = image_to_depth(g.output("depth/image", g.send(frames[1])))
    np.testing.assert_allclose(depth, 2.5, rtol=1e-3)
    wait_until(lambda: "no floor found yet" in _status(g).message,
               what="the missing floor in diagnostics")
    assert _status(g).level == DiagnosticStatus.WARN
    refused = _set(g, camera_height_m=0.0)
    assert not refused.successful and "camera_height_m" in refused.reason


@pytest.mark.parametrize("backend", ["torch", "onnxruntime", "openvino"])
def test_every_backend_serves_over_dds(graph_factory, frames, backend):
    g = graph_factory(backend=backend)
    header = g.send(frames[0])
    depth = image_to_depth(g.output("depth/image", header))
    assert np.isfinite(depth).mean() > 0.99
    wait_until(lambda: g.diagnostics().get("backend") == backend, what="backend in diagnostics")


def test_hot_swap_between_pt_and_onnx_and_refuse_a_corrupt_onnx(graph_factory, frames,
                                                                student_path, tmp_path):
    from lumde_ros.checkpoint import load_checkpoint
    from lumde_ros.export import export_onnx
    onnx_path = tmp_path / "student.onnx"
    export_onnx(load_checkpoint(student_path), onnx_path, 320, 256)
    g = graph_factory(backend="onnxruntime", model_path=str(student_path))
    d_pt = image_to_depth(g.output("depth/image", g.send(frames[0])))
    assert _set(g, model_path=str(onnx_path)).successful
    d_onnx = image_to_depth(g.output("depth/image", g.send(frames[0])))
    np.testing.assert_allclose(d_onnx, d_pt, rtol=2e-3)
    wait_until(lambda: g.diagnostics().get("model_path") == str(onnx_path), what="onnx served")
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(onnx_path.read_bytes()[:5000])
    result = _set(g, model_path=str(corrupt))
    assert not result.successful and "corrupt.onnx" in result.reason
    np.testing.assert_allclose(image_to_depth(g.output("depth/image", g.send(frames[0]))),
                               d_onnx)  # the old model keeps serving
    assert _set(g, model_path=str(student_path)).successful  # and back to the .pt
    g.send(frames[1])


def test_a_swap_that_fails_in_an_unexpected_way_is_still_refused(graph_factory, frames,
                                                                 tmp_path, monkeypatch):
    g = graph_factory(backend="onnxruntime")
    before = image_to_depth(g.output("depth/image", g.send(frames[0])))
    fresh = save_checkpoint(untrained_student(seed=23), tmp_path / "fresh.pt")  # not cached

    def broken_exporter(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the exporter failed")
    monkeypatch.setattr(export, "export_onnx", broken_exporter)
    result = _set(g, model_path=str(fresh))
    assert not result.successful and "onnxruntime" in result.reason
    assert "the exporter failed" in result.reason
    np.testing.assert_allclose(image_to_depth(g.output("depth/image", g.send(frames[0]))),
                               before)


def test_a_model_that_takes_the_floor_prior_is_told_the_cameras_mount(graph_factory, frames,
                                                                       tmp_path):
    """Until camera_height_m is set the model is served with the prior unknown, and
    diagnostics say so; set, the prior reaches the network and moves its depth."""
    from lumde_ros.checkpoint import checkpoint_from_net, resolved_arch_config
    from lumde_ros.models import build_depth_net
    config = dict(resolved_arch_config("student"), floor_prior=True)
    net = build_depth_net("student", config)
    path = save_checkpoint(checkpoint_from_net(net, "student", config, 320, 256, metric=True,
                                               provenance={"source": "test"}),
                           tmp_path / "prior.pt")
    g = graph_factory(model_path=str(path), diagnostics_period_s=0.2)
    unknown = image_to_depth(g.output("depth/image", g.send(frames[0])))
    wait_until(lambda: g.diagnostics().get("floor_prior") == "unknown",
               what="the unknown prior in diagnostics")
    assert _set(g, camera_height_m=0.5, camera_tilt_deg=10.0).successful
    told = image_to_depth(g.output("depth/image", g.send(frames[0])))
    assert not np.allclose(told, unknown, equal_nan=True)
    wait_until(lambda: g.diagnostics().get("floor_prior") == "camera_height_m",
               what="the mount in diagnostics")
