"""Reading recordings: what simulate writes comes back whole; bad bags are refused clearly."""
from __future__ import annotations

import copy
import math
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from bags import copy_bag, humble_sqlite3_copy
from rosbags.rosbag2 import StoragePlugin, Writer

from lumde_ros.data import Recording
from lumde_ros.errors import BagError
from lumde_ros.geometry import matrix_quaternion
from lumde_ros.sim.recording import TYPESTORE, SimulateOptions, _camera_info, _image, simulate
from lumde_ros.sim.scene import camera_intrinsics
from lumde_ros.sim.world import load_sim_config

SIM = load_sim_config()


def _time(stamp) -> int:
    return stamp.sec * 10**9 + stamp.nanosec


def test_frames_carry_image_intrinsics_truth_and_pose(sim_bag):
    with Recording(sim_bag) as rec:
        assert rec.image_topic == "/camera/image_raw"
        assert rec.depth_topic == "/camera/depth/ground_truth"
        frames = list(rec.frames())
    assert len(frames) == 10
    assert [f.stamp_ns for f in frames] == sorted(f.stamp_ns for f in frames)
    f = frames[0]
    height, width = f.rgb.shape[:2]
    assert f.depth.shape == (height, width) and [width, height] in SIM["camera"]["sizes"]
    hfov = math.degrees(2 * math.atan(width / 2 / f.intrinsics.fx))
    expected = camera_intrinsics(width, height, hfov)
    assert (f.intrinsics.cx, f.intrinsics.cy) == (expected.cx, expected.cy)
    assert f.intrinsics.fx == pytest.approx(expected.fx) == pytest.approx(f.intrinsics.fy)
    assert SIM["camera"]["hfov_deg"][0] <= hfov <= SIM["camera"]["hfov_deg"][1]
    assert 0.05 < np.nanmin(f.depth) and np.nanmax(f.depth) < 25.0
    # odom starts at the robot: the camera sits above base_link at the origin, looking ahead
    assert np.linalg.norm(f.odom_from_camera[:2, 3]) < 0.2
    assert 0.09 < f.odom_from_camera[2, 3] < 1.7
    assert f.odom_from_camera[:3, 2] @ np.array([1.0, 0, 0]) > math.cos(math.radians(30))
    steps = [np.linalg.norm(b.odom_from_camera[:3, 3] - a.odom_from_camera[:3, 3])
             for a, b in zip(frames[:-1], frames[1:])]
    assert max(steps) < 0.16   # at most 1.5 m/s at 10 Hz: no teleports


def test_sqlite3_storage_and_determinism(tmp_path, sim_bag):
    options = dict(seed=5, frames=3, width=80, height=64)
    simulate(SimulateOptions(out=tmp_path / "a", storage="sqlite3", **options), progress=False)
    simulate(SimulateOptions(out=tmp_path / "b", **options), progress=False)
    with Recording(tmp_path / "a") as a, Recording(tmp_path / "b") as b:
        for fa, fb in zip(a.frames(), b.frames()):
            np.testing.assert_array_equal(fa.rgb, fb.rgb)
            np.testing.assert_array_equal(fa.depth, fb.depth)
    with pytest.raises(BagError, match="already exists"):
        simulate(SimulateOptions(out=tmp_path / "a"), progress=False)


def test_missing_topic_lists_what_exists(sim_bag):
    with pytest.raises(BagError, match="/camera/image_raw \\(sensor_msgs/msg/Image\\)"):
        Recording(sim_bag, image_topic="/front/image")


def test_corrupt_and_missing_bags_are_refused(tmp_path, sim_bag):
    with pytest.raises(BagError, match="does not exist"):
        Recording(tmp_path / "nothing")
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in sim_bag.iterdir():  # (a truncated file is recovered: test_repair.py)
        data = f.read_bytes()
        (broken / f.name).write_bytes(bytes(len(data)) if f.suffix == ".mcap" else data)
    with pytest.raises(BagError, match="broken.*not an MCAP file"):
        Recording(broken)


