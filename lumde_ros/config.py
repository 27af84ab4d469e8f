"""Find and read the package's `config/*.yaml`, the one place where defaults live."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from lumde_ros.errors import ConfigError

PACKAGE = "lumde_ros"


def share_dir() -> Path:
    """The package's share directory: the source tree when running from a checkout (so edits
    take effect), else the ament install (`share/lumde_ros` after `colcon build`)."""
    source = Path(__file__).resolve().parent.parent
    if (source / "package.xml").is_file() and (source / "config").is_dir():
        return source
    try:
        from ament_index_python.packages import get_package_share_directory
    except ImportError as err:
        raise ConfigError(
            f"cannot locate {PACKAGE}'s config: not a source checkout and ament_index_python is "
            "missing; source your ROS 2 workspace (install/setup.bash)") from err
    return Path(get_package_share_directory(PACKAGE))


def cache_dir() -> Path:
    """Where derived files live (textures, ONNX exports): $XDG_CACHE_HOME/lumde_ros."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / PACKAGE


def config_path(name: str) -> Path:
    """Path of `config/<name>`, checked to exist."""
    path = share_dir() / "config" / name
    if not path.is_file():
        raise ConfigError(f"config file {path} not found; reinstall {PACKAGE} (colcon build)")
    return path


def load_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping, with a clear error for a missing or malformed file."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"cannot read config {path}: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} must be a YAML mapping, found {type(data).__name__}")
    return data


def node_defaults(name: str) -> dict[str, Any]:
    """The `ros__parameters` of a ROS params file (`/**` or any single node key)."""
    data = load_yaml(config_path(name))
    for section in data.values():
        if isinstance(section, dict) and "ros__parameters" in section:
            return dict(section["ros__parameters"])
    raise ConfigError(f"{config_path(name)} has no '<node>: ros__parameters:' section")
