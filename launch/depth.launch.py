"""Start the lumde_ros depth node on a camera, optionally with RViz.

    ros2 launch lumde_ros depth.launch.py image:=/camera/image_rect \
        camera_info:=/camera/camera_info use_rviz:=true

Arguments: image, camera_info (topics to remap the node's inputs to), namespace, params_file
(default: the installed config/depth.yaml), model_path, camera_height_m, camera_tilt_deg (each
overrides the params file when set), use_rviz, fixed_frame (RViz's).
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

PACKAGE = "lumde_ros"
# Node parameters a launch argument overrides when given, with their ROS parameter types.
OVERRIDES = {"model_path": "string", "camera_height_m": "double", "camera_tilt_deg": "double"}


def _depth_node(context):
    """The node, with the OVERRIDES passed only when given, so the params file's values stand."""
    overrides = {}
    for name, kind in OVERRIDES.items():
        value = LaunchConfiguration(name).perform(context)
        if value:
            overrides[name] = float(value) if kind == "double" else value
    return [Node(
        package=PACKAGE, executable="depth_node", name="depth_node",
        namespace=LaunchConfiguration("namespace"), output="screen",
        parameters=[LaunchConfiguration("params_file"), overrides],
        remappings=[("image", LaunchConfiguration("image")),
                    ("camera_info", LaunchConfiguration("camera_info"))])]


def generate_launch_description():
    share = FindPackageShare(PACKAGE)
    return LaunchDescription([
        DeclareLaunchArgument("image", default_value="image",
                              description="camera image topic (raw; the compressed transport "
                                          "subscribes <image>/compressed)"),
        DeclareLaunchArgument("camera_info", default_value="camera_info",
                              description="CameraInfo topic of that camera"),
        DeclareLaunchArgument("namespace", default_value="",
                              description="namespace of the node and its relative topics"),
        DeclareLaunchArgument("params_file",
                              default_value=PathJoinSubstitution([share, "config", "depth.yaml"]),
                              description="depth_node parameters file"),
        DeclareLaunchArgument("model_path", default_value="",
                              description="checkpoint to serve (empty: the params file's)"),
        DeclareLaunchArgument("camera_height_m", default_value="",
                              description="the camera's optical centre above the floor in "
                                          "metres (empty: the params file's)"),
        DeclareLaunchArgument("camera_tilt_deg", default_value="",
                              description="degrees the camera looks below the horizontal "
                                          "(empty: the params file's)"),
        DeclareLaunchArgument("use_rviz", default_value="false",
                              description="also start RViz with config/lumde.rviz"),
        DeclareLaunchArgument("fixed_frame", default_value="camera_optical_frame",
                              description="RViz's fixed frame: the camera's optical frame "
                                          "(the images' frame_id) or a frame tf links to it"),
        OpaqueFunction(function=_depth_node),
        Node(package="rviz2", executable="rviz2", name="rviz2", output="screen",
             namespace=LaunchConfiguration("namespace"),  # relative topics in lumde.rviz
             arguments=["-d", PathJoinSubstitution([share, "config", "lumde.rviz"]),
                        "-f", LaunchConfiguration("fixed_frame")],
             condition=IfCondition(LaunchConfiguration("use_rviz"))),
    ])