def test_a_humble_sqlite3_bag_without_message_definitions_is_read(tmp_path, sim_bag):
    humble = humble_sqlite3_copy(sim_bag, tmp_path / "humble")
    assert "message_definitions" not in sqlite3.connect(next(humble.glob("*.db3"))).execute(
        "select group_concat(name) from sqlite_master").fetchone()[0]
    with Recording(humble) as old, Recording(sim_bag) as new:
        for a, b in zip(old.frames(), new.frames(), strict=True):
            np.testing.assert_array_equal(a.rgb, b.rgb)
            np.testing.assert_array_equal(a.odom_from_camera, b.odom_from_camera)


def test_a_bag_directory_without_metadata_is_read_whole(tmp_path, sim_bag):
    bare = tmp_path / "bare"
    shutil.copytree(sim_bag, bare)
    (bare / "metadata.yaml").unlink()
    with Recording(bare) as rec:  # MCAP: through a repaired copy, every message kept
        assert len(list(rec.frames())) == 10 and rec.recovered.lost_bytes == 0
    sqlite = humble_sqlite3_copy(sim_bag, tmp_path / "humble")
    (sqlite / "metadata.yaml").unlink()
    storage = next(sqlite.glob("*.db3"))
    with pytest.raises(BagError, match=f"no metadata.yaml.*pass {storage} itself"):
        Recording(sqlite)
    with Recording(storage) as rec:
        assert len(list(rec.frames())) == 10


def test_a_damaged_message_costs_its_frame_not_the_recording(tmp_path, sim_bag):
    damaged = copy_bag(sim_bag, tmp_path / "damaged", truncate=("/camera/image_raw", 4))
    with Recording(damaged) as rec:
        assert len(list(rec.frames())) == 9
        assert rec.damaged == {"/camera/image_raw": 1}


def test_unusable_odometry_poses_are_left_out(tmp_path, sim_bag):
    def spoil(msg, index):  # an estimator not yet initialised, then a driver's zero quaternion
        if index == 0:
            msg.pose.pose.position.x = float("nan")
        elif index == 1:
            q = msg.pose.pose.orientation
            q.x = q.y = q.z = q.w = 0.0
    spoiled = copy_bag(sim_bag, tmp_path / "spoiled", edit=("/odom", spoil))
    with Recording(spoiled) as rec, Recording(sim_bag) as clean:
        pairs = list(zip(rec.frames(), clean.frames(), strict=True))
    posed = [(a, b) for a, b in pairs if a.odom_from_camera is not None]
    assert len(posed) >= len(pairs) - 2 and all(np.isfinite(a.odom_from_camera).all()
                                                 for a, _ in posed)
    np.testing.assert_allclose(posed[-1][0].odom_from_camera, posed[-1][1].odom_from_camera)


def test_topics_are_found_by_content_and_several_cameras_must_be_named(tmp_path, sim_bag):
    image, info, truth = "/camera/image_raw", "/camera/camera_info", "/camera/depth/ground_truth"
    # A camera whose name says depth, and a depth node's own outputs recorded beside it.
    odd = copy_bag(sim_bag, tmp_path / "odd", rename={
        image: ("/depthai/rgb/image_raw",), info: ("/calib/camera_info", "/depth/camera_info"),
        truth: ("/stereo/range", "/depth/image")})
    with Recording(odd) as rec:
        assert (rec.image_topic, rec.camera_info_topic, rec.depth_topic) == (
            "/depthai/rgb/image_raw", "/calib/camera_info", "/stereo/range")
    two = copy_bag(sim_bag, tmp_path / "two", rename={
        image: (image, "/rear/image_raw"), info: (info, "/rear/camera_info")})
    with pytest.raises(BagError, match="several camera streams \\(/camera/image_raw, "
                                       "/rear/image_raw\\); name the one.*--image-topic"):
        Recording(two)
    with Recording(two, image_topic="/rear/image_raw") as rec:
        assert rec.camera_info_topic == "/rear/camera_info"  # the one beside the image
        assert len(list(rec.frames())) == 10


def _camera_bag(path: Path, messages: list) -> Path:
    """An MCAP holding /cam/camera_info and /cam/image (both, even without messages), written
    from (log time, CameraInfo or Image) in order."""
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conns = {kind: writer.add_connection(topic, kind, typestore=TYPESTORE) for topic, kind in
                 (("/cam/camera_info", "sensor_msgs/msg/CameraInfo"),
                  ("/cam/image", "sensor_msgs/msg/Image"))}
        for stamp, msg in messages:
            conn = conns[msg.__msgtype__]
            writer.write(conn, stamp, TYPESTORE.serialize_cdr(msg, conn.msgtype))
    return path


