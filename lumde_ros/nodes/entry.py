"""One node as its own process: what `ros2 run` starts for every lumde_ros executable."""
from __future__ import annotations

import sys
from collections.abc import Callable

import rclpy
from rclpy._rclpy_pybind11 import RCLError
from rclpy.exceptions import InvalidHandle
from rclpy.executors import Executor, ExternalShutdownException
from rclpy.node import Node

from lumde_ros.errors import LumdeError


def run_node(make_node: Callable[[], Node], make_executor: Callable[[], Executor], name: str,
             args: list[str] | None) -> int:
    """Start the node (a LumdeError while starting is logged as fatal: exit status 1), spin it
    until Ctrl-C or SIGTERM, then destroy it (its own clean-up runs there) and shut down."""
    try:
        rclpy.init(args=args)
    except RCLError as err:  # malformed --ros-args, an unreadable params file
        print(f"{name}: cannot start: {str(err).strip()}", file=sys.stderr)
        return 1
    try:
        node = make_node()
    except LumdeError as err:
        rclpy.logging.get_logger(name).fatal(f"cannot start: {err}")
        rclpy.try_shutdown()
        return 1
    except (KeyboardInterrupt, ExternalShutdownException, RCLError):
        if rclpy.ok():
            raise
        return 0  # Ctrl-C or SIGTERM while loading: rclpy invalidated the context
    executor = make_executor()
    executor.add_node(node)
    try:
        spin(executor)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


def spin(executor: Executor) -> None:
    """`executor.spin()` that survives rclpy's race between destroying a subscription (input_qos
    auto re-creates them; the trainer closes its recording's) and another thread collecting it
    into a wait set (ros2/rclpy#1206, #1284): the collection raises InvalidHandle once, which
    would end the spin and the node, and the next pass no longer sees the destroyed entity.
    A signal that shuts the context down while a pass builds its wait set surfaces as RCLError
    ("context is not valid") instead of ExternalShutdownException: that is a clean stop too."""
    while True:
        try:
            executor.spin()
            return
        except InvalidHandle:
            continue
        except RCLError:
            if executor.context.ok():
                raise
            return
