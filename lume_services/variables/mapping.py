"""Checking a deployment template's ``pv_mapping.yaml`` against a deployment's variables.

The shape (slaclab/lume-model-deployment-template)::

    input_variables:            # keyed by model input
      model_input_1:
        symbols: [INPUT:PV:1, INPUT:PV:2]
        formula: (INPUT:PV:1**2 + INPUT:PV:2**2)**(1/2)
        proto: ca               # ca | pva
      model_input_2:
        formula: "1.850"        # a constant: no symbols
    output_variables:           # keyed by output PV
      OUTPUT:PV:1:
        symbols: [model_output_1]
        formula: model_output_1 * 2.0 + 1.0
        proto: pva

Reported: every model input neither mapped nor constant, every mapping to a
name the model lacks, formulas that do not parse or use symbols they do not
declare, constants that differ from the model's constant or leave its range,
unknown protocols, and names mapped twice. Formulas are read as the template
reads them (``:`` becomes ``_``) by sympy's parser, after a syntax check that
lets through only numbers, names, arithmetic and a fixed list of functions:
no formula text is ever evaluated as Python.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from typing import Any, Optional

import yaml

from lume_services.errors import ConfigurationError
from lume_services.variables.formats import Problem, load_yaml
from lume_services.variables.types import Variables, is_number

PROTOCOLS = ("ca", "pva")
SECTIONS = ("input_variables", "output_variables")
FUNCTIONS = frozenset(
    "sqrt exp log ln sin cos tan asin acos atan atan2 sinh cosh tanh Abs abs sign floor ceiling Min Max".split()
)
CONSTANTS = frozenset({"pi", "E"})
MAX_FORMULA = 2000
_OPERATORS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.Mod, ast.FloorDiv, ast.BitXor, ast.USub, ast.UAdd)


@dataclass(frozen=True)
class Finding:
    """One problem of a mapping: which section and name, where, and what is wrong."""

    section: str
    name: Optional[str]
    line: Optional[int]
    problem: str

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        subject = f"{self.section} {self.name!r}: " if self.name else f"{self.section}: "
        return f"{where}{subject}{self.problem}"


def check_mapping(variables: Variables, text: str) -> list[Finding]:
    """Every problem of the mapping ``text`` against ``variables`` ([] when it is clean)."""
    try:
        document, lines, twice = _load(text)
    except Problem as exc:
        return [Finding("file", None, exc.line, exc.problem)]
    if not isinstance(document, dict) or not any(s in document for s in SECTIONS):
        return [Finding("file", None, None, "its top level must have input_variables and output_variables")]
    findings = [Finding(section, name, line, "is mapped twice") for section, name, line in twice]
    inputs = _section(document, "input_variables", findings)
    outputs = _section(document, "output_variables", findings)
    for name, variable in variables.inputs.items():
        if name not in inputs and not variable.read_only:
            findings.append(Finding("input_variables", name, None, "this model input is neither mapped nor constant"))
    for name, entry in inputs.items():
        findings.extend(_input(name, entry, variables, lines["input_variables"].get(name)))
    for name, entry in outputs.items():
        findings.extend(_output(name, entry, variables, lines["output_variables"].get(name)))
    return findings


# -- the file ---------------------------------------------------------------------------


def _load(text: str) -> tuple[Any, dict[str, dict[str, int]], list[tuple[str, str, int]]]:
    """The document, each entry's line per section, and the names given twice in a section."""
    document, (lines, twice) = load_yaml(text, _entry_lines)
    return document, lines, twice


def _entry_lines(root: yaml.Node) -> tuple[dict[str, dict[str, int]], list[tuple[str, str, int]]]:
    lines: dict[str, dict[str, int]] = {s: {} for s in SECTIONS}
    twice: list[tuple[str, str, int]] = []
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            if isinstance(key, yaml.ScalarNode) and key.value in SECTIONS and isinstance(value, yaml.MappingNode):
                for name, _ in value.value:
                    line = name.start_mark.line + 1
                    if name.value in lines[key.value]:
                        twice.append((key.value, name.value, line))
                    lines[key.value][name.value] = line  # the last one is the one read
    return lines, twice


def _section(document: dict[str, Any], section: str, findings: list[Finding]) -> dict[str, Any]:
    value = document.get(section)
    if value is None:
        return {}
    if not isinstance(value, dict):
        findings.append(Finding(section, None, None, "must be a mapping of names to entries"))
        return {}
    return {str(k): v for k, v in value.items()}


# -- entries ------------------------------------------------------------------------------