def test_image_and_camera_info_size_mismatch_is_refused(tmp_path):
    stamp = 10**9
    path = _camera_bag(tmp_path / "mismatch", [
        (stamp, _camera_info(stamp, "cam", camera_intrinsics(640, 360, 70.0))),
        (stamp, _image(stamp, "cam", np.zeros((240, 320, 3), np.uint8), "rgb8"))])
    with Recording(path) as rec, pytest.raises(BagError, match="aspect ratio"):
        list(rec.frames())


@pytest.mark.parametrize("images, reason", [
    (0, "/cam/image holds no messages"),
    (2, "none of the 2 images on /cam/image has a CameraInfo on /cam/camera_info recorded "
        "before it"),
])
def test_a_recording_without_camera_frames_says_what_is_missing(tmp_path, images, reason):
    path = _camera_bag(tmp_path / "empty", [
        (k, _image(k, "cam", np.zeros((24, 32, 3), np.uint8), "rgb8")) for k in range(images)]
        # the CameraInfo only after every image
        + ([(images, _camera_info(images, "cam", camera_intrinsics(32, 24, 70.0)))]
           if images else []))
    with Recording(path) as rec, pytest.raises(BagError, match=reason):
        list(rec.frames())


def test_an_image_recorded_twice_is_read_once_and_counted(tmp_path):
    path = _camera_bag(tmp_path / "twice", [
        (0, _camera_info(1, "cam", camera_intrinsics(32, 24, 70.0))),
        *((k, _image(k, "cam", np.full((24, 32, 3), k, np.uint8), "rgb8"))
          for k in (1, 1, 2, 3, 3, 3))])
    with Recording(path) as rec:
        frames = list(rec.frames())
        assert [f.stamp_ns for f in frames] == [1, 2, 3] and rec.duplicate_images == 3


def test_compressed_images_are_read(tmp_path):
    import cv2
    path = tmp_path / "compressed"
    intrinsics = camera_intrinsics(64, 48, 70.0)
    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[:, 32:] = (200, 40, 10)
    ok, png = cv2.imencode(".png", rgb[:, :, ::-1])
    with Writer(path, version=9, storage_plugin=StoragePlugin.SQLITE3) as writer:
        info = writer.add_connection("/cam/camera_info", "sensor_msgs/msg/CameraInfo",
                                     typestore=TYPESTORE)
        image = writer.add_connection("/cam/image/compressed", "sensor_msgs/msg/CompressedImage",
                                      typestore=TYPESTORE)
        for k in range(3):
            stamp = (k + 1) * 10**8
            writer.write(info, stamp, TYPESTORE.serialize_cdr(
                _camera_info(stamp, "cam", intrinsics), info.msgtype))
            msg = TYPESTORE.types["sensor_msgs/msg/CompressedImage"](
                header=_camera_info(stamp, "cam", intrinsics).header, format="png",
                data=np.frombuffer(png.tobytes(), np.uint8))
            writer.write(image, stamp, TYPESTORE.serialize_cdr(msg, image.msgtype))
    with Recording(path) as rec:
        frames = list(rec.frames())
    assert len(frames) == 3 and frames[0].depth is None and frames[0].odom_from_camera is None
    np.testing.assert_array_equal(frames[2].rgb, rgb)


