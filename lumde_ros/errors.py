"""Errors the package raises on bad input. Each message says what was found, what was expected
and how to fix it; nodes log them per frame and keep running, the CLI prints them and exits 1."""


class LumdeError(Exception):
    """Base of every error raised on bad input or bad files."""


class ModelLoadError(LumdeError):
    """A checkpoint is unreadable, corrupt, or incompatible with this version."""


class EncodingError(LumdeError):
    """An image message cannot be decoded (encoding, size, step, payload)."""


class IntrinsicsError(LumdeError):
    """Camera intrinsics are invalid or do not fit the image."""


class InferenceError(LumdeError):
    """The network produced no usable depth for a frame."""


class ConfigError(LumdeError):
    """A configuration file or value is missing or out of range."""


class BagError(LumdeError):
    """A rosbag2 recording is missing, corrupt, or lacks what is asked of it."""


class TrainingError(LumdeError):
    """A training run cannot start, resume or continue (bad data, diverged, mismatched state)."""