def _input(name: str, entry: Any, variables: Variables, line: Optional[int]) -> list[Finding]:
    def finding(problem: str) -> Finding:
        return Finding("input_variables", name, line, problem)

    found: list[Finding] = []
    if name not in variables.inputs:
        known = ", ".join(variables.inputs) or "(none)"
        found.append(finding(f"the model has no input of this name (its inputs: {known})"))
    shape = _entry(entry, finding, symbols_required=False)
    if isinstance(shape, Finding):
        return [*found, shape]
    symbols, formula = shape
    expression = _formula(formula, symbols, finding, found)
    variable = variables.inputs.get(name)
    if not symbols and expression is not None and variable is not None:
        found.extend(_constant(expression, formula, variable, finding))
    return found


def _output(name: str, entry: Any, variables: Variables, line: Optional[int]) -> list[Finding]:
    def finding(problem: str) -> Finding:
        return Finding("output_variables", name, line, problem)

    shape = _entry(entry, finding, symbols_required=True)
    if isinstance(shape, Finding):
        return [shape]
    symbols, formula = shape
    found = [
        finding(f"its symbol {s!r} is not an output of the model (its outputs: {', '.join(variables.outputs) or '(none)'})")
        for s in symbols
        if s not in variables.outputs
    ]
    _formula(formula, symbols, finding, found)
    return found


def _entry(entry: Any, finding: Any, *, symbols_required: bool) -> Any:
    """(symbols, formula) of an entry, or the Finding that says why it has none."""
    if not isinstance(entry, dict):
        return finding("an entry must be a mapping with a formula (and symbols)")
    if entry.get("formula") is None:
        return finding("it has no formula")
    symbols = entry.get("symbols") or []
    if not (isinstance(symbols, list) and all(isinstance(s, str) for s in symbols)):
        return finding(f"its symbols {symbols!r} must be a list of names")
    if symbols_required and not symbols:
        return finding("it has no symbols (an output names the model outputs it is computed from)")
    proto = entry.get("proto")
    if proto is not None and proto not in PROTOCOLS:
        return finding(f"its proto {proto!r} is not one of {', '.join(PROTOCOLS)}")
    return symbols, str(entry["formula"])


def _formula(formula: str, symbols: list[str], finding: Any, found: list[Finding]) -> Any:
    """The parsed formula (a sympy expression), adding findings for what is wrong with it."""
    renamed = {s.replace(":", "_"): s for s in symbols}
    try:
        names = _names(formula.replace(":", "_"))
    except Problem as exc:
        found.append(finding(f"its formula {formula!r} {exc.problem}"))
        return None
    undeclared = sorted(n for n in names if n not in renamed and n not in CONSTANTS)
    if undeclared:
        found.append(finding(f"its formula uses {', '.join(undeclared)}, which its symbols do not declare"))
    return _sympy(formula.replace(":", "_"), names)


def _names(text: str) -> set[str]:
    """The variable names of a formula whose syntax is only arithmetic (Problem otherwise)."""
    if len(text) > MAX_FORMULA:
        raise Problem(f"is longer than {MAX_FORMULA} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise Problem(f"does not parse ({exc.msg})") from None
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if not (isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS) or node.keywords:
                raise Problem(f"calls something other than {', '.join(sorted(FUNCTIONS))}")
        elif isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
                raise Problem(f"holds {node.value!r}, which is not a number")
        elif not isinstance(node, (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Load, *_OPERATORS)):
            raise Problem(f"uses {type(node).__name__}, which is not arithmetic")
    return {n for n in names if n not in FUNCTIONS}


def _sympy(text: str, names: set[str]) -> Any:
    """sympy's reading of a formula already checked by ``_names`` (so only arithmetic reaches it)."""
    try:
        import sympy
        from sympy.parsing.sympy_parser import convert_xor, parse_expr, standard_transformations
    except ImportError:
        raise ConfigurationError(
            "Checking a PV mapping needs sympy; install it with pip install 'lume-services[mapping]'."
        ) from None
    local = {n: sympy.Symbol(n) for n in names if n not in CONSTANTS}
    try:
        return parse_expr(text.strip(), local_dict=local, transformations=(*standard_transformations, convert_xor))
    except (SyntaxError, TypeError, ValueError, sympy.SympifyError):
        return None


def _constant(expression: Any, formula: str, variable: Any, finding: Any) -> list[Finding]:
    if not expression.is_number:
        return [finding(f"its formula {formula!r} has no symbols but is not a number")]
    value = float(expression)
    if variable.read_only and is_number(variable.default) and not math.isclose(value, variable.default, rel_tol=1e-12):
        return [finding(f"its constant {value:g} differs from the model's constant {variable.default!r}")]
    if variable.range is not None and not variable.range[0] <= value <= variable.range[1]:
        return [finding(f"its constant {value:g} is outside the input's range {variable.describe_range()}")]
    return []
