"""Declaring parameters from a spec table with descriptors, defaults taken from config/*.yaml."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import ParameterException
from rclpy.node import Node
from rclpy.parameter import Parameter

from lumde_ros.errors import ConfigError


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: its description, whether it needs a restart, and its allowed values."""

    name: str
    description: str
    read_only: bool = False
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None

    def descriptor(self, default: Any) -> ParameterDescriptor:
        """ParameterDescriptor with the description and range, as `ros2 param describe` shows."""
        desc = ParameterDescriptor(description=self.description, read_only=self.read_only)
        if self.choices:
            desc.additional_constraints = f"one of: {', '.join(self.choices)}"
        if self.low is not None and isinstance(default, float):
            desc.floating_point_range = [FloatingPointRange(
                from_value=float(self.low), to_value=float(self.high), step=0.0)]
        elif self.low is not None and isinstance(default, int) and not isinstance(default, bool):
            desc.integer_range = [IntegerRange(from_value=int(self.low), to_value=int(self.high),
                                               step=1)]
        return desc

    def check(self, value: Any) -> None:
        """Raise ConfigError when `value` is not one of `choices`."""
        if self.choices and value not in self.choices:
            raise ConfigError(f"parameter '{self.name}' is '{value}'; expected one of "
                              f"{', '.join(self.choices)}")


def declare_parameters(node: Node, specs: tuple[ParamSpec, ...],
                       defaults: dict[str, Any]) -> dict[str, Any]:
    """Declare every spec with its yaml default; return the values in effect (after any
    params file or command-line override), each checked against its choices."""
    missing = [s.name for s in specs if s.name not in defaults]
    if missing:
        raise ConfigError(f"config has no default for {missing}; reinstall lumde_ros")
    floats = {s.name for s in specs if isinstance(defaults[s.name], float)}

    def integers_as_floats(params: list[Parameter]) -> list[Parameter]:
        """`ros2 param set /node min_depth_m 1` sends an integer; take it as 1.0."""
        return [Parameter(q.name, Parameter.Type.DOUBLE, float(q.value))
                if q.name in floats and q.type_ == Parameter.Type.INTEGER else q
                for q in params]

    node.add_pre_set_parameters_callback(integers_as_floats)
    # `-p camera_height_m:=1` or `camera_height_m: 1` in a params file is an integer too, and a
    # declaration's override does not pass the callback above: convert those before declaring.
    overrides = getattr(node, "_parameter_overrides", {})
    for name in floats & overrides.keys():
        if overrides[name].type_ == Parameter.Type.INTEGER:
            overrides[name] = Parameter(name, Parameter.Type.DOUBLE, float(overrides[name].value))
    values = {}
    for spec in specs:
        try:
            value = node.declare_parameter(spec.name, defaults[spec.name],
                                           spec.descriptor(defaults[spec.name])).value
        except ParameterException as err:  # a wrong type or range from -p or a params file
            kind = type(defaults[spec.name]).__name__
            raise ConfigError(f"parameter '{spec.name}' ({kind}, default "
                              f"{defaults[spec.name]!r}): {err}") from None
        spec.check(value)
        values[spec.name] = value
    return values


def checked_changes(specs: tuple[ParamSpec, ...], params: list[Parameter]) -> dict[str, Any]:
    """The new values of the declared parameters among `params`, each checked against its
    choices (ConfigError): what an on-set-parameters callback must refuse before a change
    lands, since a descriptor carries ranges but not a list of allowed strings."""
    by_name = {spec.name: spec for spec in specs}
    changes = {q.name: q.value for q in params if q.name in by_name}
    for name, value in changes.items():
        by_name[name].check(value)
    return changes
