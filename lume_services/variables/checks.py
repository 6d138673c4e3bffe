"""Checking a run's parameters against the deployment's input variables, before anything is submitted.

A parameter named like an input variable must suit its kind (a scalar is a
number, an array a list, an image a list of rows), lie in its range, and
leave a constant (``read_only``) at its default. ``validate`` says what a
range violation does, as lume-model's validation config: ``"error"``
(refused), ``"warn"`` (logged, the run goes ahead) or ``"none"`` (variables
are not checked at all). Kinds and constants are always enforced unless
``"none"``. Parameters that are not variables are left to the flow's own
parameter schema.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from lume_services.errors import ValidationError
from lume_services.variables.types import Variable, Variables, is_number

log = logging.getLogger(__name__)
MODES = ("error", "warn", "none")
NOT_SUBMITTED = "Nothing was submitted."


def check_mode(validate: Any) -> str:
    if validate not in MODES:
        raise ValidationError(
            "validate", validate, f"expected one of {', '.join(map(repr, MODES))}", NOT_SUBMITTED
        )
    return validate


def check_inputs(variables: Variables, parameters: Mapping[str, Any], *, validate: str = "error") -> list[str]:
    """Refuse parameters that break the input variables (ValidationError); the range warnings given."""
    if check_mode(validate) == "none" or not isinstance(parameters, Mapping):
        return []  # a non-mapping is the parameter schema's to refuse
    problems: list[tuple[str, Any, str]] = []
    warnings: list[str] = []
    for name, value in parameters.items():
        variable = variables.inputs.get(name)
        if variable is None:
            continue
        problem = _kind_or_constant(variable, value)
        if problem is not None:
            problems.append((name, value, problem))
            continue
        outside = _outside(variable, value)
        if outside is not None and validate == "warn":
            warnings.append(f"input {name!r} {value!r} is {outside}")
        elif outside is not None:
            problems.append((name, value, outside))
    _raise(problems)
    for warning in warnings:
        log.warning("%s; the run goes ahead (validate='warn')", warning)
    return warnings


def _kind_or_constant(variable: Variable, value: Any) -> Any:
    if variable.read_only and value != variable.default:
        return f"a constant ({variable.default!r}); a run cannot change it"
    if variable.kind == "scalar" and not is_number(value, infinite=True):
        return "not a number, and the variable is a scalar"
    if variable.kind == "array" and not isinstance(value, (list, tuple)):
        return "not a list, and the variable is an array"
    if variable.kind == "image" and not (
        isinstance(value, (list, tuple)) and all(isinstance(row, (list, tuple)) for row in value)
    ):
        return "not a list of rows, and the variable is an image"
    return None


def _outside(variable: Variable, value: Any) -> Any:
    if variable.kind != "scalar" or variable.range is None:
        return None
    low, high = variable.range
    if low <= value <= high:
        return None
    return f"outside its range {variable.describe_range()}"


def _raise(problems: list[tuple[str, Any, str]]) -> None:
    if len(problems) == 1:
        name, value, problem = problems[0]
        raise ValidationError(f"input {name!r}", value, f"it is {problem}", NOT_SUBMITTED)
    if problems:
        raise ValidationError(
            "inputs", {name: value for name, value, _ in problems},
            "; ".join(f"{name!r} {value!r} is {problem}" for name, value, problem in problems), NOT_SUBMITTED,
        )  # fmt: skip