def test_an_image_that_does_not_decode_costs_its_frame_and_none_decoding_is_refused(
        tmp_path, sim_bag):
    def halve(msg, index):  # a driver's short write: fewer bytes than height x step
        if index == 3:
            msg.data = msg.data[:len(msg.data) // 2]
    short = copy_bag(sim_bag, tmp_path / "short", edit=("/camera/image_raw", halve))
    with Recording(short) as rec, Recording(sim_bag) as clean:
        kept = [f.stamp_ns for f in rec.frames()]
        assert kept == [f.stamp_ns for k, f in enumerate(clean.frames()) if k != 3]
        assert rec.skipped_images == 1 and "at " in rec.last_skip

    def relabel(msg, index):
        msg.encoding = "8UC3"
    unknown = copy_bag(sim_bag, tmp_path / "unknown", edit=("/camera/image_raw", relabel))
    with Recording(unknown) as rec, pytest.raises(BagError, match="no image decodes "
                                                   "\\(10 tried; last: .*8UC3"):
        list(rec.frames())


def test_the_odometry_that_reaches_the_camera_is_taken_of_several(tmp_path, sim_bag):
    # A tracking camera's own odometry beside the robot's, first in name order.
    both = copy_bag(sim_bag, tmp_path / "both", rename={"/odom": ("/a_tracker/odom", "/odom")})

    def elsewhere(msg, index):
        msg.child_frame_id = "tracker_pose_frame"
    decoy = copy_bag(both, tmp_path / "decoy", edit=("/a_tracker/odom", elsewhere))
    with Recording(decoy) as rec, Recording(sim_bag) as clean:
        pairs = list(zip(rec.frames(), clean.frames(), strict=True))
        assert rec.odom_topic == "/odom"
    for frame, truth in pairs:
        np.testing.assert_allclose(frame.odom_from_camera, truth.odom_from_camera)
    # Odometry that reaches nothing (and no /tf): the mount alone sets the camera over the floor.
    lost = copy_bag(sim_bag, tmp_path / "lost", drop={"/tf"}, edit=("/odom", elsewhere))
    with Recording(lost) as rec, Recording(sim_bag) as clean:
        for frame, truth in zip(rec.frames(), clean.frames(), strict=True):
            assert frame.odom_from_camera is None
            assert frame.floor_from_camera[2, 3] == pytest.approx(
                truth.floor_from_camera[2, 3], abs=0.01)


def test_odometry_between_messages_turns_along_the_shortest_arc():
    from lumde_ros.data.transforms import Timeline
    from lumde_ros.geometry import pose_matrix, quaternion_from_rpy

    def at(x: float, yaw_deg: float) -> np.ndarray:
        return pose_matrix(np.array([x, 0.0, 0.0]),
                           quaternion_from_rpy(0.0, 0.0, math.radians(yaw_deg)))
    odometry = Timeline.of([100, 0], [1.0, 0, 0, *quaternion_from_rpy(0, 0, math.radians(-170)),
                                      0.0, 0, 0, *quaternion_from_rpy(0, 0, math.radians(170))])
    np.testing.assert_allclose(odometry.at(30), at(0.3, 176.0), atol=1e-9)
    np.testing.assert_allclose(odometry.at(100), at(1.0, -170.0), atol=1e-12)
    assert odometry.at(101) is None and odometry.at(-1) is None


def test_a_bag_without_odom_takes_the_poses_from_tf(tmp_path, sim_bag):
    tf_only = copy_bag(sim_bag, tmp_path / "tf_only", drop={"/odom"})
    with Recording(tf_only) as rec, Recording(sim_bag) as clean:
        pairs = list(zip(rec.frames(), clean.frames(), strict=True))
        assert (rec.odom_topic, rec.odom_child) == ("/tf", "base_link")
        assert not rec.camera_warnings
    for frame, truth in pairs:
        np.testing.assert_allclose(frame.odom_from_camera, truth.odom_from_camera, atol=1e-9)
        np.testing.assert_allclose(frame.floor_from_camera, truth.floor_from_camera, atol=1e-9)


def test_a_camera_mount_on_tf_follows_its_joint(tmp_path, sim_bag):
    """A pan joint published on /tf (robot_state_publisher does so for every moving joint):
    the camera's pose turns with it, interpolated between the joint's messages."""
    from lumde_ros.geometry import OPTICAL_FROM_LINK_RPY, pose_matrix, quaternion_from_rpy
    from lumde_ros.sim.recording import START_NS

    mount = []

    def unfix(msg, index):
        mount.extend(t for t in msg.transforms if t.child_frame_id == "camera_link")
        msg.transforms = [t for t in msg.transforms if t.child_frame_id != "camera_link"]

    def pan_rate(stamp) -> float:  # radians: 0.5 rad/s
        return 0.5 * (stamp - START_NS) * 1e-9

    def pan(msg, index):
        if index % 2:  # the joint at half the camera's rate: every other frame interpolated
            msg.transforms = []
            return
        joint = copy.deepcopy(mount[0])
        joint.header.stamp = msg.transforms[0].header.stamp
        r = joint.transform.rotation
        stamp = _time(joint.header.stamp)
        turned = pose_matrix(np.zeros(3), [r.x, r.y, r.z, r.w]) @ pose_matrix(
            np.zeros(3), quaternion_from_rpy(0.0, 0.0, pan_rate(stamp)))
        x, y, z, w = matrix_quaternion(turned)
        r.x, r.y, r.z, r.w = float(x), float(y), float(z), float(w)
        msg.transforms = [*msg.transforms, joint]
    unfixed = copy_bag(sim_bag, tmp_path / "unfixed", edit=("/tf_static", unfix))
    panning = copy_bag(unfixed, tmp_path / "panning", edit=("/tf", pan))
    link_from_optical = pose_matrix(np.zeros(3), quaternion_from_rpy(*OPTICAL_FROM_LINK_RPY))
    with Recording(panning) as rec, Recording(sim_bag) as clean:
        pairs = list(zip(rec.frames(), clean.frames(), strict=True))
    last = max(f.stamp_ns for f, _ in pairs if f.odom_from_camera is not None)
    assert len(pairs) == 10 and last >= pairs[-2][0].stamp_ns  # all but maybe the last frame
    for frame, truth in pairs:
        if frame.stamp_ns > last:
            continue
        yaw = pose_matrix(np.zeros(3), quaternion_from_rpy(0.0, 0.0, pan_rate(frame.stamp_ns)))
        expected = truth.odom_from_camera @ np.linalg.inv(link_from_optical) @ yaw \
            @ link_from_optical
        np.testing.assert_allclose(frame.odom_from_camera, expected, atol=1e-9)


def test_unset_stamps_take_the_recorded_time_and_are_said(tmp_path, sim_bag):
    def unset(msg, index):
        msg.header.stamp.sec = msg.header.stamp.nanosec = 0
    blank = copy_bag(sim_bag, tmp_path / "blank", edit=("/camera/image_raw", unset))
    blank = copy_bag(blank, tmp_path / "blank2", edit=("/camera/depth/ground_truth", unset))
    with Recording(blank) as rec, Recording(sim_bag) as clean:
        pairs = list(zip(rec.frames(), clean.frames(), strict=True))
        warnings = rec.camera_warnings
    assert len(warnings) == 2 and all("a header stamp of 0" in w for w in warnings)
    assert {w.split(":")[0] for w in warnings} == {"/camera/image_raw",
                                                  "/camera/depth/ground_truth"}
    for frame, truth in pairs:
        assert frame.stamp_ns == truth.stamp_ns  # the simulator records at the stamp
        np.testing.assert_array_equal(frame.depth, truth.depth)
        np.testing.assert_allclose(frame.odom_from_camera, truth.odom_from_camera)


@pytest.mark.parametrize("offset_ms, paired", [(-9.0, True), (12.0, True), (25.0, False)])
def test_ground_truth_is_paired_with_the_nearest_image_within_the_slop(
        tmp_path, sim_bag, offset_ms, paired):
    """An RGB-D camera that does not synchronise its sensors stamps depth apart from colour."""
    def shift(msg, index):
        stamp = _time(msg.header.stamp) + int(offset_ms * 1e6)
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 10**9)
    apart = copy_bag(sim_bag, tmp_path / "apart", edit=("/camera/depth/ground_truth", shift))
    with Recording(apart) as rec, Recording(sim_bag) as clean:
        pairs = list(zip(rec.frames(), clean.frames(), strict=True))
    for frame, truth in pairs:
        if paired:
            np.testing.assert_array_equal(frame.depth, truth.depth)
        else:
            assert frame.depth is None
    with Recording(apart, depth_slop_ms=30.0) as rec:
        assert all(f.depth is not None for f in rec.frames()) and not rec.unpaired_images


