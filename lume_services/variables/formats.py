"""Reading a variables file (YAML or JSON) in any of the LUME dialects, without running code.

* lume-model 1.x and the predecessor's model template:
  ``input_variables: {name: {name, type: scalar|array|image, default, range, units}}``;
* lume-model 2.x: ``variable_type``, ``default``, ``value_range``, ``is_constant``, ``unit``;
* lume-torch / lume-base: ``variable_class: ScalarVariable``, ``default_value``,
  ``value_range``, ``unit``, ``read_only``.

``input_variables`` / ``output_variables`` may be mappings keyed by name or
lists of variables with a ``name``. YAML is read with the safe loader and
every problem names the line of the variable; documents that expand past a
bound through aliases are refused.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, Optional, TypeVar

import yaml

from lume_services.variables.types import Variable, Variables, is_number

T = TypeVar("T")
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MAX_NODES = 200_000  # visits of the YAML graph: aliases cannot blow a small file up
MAX_VARIABLES = 10_000
MAX_NAME = 255
MAX_DEPTH = 32  # nesting of a default or an extra field
SECTIONS = ("input_variables", "output_variables")

_TYPES = {
    "scalar": "scalar", "array": "array", "ndarray": "array", "nd": "array", "image": "image",
    "particle_group": "particle_group", "distribution": "distribution",
}  # fmt: skip
_CLASSES = {
    "ScalarVariable": "scalar", "TorchScalarVariable": "scalar", "NDVariable": "array",
    "TorchNDVariable": "array", "NumpyNDVariable": "array", "ArrayVariable": "array",
    "ImageVariable": "image", "ParticleGroupVariable": "particle_group",
    "DistributionVariable": "distribution",
}  # fmt: skip
_DIALECT_KEYS = (("variable_class", "lume-base"), ("variable_type", "lume-model-2"), ("type", "lume-model-1"))
_KNOWN = {
    "name", "type", "variable_type", "variable_class", "default", "default_value", "range",
    "value_range", "unit", "units", "read_only", "is_constant", "description",
}  # fmt: skip


class Problem(Exception):
    """What is wrong with a variables file, where (line, variable): turned into VariablesFileError."""

    def __init__(self, problem: str, line: Optional[int] = None, variable: Optional[str] = None) -> None:
        super().__init__(problem)
        self.problem, self.line, self.variable = problem, line, variable


def looks_like_variables(text: str) -> bool:
    """Cheap test before parsing: a lume-model config names both sections at its top level."""
    return all(section in text for section in SECTIONS)


def parse(text: str, member: str) -> tuple[dict[str, Any], dict[str, dict[str, int]]]:
    """The document as Python values, and each section's variable lines (YAML only)."""
    try:
        if member.endswith(".json"):
            return _parse_json(text), {}
        return _parse_yaml(text)
    except RecursionError:
        raise Problem("it is nested too deeply") from None


def read_variables(text: str, member: str) -> Variables:
    """The variables of ``text`` (the archive member ``member``); Problem when it is not valid."""
    document, lines = parse(text, member)
    return variables_from(document, lines, member)


def variables_from(document: Any, lines: dict[str, dict[str, int]], member: str) -> Variables:
    """The variables of a parsed document (``parse``'s answer); Problem when they are not valid."""
    if not isinstance(document, dict) or not any(section in document for section in SECTIONS):
        raise Problem("its top level must be a mapping with input_variables and output_variables")
    formats: list[str] = []
    sections = []
    for section in SECTIONS:
        entries = _entries(document.get(section), section, lines.get(section, {}))
        sections.append(
            {name: _variable(raw, name, line, formats) for name, (raw, line) in entries.items()}
        )
    found = sorted(set(formats))
    dialect = found[0] if len(found) == 1 else "mixed" if found else "empty"
    return Variables(inputs=sections[0], outputs=sections[1], source_file=member, format=dialect)


# -- the document ------------------------------------------------------------------


