"""The installed `depth_node` console script as its own process with a params file, remapped
as depth.launch.py remaps it: outputs over DDS, every kind of bad input, clean shutdown."""
from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from node_graph import CAMERA, wait_until
from rclpy.executors import MultiThreadedExecutor
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from lumde_ros.inference import default_model
from lumde_ros.nodes.demo import CameraPlayer, OutputRecorder
from lumde_ros.nodes.entry import spin
from lumde_ros.nodes.qos import profile
from lumde_ros.ros.image import rgb_to_image

NS = "/proc"
CONSOLE_SCRIPT = Path(sys.executable).parent / "depth_node"


def _start(tmp_path: Path, params: dict, *remaps: str) -> tuple[subprocess.Popen, Path]:
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump({f"{NS}/depth_node": {"ros__parameters": params}}))
    log = tmp_path / "node.log"
    cmd = [str(CONSOLE_SCRIPT), "--ros-args", "--params-file", str(params_file),
           "-r", f"__ns:={NS}", *(arg for r in remaps for arg in ("-r", r))]
    return subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT), log


@pytest.fixture()
def process_graph(ros, tmp_path):
    # max_depth_m as a params file often has it: an integer for a float parameter
    process, log = _start(tmp_path, {"points_stride": 2, "input_qos": "reliable",
                                     "max_input_pixels": 400_000, "diagnostics_period_s": 0.2,
                                     "max_depth_m": 20},
                          "image:=camera/image_raw", "camera_info:=camera/camera_info")
    player = CameraPlayer(CAMERA, profile("reliable", 1), namespace=NS,
                          image_topic="camera/image_raw", info_topic="camera/camera_info")
    recorder = OutputRecorder(namespace=NS)
    executor = MultiThreadedExecutor(num_threads=2)
    executor.add_node(player)
    executor.add_node(recorder)
    thread = threading.Thread(target=spin, args=(executor,), daemon=True)
    thread.start()
    try:
        wait_until(lambda: player.image_pub.get_subscription_count() > 0
                   and recorder.count_publishers(f"{NS}/depth/image") > 0, 60.0,
                   what=f"the depth_node process (log: {log.read_text()})")
        yield process, log, player, recorder
    finally:
        if process.poll() is None:
            process.kill()
        executor.shutdown()
        thread.join(timeout=10)
        player.destroy_node()
        recorder.destroy_node()


def test_serves_bad_input_and_shuts_down_cleanly(process_graph, tmp_path):
    process, log, player, recorder = process_graph
    rgb = np.random.default_rng(0).integers(0, 256, (480, 640, 3), np.uint8)

    def good_frame_served() -> None:
        # Sent again every 2 s until one is served: on a loaded machine discovery may not
        # yet have matched every endpoint when the first is sent, and that one is lost.
        stamps: list = []
        sent = [0.0]

        def served() -> bool:
            if time.monotonic() - sent[0] > 2.0:
                stamps.append(player.publish(rgb).stamp)
                sent[0] = time.monotonic()
            return any(m.header.stamp in stamps for m in recorder.received("depth/image"))

        wait_until(served, 30.0,
                   what=f"a depth image after bad input; node log:\n{log.read_text()}")

    good_frame_served()
    wait_until(lambda: recorder.received("points"), what="points")
    cloud = recorder.received("points")[-1]
    network = default_model()[0]
    # points_stride 2 from the params file, on the default model's network resolution
    assert (cloud.width, cloud.height) == (network.input_width // 2, network.input_height // 2)

    def raw(**fields) -> Image:
        msg = rgb_to_image(rgb, Header(stamp=player.get_clock().now().to_msg()))
        for key, value in fields.items():
            setattr(msg, key, value)
        return msg

    big = np.zeros((1000, 1000, 3), np.uint8)
    bad_images = [raw(encoding="weird8"), raw(step=100), raw(data=bytes(rgb.tobytes()[:1000])),
                  raw(width=0, height=0, step=0, data=b""), rgb_to_image(big, Header())]
    def skipped() -> int:
        return int(recorder.last_diagnostics(f"{NS}/depth_node").get("skipped_frames", -1))

    for count, msg in enumerate(bad_images, start=1):
        player.image_pub.publish(msg)  # alone in flight, so keep-last-1 cannot replace it
        wait_until(lambda: skipped() == count, what=f"bad input {count} skipped")
        good_frame_served()
    for info, line in ((CameraInfo(width=640, height=480, k=[0.0] * 9), "ignoring CameraInfo"),
                       (CameraInfo(width=640, height=360, k=[400.0, 0, 320, 0, 400, 180, 0, 0, 1]),
                        "another aspect ratio")):
        def send_pair() -> bool:
            # The image may be processed before the node takes the CameraInfo: resend both.
            player.info_pub.publish(info)
            header = Header(stamp=player.get_clock().now().to_msg())
            player.image_pub.publish(rgb_to_image(rgb, header))
            time.sleep(0.2)
            return line in log.read_text()

        wait_until(send_pair, what=line)
        good_frame_served()  # depth still flows
    assert skipped() == len(bad_images)

    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=20) == 0
    text = log.read_text()
    for expected in ("unsupported encoding 'weird8'", "step 100 is smaller", "truncated",
                     "zero-sized", "max_input_pixels", "ignoring CameraInfo",
                     "another aspect ratio", f"subscribed to {NS}/camera/image_raw"):
        assert expected in text, f"'{expected}' not in the node's log:\n{text}"
    assert "Traceback" not in text


@pytest.mark.parametrize("params, reason", [
    ({"model_path": "bad.pt"}, "bad.pt"),
    ({"depth_resolution": "huge"}, "network, input"),
    # a string for a float (an integer is taken as a float: test_depth_node.py)
    ({"min_depth_m": "near"}, "parameter 'min_depth_m' (float, default 0.1)"),
    ({"threads": 1000}, "threads out of range"),
])
def test_refuses_to_start_on_bad_parameters_in_one_line(tmp_path, params, reason):
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    if "model_path" in params:
        params = {"model_path": str(tmp_path / params["model_path"])}
    process, log = _start(tmp_path, params)
    assert process.wait(timeout=60) == 1
    text = log.read_text()
    assert "cannot start" in text and reason in text and "Traceback" not in text, text