@pytest.fixture(scope="module")
def long_bag(tmp_path_factory) -> Path:
    """Longer than the pairing's buffer (PENDING frames)."""
    out = tmp_path_factory.mktemp("long") / "bag"
    simulate(SimulateOptions(out=out, seed=6, frames=40, width=80, height=64), progress=False)
    return out


@pytest.mark.parametrize("frames_late", [-30, -3, 2, 30])
def test_ground_truth_logged_apart_from_its_images_still_pairs(tmp_path, long_bag,
                                                               frames_late):
    """A depth pipeline logs its images after (or, buffered, before) the colour ones."""
    late = copy_bag(long_bag, tmp_path / "late",
                    delay=("/camera/depth/ground_truth", frames_late * 100_000_000))
    with Recording(late) as rec, Recording(long_bag) as clean:
        pairs = list(zip(rec.frames(), clean.frames(), strict=True))
        assert rec.unpaired_images == 0
    for frame, truth in pairs:
        np.testing.assert_array_equal(frame.depth, truth.depth)


def test_damaged_tf_is_counted_when_several_odometry_topics_are_searched(tmp_path, sim_bag):
    both = copy_bag(sim_bag, tmp_path / "both", rename={"/odom": ("/a_tracker/odom", "/odom")})
    cut = copy_bag(both, tmp_path / "cut", truncate=("/tf", 3))
    with Recording(cut) as rec:
        frames = list(rec.frames())
        assert rec.damaged == {"/tf": 1} and rec.odom_topic == "/odom"  # the camera's robot's
    assert len(frames) == 10 and all(f.odom_from_camera is not None for f in frames)


