"""A model's input and output variables, as the registry keeps them.

One shape for the three dialects of the LUME ecosystem (lume-model 1.x,
lume-model 2.x, lume-torch / lume-base): a name, a kind, a default, a range,
a unit and whether it is read-only (a constant), plus the dialect's other
fields in ``extra`` (an image's axis labels, an array's shape...).

Stored as JSON: an unbounded end of a range (``inf`` in the file) is kept as
``null``, since JSON has no infinity.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, field_serializer

KINDS = ("scalar", "array", "image", "particle_group", "distribution")


class Variable(BaseModel):
    """One input or output of a model.

    ``range`` is ``(low, high)`` with ``-inf`` / ``inf`` for an open end;
    ``read_only`` marks a constant (a run may not change its value).
    """

    model_config = ConfigDict(frozen=True)

    name: str
    kind: str
    default: Any = None
    range: Optional[tuple[float, float]] = None
    unit: Optional[str] = None
    read_only: bool = False
    description: Optional[str] = None
    extra: dict[str, Any] = {}

    @field_serializer("range", when_used="json")
    def _open_ends_as_null(self, value: Optional[tuple[float, float]]) -> Any:
        return None if value is None else open_ends(value)

    def stored(self) -> dict[str, Any]:
        """The JSON form kept in the database (fields at their defaults left out)."""
        out: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.default is not None:
            out["default"] = self.default
        if self.range is not None:
            out["range"] = open_ends(self.range)
        for field in ("unit", "description"):
            if getattr(self, field) is not None:
                out[field] = getattr(self, field)
        if self.read_only:
            out["read_only"] = True
        if self.extra:
            out["extra"] = self.extra
        return out

    @classmethod
    def from_stored(cls, data: dict[str, Any]) -> Variable:
        values = dict(data)
        if values.get("range") is not None:
            low, high = values["range"]
            values["range"] = (-math.inf if low is None else low, math.inf if high is None else high)
        return cls(**values)

    def describe_range(self, *, with_unit: bool = True) -> str:
        """``[low, high] unit`` as people write it (``inf`` for an open end)."""
        if self.range is None:
            return "(any)"
        low, high = self.range
        unit = f" {self.unit}" if self.unit and with_unit else ""
        return f"[{_show(low)}, {_show(high)}]{unit}"


class Variables(BaseModel):
    """A deployment's inputs and outputs, keyed by name in file order.

    ``source_file`` is the archive member they were read from and ``format``
    its dialect (``lume-model-1``, ``lume-model-2``, ``lume-base``); both
    are None for a package that declares no variables.
    """

    model_config = ConfigDict(frozen=True)

    inputs: dict[str, Variable] = {}
    outputs: dict[str, Variable] = {}
    source_file: Optional[str] = None
    format: Optional[str] = None

    @property
    def declared(self) -> bool:
        """Whether the package declared variables at all."""
        return self.source_file is not None

    def stored(self) -> dict[str, Any]:
        """The deployment_variables row's values (without deployment_id)."""
        return {
            "source_file": self.source_file,
            "format": self.format,
            "inputs": [v.stored() for v in self.inputs.values()],
            "outputs": [v.stored() for v in self.outputs.values()],
        }

    @classmethod
    def from_stored(cls, row: Any) -> Variables:
        """From a deployment_variables row (or a mapping of its columns); None gives no variables."""
        if row is None:
            return NO_VARIABLES
        get = row.get if isinstance(row, Mapping) else lambda k: getattr(row, k)
        return cls(
            inputs={v["name"]: Variable.from_stored(v) for v in get("inputs")},
            outputs={v["name"]: Variable.from_stored(v) for v in get("outputs")},
            source_file=get("source_file"),
            format=get("format"),
        )


NO_VARIABLES = Variables()


def is_number(value: Any, *, infinite: bool = False) -> bool:
    """A real number: not a bool, not NaN, and finite unless ``infinite``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return not math.isnan(value) and (infinite or not math.isinf(value))


def open_ends(value: tuple[float, float]) -> list[Optional[float]]:
    """A range as JSON holds it: an infinite end is null."""
    return [None if math.isinf(end) else end for end in value]


def _show(value: float) -> str:
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(value) if isinstance(value, float) and not value.is_integer() else f"{value:g}"
