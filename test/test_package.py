"""Packaging: the ROS-free core, the launch file against what setup.py installs, the ament
layout colcon produces. launch/launch_ros are not on PyPI, so the launch file is checked
statically here, not run."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "lumde_ros"
# Only the nodes wire ROS; everything else (training included) runs without rclpy.
ROS_WIRING = "nodes"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_core_never_imports_rclpy():
    files = [f for f in PACKAGE.rglob("*.py") if ROS_WIRING not in f.relative_to(PACKAGE).parts]
    assert len(files) > 30 and any("training" in f.parts for f in files)
    for f in files:
        bad = {n for n in _imports(f) if n.split(".")[0] == "rclpy"}
        assert not bad, f"{f.relative_to(ROOT)} imports {bad}"


def _setup_call() -> dict[str, ast.AST]:
    tree = ast.parse((ROOT / "setup.py").read_text())
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call)
                and getattr(n.func, "id", "") == "setup")
    return {k.arg: k.value for k in call.keywords}


def _console_scripts() -> set[str]:
    entry_points = ast.literal_eval(_setup_call()["entry_points"])
    return {s.split("=")[0].strip() for s in entry_points["console_scripts"]}


def _launch_calls(name: str) -> tuple[list[ast.Call], dict[str, object]]:
    """Every call in a launch file, and its module-level string constants."""
    tree = ast.parse((ROOT / "launch" / name).read_text())
    constants = {t.id: ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
                 for t in n.targets if isinstance(t, ast.Name)}
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)], constants


def _kw(call: ast.Call, name: str):
    for k in call.keywords:
        if k.arg == name:
            return k.value
    return None


def test_launch_file_matches_what_setup_installs():
    calls, constants = _launch_calls("depth.launch.py")

    def value(node: ast.AST) -> object:
        return constants[node.id] if isinstance(node, ast.Name) else ast.literal_eval(node)

    nodes = [c for c in calls if getattr(c.func, "id", "") == "Node"]
    executables = {value(_kw(c, "executable")) for c in nodes
                   if value(_kw(c, "package")) == "lumde_ros"}
    assert executables == {"depth_node"} and executables <= _console_scripts()
    assert {value(_kw(c, "package")) for c in nodes} == {"lumde_ros", "rviz2"}
    arguments = {ast.literal_eval(c.args[0]) for c in calls
                 if getattr(c.func, "id", "") == "DeclareLaunchArgument"}
    assert {"image", "camera_info", "model_path", "params_file", "use_rviz",
            "fixed_frame"} <= arguments
    # RViz is told the fixed frame: a real camera's optical frame is seldom the .rviz file's.
    rviz = next(c for c in nodes if value(_kw(c, "package")) == "rviz2")
    assert "'-f', LaunchConfiguration('fixed_frame')" in ast.unparse(_kw(rviz, "arguments"))
    # What overrides the params file is a declared argument and a node parameter.
    from lumde_ros.nodes.depth_node import PARAMS
    assert set(constants["OVERRIDES"]) <= arguments & {p.name for p in PARAMS}
    for c in calls:
        if getattr(c.func, "id", "") == "DeclareLaunchArgument":
            assert _kw(c, "description") is not None, f"argument {c.args[0].value} undescribed"
    # Every file the launch file looks up under share/ is installed there by setup.py.
    looked_up = {tuple(ast.literal_eval(e) for e in c.args[0].elts[1:]) for c in calls
                 if getattr(c.func, "id", "") == "PathJoinSubstitution"}
    for folder, name in looked_up:
        assert (ROOT / folder / name).is_file()
    installs = ast.unparse(_setup_call()["data_files"])
    assert "glob('config/*.yaml')" in installs and "glob('config/*.rviz')" in installs
    assert "glob('launch/*.launch.py')" in installs
    # Remappings name the node's input topics.
    remap = next(_kw(c, "remappings") for c in nodes if _kw(c, "remappings") is not None)
    assert {ast.literal_eval(t.elts[0]) for t in remap.elts} == {"image", "camera_info"}


def test_train_launch_starts_the_trainer_beside_the_depth_launch():
    calls, constants = _launch_calls("train.launch.py")
    nodes = [c for c in calls if getattr(c.func, "id", "") == "Node"]
    assert {ast.literal_eval(_kw(c, "executable")) for c in nodes} == {"trainer_node"}
    assert "trainer_node" in _console_scripts()
    looked_up = {tuple(ast.literal_eval(e) for e in c.args[0].elts[1:]) for c in calls
                 if getattr(c.func, "id", "") == "PathJoinSubstitution"}
    assert looked_up == {("launch", "depth.launch.py"), ("config", "depth.yaml"),
                         ("config", "trainer.yaml")}
    for folder, name in looked_up:
        assert (ROOT / folder / name).is_file()
    declared = {ast.literal_eval(c.args[0]) for c in calls
                if getattr(c.func, "id", "") == "DeclareLaunchArgument"}
    depth_declared = {ast.literal_eval(c.args[0]) for c in _launch_calls("depth.launch.py")[0]
                      if getattr(c.func, "id", "") == "DeclareLaunchArgument"}
    # What is passed to depth.launch.py is declared here and there.
    assert set(constants["DEPTH_ARGUMENTS"]) <= declared & depth_declared
    remap = _kw(nodes[0], "remappings")
    assert {ast.literal_eval(t.elts[0]) for t in remap.elts} == {"image", "camera_info", "odom"}


def test_trainer_records_the_topics_the_launch_file_remaps(ros, tmp_path):
    from rclpy.parameter import Parameter
    from std_srvs.srv import Trigger

    from lumde_ros.nodes.trainer_node import TrainerNode
    node = TrainerNode(namespace="/launchcheck",
                       parameter_overrides=[Parameter("output_dir", value=str(tmp_path))])
    try:
        assert node._start_recording(None, Trigger.Response()).success
        topics = {name for name, _ in node.get_subscriber_names_and_types_by_node(
            node.get_name(), node.get_namespace())}
    finally:
        node.destroy_node()
    assert {"/launchcheck/image", "/launchcheck/camera_info", "/launchcheck/odom"} <= topics


def test_node_subscribes_the_topics_the_launch_file_remaps(ros):
    from lumde_ros.nodes.depth_node import DepthNode
    node = DepthNode(namespace="/launchcheck")
    try:
        topics = {name for name, _ in node.get_subscriber_names_and_types_by_node(
            node.get_name(), node.get_namespace())}
    finally:
        node.destroy_node()
    assert {"/launchcheck/image", "/launchcheck/camera_info"} <= topics


def test_package_xml_declares_dependencies():
    root = ET.parse(ROOT / "package.xml").getroot()
    assert root.get("format") == "3" and root.findtext("name") == "lumde_ros"
    deps = {e.text for e in root.iter() if e.tag.endswith("depend")}
    imported = set()
    for f in PACKAGE.rglob("*.py"):
        imported |= {n.split(".")[0] for n in _imports(f)}
    ros_imports = {n for n in imported if n in {"rclpy", "sensor_msgs", "std_msgs", "std_srvs",
                                                "diagnostic_msgs", "rcl_interfaces", "nav_msgs",
                                                "tf2_msgs", "ament_index_python"}}
    assert {"rclpy", "std_srvs", "nav_msgs", "tf2_msgs"} <= ros_imports <= deps
    assert {"python3-numpy", "python3-opencv", "python3-yaml"} <= deps
    # Keys rosdep cannot install on Ubuntu 24.04 (no such package; pip refused by PEP 668)
    # would stop `rosdep install` for the whole workspace; a GUI is optional on a robot.
    assert not {d for d in deps if d.endswith("-pip")} | ({"python3-torch", "rviz2"} & deps)
    assert root.find("export/build_type").text == "ament_python"


def test_colcon_build_gives_the_layout_ros2_run_and_launch_expect(tmp_path):
    colcon = Path(sys.executable).parent / "colcon"
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    result = subprocess.run(
        [str(colcon), "--log-base", str(tmp_path / "log"), "build", "--base-paths", str(ROOT),
         "--packages-select", "lumde_ros", "--build-base", str(tmp_path / "build"),
         "--install-base", str(tmp_path / "install")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    prefix = tmp_path / "install" / "lumde_ros"
    for script in _console_scripts():
        assert (prefix / "lib" / "lumde_ros" / script).is_file()
    share = prefix / "share" / "lumde_ros"
    for rel in ("package.xml", "launch/depth.launch.py", "launch/train.launch.py",
                "config/depth.yaml", "config/trainer.yaml", "config/train.yaml",
                "config/lumde.rviz", "weights/student.pt", "weights/teacher.pt"):
        assert (share / rel).is_file(), rel
    assert (prefix / "share" / "ament_index" / "resource_index" / "packages" /
            "lumde_ros").is_file()


def test_readme_documents_every_parameter_with_its_default():
    from lumde_ros.config import node_defaults
    readme = (ROOT / "README.md").read_text()
    for params_file in ("depth.yaml", "trainer.yaml"):
        for name, default in node_defaults(params_file).items():
            shown = '""' if default == "" else str(default).lower() \
                if isinstance(default, bool) else str(default)
            assert f"| `{name}` | {type(default).__name__} | `{shown}` |" in readme, name
    assert "make demo" in readme and "make test" in readme