def test_what_is_assumed_about_the_camera_is_said_where_training_and_eval_report(
        tmp_path, sim_bag):
    from lumde_ros.data.triplets import load_triplets

    def distorted(msg, index):
        msg.d = np.array([0.1, -0.02, 0.0, 0.0, 0.0])
    bent = copy_bag(sim_bag, tmp_path / "bent", edit=("/camera/camera_info", distorted))
    with Recording(bent) as rec, Recording(sim_bag) as clean:
        assert len(list(rec.frames())) == len(list(clean.frames())) == 10
        assert len(rec.camera_warnings) == 1 and not clean.camera_warnings
        assert "/camera/image_raw is an unrectified stream" in rec.camera_warnings[0]
    said: list[str] = []
    data = load_triplets([bent], 64, 48, "odometry", 0.0, say=said.append)
    assert data.recordings[0]["camera_warnings"] == rec.camera_warnings
    assert said == [f"warning: {bent}: {rec.camera_warnings[0]}"]


@pytest.mark.parametrize("rename", [
    {"/tf_static": ("/robot1/tf_static",), "/tf": ("/robot1/tf",)},
    {"/tf_static": ("/robot1/tf_static",)},  # the static publisher remapped, not the rest
    {"/tf": ("/robot1/tf",), "/camera/image_raw": ("/robot1/camera/image_raw",),
     "/camera/camera_info": ("/robot1/camera/camera_info",)},  # tf_static left at the root
])
def test_a_namespaced_robots_tf_places_its_camera(tmp_path, sim_bag, rename):
    moved = copy_bag(sim_bag, tmp_path / "robot1", drop={"/odom"}, rename=rename)
    with Recording(moved) as rec, Recording(sim_bag) as clean:
        for frame, truth in zip(rec.frames(), clean.frames(), strict=True):
            np.testing.assert_allclose(frame.odom_from_camera, truth.odom_from_camera)


