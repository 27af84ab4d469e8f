"""lumde_ros: metric monocular depth for ROS 2, distilled from a self-supervised teacher (LUMDE).

The ML core (models, geometry, checkpoint, inference, ros conversions, sim) imports no rclpy;
only `lumde_ros.nodes` does.
"""

__version__ = "0.1.0"
