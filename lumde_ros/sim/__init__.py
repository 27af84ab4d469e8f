"""Synthetic camera data with exact ground truth (no ROS needed)."""