def test_each_robots_tf_places_only_its_own_camera(tmp_path, sim_bag):
    """Multi-robot setups remap each robot's tf to its namespace, with the same frame names."""
    camera = ("/camera/image_raw", "/camera/camera_info", "/camera/depth/ground_truth")
    two = copy_bag(sim_bag, tmp_path / "two", drop={"/odom"}, rename={
        "/tf": ("/robot1/tf", "/robot2/tf"), "/tf_static": ("/robot1/tf_static",
                                                            "/robot2/tf_static"),
        **{topic: ("/robot1" + topic,) for topic in camera}})

    def elsewhere(msg, index):
        for t in msg.transforms:
            t.transform.translation.x += 50.0
    apart = copy_bag(two, tmp_path / "apart", edit=("/robot2/tf", elsewhere))
    with Recording(apart) as rec, Recording(sim_bag) as clean:
        pairs = list(zip(rec.frames(), clean.frames(), strict=True))
        assert rec.odom_topic == "/robot1/tf"
    for frame, truth in pairs:
        np.testing.assert_allclose(frame.odom_from_camera, truth.odom_from_camera, atol=1e-9)
    # A camera outside both namespaces: not placed at all, and said.
    outside = copy_bag(apart, tmp_path / "outside",
                       rename={"/robot1" + topic: (topic,) for topic in camera})
    with Recording(outside) as rec:
        frames = list(rec.frames())
        warnings = rec.camera_warnings
    assert all(f.odom_from_camera is None and f.floor_from_camera is None for f in frames)
    assert [w.split(" of several robots")[0] for w in warnings] == ["tf", "tf_static"]
    assert "(/robot1/tf, /robot2/tf) and none in the namespace of /camera/image_raw" \
        in warnings[0]


def test_each_robots_odometry_poses_only_its_own_camera(tmp_path, sim_bag):
    camera = ("/camera/image_raw", "/camera/camera_info", "/camera/depth/ground_truth")
    two = copy_bag(sim_bag, tmp_path / "two", rename={
        "/odom": ("/robot1/odom", "/robot2/odom"), "/tf_static": ("/robot2/tf_static",),
        **{topic: ("/robot2" + topic,) for topic in camera}}, drop={"/tf"})

    def elsewhere(msg, index):
        msg.pose.pose.position.x += 50.0
    apart = copy_bag(two, tmp_path / "apart", edit=("/robot2/odom", elsewhere))
    with Recording(apart) as rec, Recording(sim_bag) as clean:
        pairs = list(zip(rec.frames(), clean.frames(), strict=True))
        assert rec.odom_topic == "/robot2/odom"
    for frame, truth in pairs:
        np.testing.assert_allclose(frame.odom_from_camera[:3, 3],
                                   truth.odom_from_camera[:3, 3] + [50.0, 0, 0], atol=1e-9)


def test_the_depth_stream_registered_to_the_camera_is_the_ground_truth(tmp_path, sim_bag):
    """OpenNI-style: /camera/depth (the depth camera's own frame) beside
    /camera/depth_registered (the colour camera's); only the second is pixel for pixel."""
    both = copy_bag(sim_bag, tmp_path / "both", rename={"/camera/depth/ground_truth": (
        "/camera/depth/image_raw", "/camera/depth_registered/image_raw")})

    def own_frame(msg, index):
        msg.header.frame_id = "camera_depth_optical_frame"
    openni = copy_bag(both, tmp_path / "openni", edit=("/camera/depth/image_raw", own_frame))
    with Recording(openni) as rec:
        assert rec.depth_topic == "/camera/depth_registered/image_raw"


def test_odometry_on_another_clock_is_named_and_the_mount_still_places_the_camera(
        tmp_path, sim_bag):
    from lumde_ros.data.image_motion import ImageMotionConfig
    from lumde_ros.data.triplets import load_triplets
    from lumde_ros.training.config import load_section

    def later(msg, index):  # /tf stamped in another clock: 1000 s on
        for t in msg.transforms:
            t.header.stamp.sec += 1000
    skewed = copy_bag(sim_bag, tmp_path / "skewed", drop={"/odom"}, edit=("/tf", later))
    with Recording(skewed) as rec, Recording(sim_bag) as clean:
        pairs = list(zip(rec.frames(), clean.frames(), strict=True))
        assert rec.odom_topic == "/tf" and rec.linked
    for frame, truth in pairs:
        assert frame.odom_from_camera is None
        assert frame.floor_from_camera[2, 3] == pytest.approx(truth.floor_from_camera[2, 3],
                                                              abs=0.01)
    data = load_triplets([skewed], 64, 48, "auto", 0.0,
                         motion=load_section("image_motion", ImageMotionConfig))
    assert "odometry on /tf with tf from the image's frame (camera_optical_frame) to base_link " \
        "gives poses from 1700001000.0 s to 1700001000.9 s, the images are stamped from " \
        "1700000000.0 s to 1700000000.9 s" in data.why_relative
    assert data.recordings[0]["image_motion_known"] > 0  # the images' own motion instead
