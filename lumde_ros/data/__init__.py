"""Reading recordings (rosbag2, MCAP or sqlite3) into frames for evaluation and training."""

from lumde_ros.data.recording import Recording, RecordedFrame

__all__ = ["RecordedFrame", "Recording"]