def _parse_json(text: str) -> Any:
    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in pairs:
            if key in seen:
                raise Problem(f"the key {key!r} appears twice in one object", variable=key)
            seen[key] = value
        return seen

    try:
        return json.loads(text, object_pairs_hook=unique, parse_constant=_json_constant)
    except json.JSONDecodeError as exc:
        raise Problem(f"it is not valid JSON ({exc.msg})", line=exc.lineno) from None
    except RecursionError:
        raise Problem("it is nested too deeply") from None


def _json_constant(name: str) -> float:
    return {"Infinity": math.inf, "-Infinity": -math.inf}.get(name, math.nan)


def _parse_yaml(text: str) -> tuple[Any, dict[str, dict[str, int]]]:
    return load_yaml(text, _section_lines)


def load_yaml(text: str, index: Callable[[yaml.Node], T]) -> tuple[Any, T]:
    """The document (safe loader) and ``index(its root node)``, e.g. each entry's line; any problem a Problem."""
    loader = LOADER(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.YAMLError as exc:
            raise _yaml_problem("it is not valid YAML", exc) from None
        if node is None:
            raise Problem("it is empty")
        if "&" in text:  # no anchor, no alias: nothing can expand
            _bounded(node)
        indexed = index(node)
        try:
            return loader.construct_document(node), indexed
        except yaml.YAMLError as exc:  # e.g. a tag the safe loader does not know
            raise _yaml_problem("it cannot be read", exc) from None
    finally:
        loader.dispose()


def _yaml_problem(what: str, exc: yaml.YAMLError) -> Problem:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return Problem(f"{what} ({problem})", line=mark.line + 1 if mark else None)


def _bounded(root: yaml.Node) -> None:
    stack, visits = [root], 0
    while stack:
        node = stack.pop()
        visits += 1
        if visits > MAX_NODES:
            raise Problem(f"it expands to more than {MAX_NODES} values (through aliases?)")
        if isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.extend((key, value))


def _section_lines(root: yaml.Node) -> dict[str, dict[str, int]]:
    """Each variable's line, by section; a name given twice in one section is a Problem."""
    lines: dict[str, dict[str, int]] = {}
    if not isinstance(root, yaml.MappingNode):
        return lines
    for key, value in root.value:
        if not (isinstance(key, yaml.ScalarNode) and key.value in SECTIONS):
            continue
        section: dict[str, int] = {}
        items = value.value if isinstance(value, yaml.MappingNode) else []
        for name_node, _ in items:
            if isinstance(name_node, yaml.ScalarNode):
                line = name_node.start_mark.line + 1
                if name_node.value in section:
                    raise Problem(
                        f"{name_node.value!r} is declared twice in {key.value} "
                        f"(lines {section[name_node.value]} and {line})", line=line, variable=name_node.value,
                    )  # fmt: skip
                section[name_node.value] = line
        lines[key.value] = section
    return lines


# -- one section ---------------------------------------------------------------------


def _entries(value: Any, section: str, lines: dict[str, int]) -> dict[str, tuple[Any, Optional[int]]]:
    if value is None:
        return {}
    if isinstance(value, dict):
        entries = {}
        for key, raw in value.items():
            if not isinstance(key, str):
                raise Problem(f"{section} has the key {key!r}; variable names are text")
            entries[key] = (raw, lines.get(key))
    elif isinstance(value, list):
        entries = {}
        for position, raw in enumerate(value, start=1):
            name = raw.get("name") if isinstance(raw, dict) else None
            if not isinstance(name, str):
                raise Problem(f"entry {position} of {section} has no name")
            if name in entries:
                raise Problem(f"{name!r} is declared twice in {section}", variable=name)
            entries[name] = (raw, None)
    else:
        raise Problem(f"{section} must be a mapping of names to variables, or a list of variables")
    if len(entries) > MAX_VARIABLES:
        raise Problem(f"{section} declares {len(entries)} variables; at most {MAX_VARIABLES} are read")
    return entries


def _variable(raw: Any, name: str, line: Optional[int], formats: list[str]) -> Variable:
    def problem(text: str) -> Problem:
        return Problem(text, line=line, variable=name)

    if not isinstance(raw, dict):
        raise problem("a variable must be a mapping of its fields")
    if not name or len(name) > MAX_NAME:
        raise problem(f"a variable name must have 1 to {MAX_NAME} characters")
    _json_value(name, "name", problem)
    if raw.get("name", name) != name:
        raise problem(f"it is listed as {name!r} but its name field says {raw['name']!r}")
    dialect, kind = _kind(raw, problem)
    formats.append(dialect)
    default = _one_of(raw, ("default", "default_value"), problem)
    value_range = _range(_one_of(raw, ("range", "value_range"), problem), problem)
    unit = _json_value(_text(_one_of(raw, ("unit", "units"), problem), "unit", problem), "unit", problem)
    read_only = _one_of(raw, ("read_only", "is_constant"), problem)
    if read_only is not None and not isinstance(read_only, bool):
        raise problem(f"read_only / is_constant must be true or false, not {read_only!r}")
    default = _json_value(default, "default", problem)
    if kind == "scalar" and default is not None:
        if not is_number(default):
            raise problem(f"the default {default!r} of a scalar must be a number")
        if value_range is not None and not value_range[0] <= default <= value_range[1]:
            raise problem(f"the default {default!r} is outside its range [{value_range[0]}, {value_range[1]}]")
    extra = {k: _json_value(v, k, problem) for k, v in raw.items() if k not in _KNOWN}
    return Variable(
        name=name, kind=kind, default=default, range=value_range, unit=unit, read_only=bool(read_only),
        description=_json_value(_text(raw.get("description"), "description", problem), "description", problem),
        extra=extra,
    )  # fmt: skip


def _kind(raw: dict[str, Any], problem: Callable[[str], Problem]) -> tuple[str, str]:
    for key, dialect in _DIALECT_KEYS:
        if key in raw:
            value = raw[key]
            table = _CLASSES if key == "variable_class" else _TYPES
            kind = table.get(value) if isinstance(value, str) else None
            if kind is None:
                raise problem(f"unknown {key} {value!r}; expected one of {', '.join(table)}")
            return dialect, kind
    raise problem("it declares no type: add type (lume-model 1), variable_type (lume-model 2) or variable_class")


def _one_of(raw: dict[str, Any], keys: tuple[str, ...], problem: Callable[[str], Problem]) -> Any:
    given = [k for k in keys if raw.get(k) is not None]
    if len(given) > 1 and raw[given[0]] != raw[given[1]]:
        raise problem(f"{given[0]} {raw[given[0]]!r} and {given[1]} {raw[given[1]]!r} disagree; keep one")
    return raw[given[0]] if given else None


def _range(value: Any, problem: Callable[[str], Problem]) -> Optional[tuple[float, float]]:
    if value is None:
        return None
    if not (isinstance(value, (list, tuple)) and len(value) == 2):
        raise problem(f"the range {value!r} must be [min, max]")
    low = -math.inf if value[0] is None else value[0]
    high = math.inf if value[1] is None else value[1]
    if not (is_number(low, infinite=True) and is_number(high, infinite=True)):
        raise problem(f"the range {value!r} must hold two numbers")
    if low > high:
        raise problem(f"the range [{value[0]}, {value[1]}] has its min above its max")
    return float(low), float(high)


def _text(value: Any, field: str, problem: Callable[[str], Problem]) -> Optional[str]:
    if value is not None and not isinstance(value, str):
        raise problem(f"its {field} {value!r} must be text")
    return value


def _json_value(value: Any, field: str, problem: Callable[[str], Problem], depth: int = 0) -> Any:
    """``value`` as JSON can hold it: dates become ISO text; NaN, infinities and other types are refused."""
    if depth > MAX_DEPTH:
        raise problem(f"its {field} is nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise problem(f"its {field} holds text that is not valid Unicode (a lone surrogate)") from None
        return value
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise problem(f"its {field} holds {value!r}, which JSON cannot store")
        return value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_json_value(v, field, problem, depth + 1) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v, field, problem, depth + 1) for k, v in value.items()}
    raise problem(f"its {field} holds a {type(value).__name__}, which is not a JSON value")
