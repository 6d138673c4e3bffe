"""The flow-of-flows YAML, in the predecessor's format.

    name: bunch-length-pipeline
    project_name: test
    composing_flows:
      - name: my-model              # a registered flow in the project (its live deployment)
      - name: fixture-flow
        project_name: test          # optional, defaults to the composition's project
        mapped_parameters:
          input1:
            parent_flow_name: my-model
            parent_task_name: evaluate   # optional: a task's result instead of the flow's
            map_type: raw                # raw | file | db: the value is passed as returned
            attribute_index: [bunch_length_fs]

A step may name ``flow_id`` instead of ``name`` to pin one Prefect deployment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lume_services.errors import ValidationError as LumeValidationError

# The Prefect flow every composite's parent deployment runs (see composite.py).
COMPOSITE_FLOW_NAME = "lume-flow-of-flows"
COMPOSITE_PACKAGE = "lume_services.flows.composite"
COMPOSITE_ENTRYPOINT = f"{COMPOSITE_PACKAGE}.run_flow_of_flows"


class MappedParameter(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    parent_flow_name: str = Field(description="An earlier step whose result feeds this parameter.")
    parent_task_name: Optional[str] = Field(
        default=None, description="A task of that step, instead of its result."
    )
    map_type: Literal["raw", "file", "db"] = Field(default="raw", description="How the value is passed on.")
    attribute_index: Optional[list[Union[str, int]]] = Field(
        default=None, description="Keys/indices selecting into the result."
    )


class ComposingFlow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Optional[str] = Field(default=None, description="Flow name of a registered flow.")
    flow_id: Optional[str] = Field(default=None, description="Or: the Prefect deployment id of one.")
    project_name: Optional[str] = None
    mapped_parameters: dict[str, MappedParameter] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _named(self) -> ComposingFlow:
        if not (self.name or self.flow_id):
            raise ValueError("each composing flow needs a name (or a flow_id)")
        return self


class FlowOfFlowsSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=200)
    project_name: str = Field(min_length=1, max_length=100)
    composing_flows: list[ComposingFlow] = Field(min_length=1)

    @classmethod
    def from_yaml(cls, path: Union[str, Path]) -> FlowOfFlowsSpec:
        import yaml

        try:
            data: Any = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise LumeValidationError("flow-of-flows file", str(path), f"cannot be read ({exc})") from None
        return cls.parse(data, source=str(path))

    @classmethod
    def parse(cls, data: Any, source: str = "flow of flows") -> FlowOfFlowsSpec:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'top level'}: {e['msg']}"
                for e in exc.errors(include_input=False, include_url=False)
            )
            raise LumeValidationError(source, "(YAML)", problems) from None
