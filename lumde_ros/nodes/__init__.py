"""ROS 2 nodes: thin wiring from topics and parameters to the ROS-free core."""
