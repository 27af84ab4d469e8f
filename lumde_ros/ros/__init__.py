"""Message <-> numpy conversions (images, camera info, point clouds, diagnostics).

Uses ROS message types but never rclpy, so it is usable and testable without a ROS graph,
the way depth_image_proc keeps its conversions out of its nodes."""
