"""Start the depth node and the trainer node together: the robot serves depth, records itself,
fine-tunes and swaps in what the gate accepts.

    ros2 launch lumde_ros train.launch.py image:=/camera/image_rect \
        camera_info:=/camera/camera_info odom:=/odom
    ros2 service call /trainer_node/start_recording std_srvs/srv/Trigger

Arguments: image, camera_info, odom (topics), namespace, params_file (the depth node's,
default config/depth.yaml), trainer_params_file (default config/trainer.yaml), model_path,
camera_height_m, camera_tilt_deg, use_rviz, fixed_frame. The depth node is started by depth.launch.py with
the same arguments.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

PACKAGE = "lumde_ros"
# Passed through to depth.launch.py, which declares and describes them.
DEPTH_ARGUMENTS = ("image", "camera_info", "namespace", "params_file", "model_path",
                   "camera_height_m", "camera_tilt_deg", "use_rviz", "fixed_frame")


def generate_launch_description():
    share = FindPackageShare(PACKAGE)
    depth = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(PathJoinSubstitution([share, "launch",
                                                            "depth.launch.py"])),
        launch_arguments=[(name, LaunchConfiguration(name)) for name in DEPTH_ARGUMENTS])
    return LaunchDescription([
        DeclareLaunchArgument("image", default_value="image",
                              description="camera image topic (raw)"),
        DeclareLaunchArgument("camera_info", default_value="camera_info",
                              description="CameraInfo topic of that camera"),
        DeclareLaunchArgument("odom", default_value="odom",
                              description="nav_msgs/Odometry topic (metric fine-tunes)"),
        DeclareLaunchArgument("namespace", default_value="",
                              description="namespace of both nodes and their relative topics"),
        DeclareLaunchArgument("params_file",
                              default_value=PathJoinSubstitution([share, "config", "depth.yaml"]),
                              description="depth_node parameters file"),
        DeclareLaunchArgument("trainer_params_file",
                              default_value=PathJoinSubstitution([share, "config",
                                                                  "trainer.yaml"]),
                              description="trainer_node parameters file"),
        DeclareLaunchArgument("model_path", default_value="",
                              description="checkpoint the depth node starts with "
                                          "(empty: the params file's)"),
        DeclareLaunchArgument("camera_height_m", default_value="",
                              description="the camera's optical centre above the floor in "
                                          "metres (empty: the params file's)"),
        DeclareLaunchArgument("camera_tilt_deg", default_value="",
                              description="degrees the camera looks below the horizontal "
                                          "(empty: the params file's)"),
        DeclareLaunchArgument("use_rviz", default_value="false",
                              description="also start RViz with config/lumde.rviz"),
        DeclareLaunchArgument("fixed_frame", default_value="camera_optical_frame",
                              description="RViz's fixed frame"),
        depth,
        Node(package=PACKAGE, executable="trainer_node", name="trainer_node",
             namespace=LaunchConfiguration("namespace"), output="screen",
             parameters=[LaunchConfiguration("trainer_params_file")],
             remappings=[("image", LaunchConfiguration("image")),
                         ("camera_info", LaunchConfiguration("camera_info")),
                         ("odom", LaunchConfiguration("odom"))]),
    ])
