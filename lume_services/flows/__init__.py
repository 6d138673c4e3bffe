"""Flows of flows: a YAML composition of registered flows, run in order."""

from lume_services.flows.spec import ComposingFlow, FlowOfFlowsSpec, MappedParameter

__all__ = ["ComposingFlow", "FlowOfFlowsSpec", "MappedParameter"]
