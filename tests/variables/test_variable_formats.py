"""Reading variables files in the three LUME dialects, and refusing bad ones with file, line and variable."""

from __future__ import annotations

import json
import math
import textwrap

import pytest

from lume_services.variables.formats import MAX_NODES, Problem, read_variables
from lume_services.variables.types import Variables

LUME_MODEL_1 = """\
input_variables:
  input1:
    name: input1
    type: scalar
    default: 1
    range: [0, 256]
    units: mm
  QUAD:IN20:425:BACT:
    name: QUAD:IN20:425:BACT
    type: scalar
    default: -2.5
    range: [-10, 10]
    is_constant: true
output_variables:
  screen:
    name: screen
    type: image
    x_label: x
    y_label: y
    axis_units: [mm, mm]
    x_min: -1.5
    x_max: 1.5
    y_min: -1
    y_max: 1
"""

LUME_MODEL_2 = """\
model_class: TorchModel
input_variables:
  MedInc:
    variable_type: scalar
    value_range: [0.4999, 15.0001]
    default: 3.7827
    is_constant: false
  HouseAge: {variable_type: scalar, value_range: [1.0, 52.0], default: 29.0, unit: years}
output_variables:
  MedHouseVal: {variable_type: scalar}
model: model.pt
input_transformers: [input_transformers_0.pt]
output_transformers: [output_transformers_0.pt]
output_format: tensor
device: cpu
fixed_model: true
"""

LUME_BASE = {
    "input_variables": [
        {"name": "energy", "variable_class": "ScalarVariable", "default_value": 0.135,
         "value_range": [0.1, 0.2], "unit": "GeV", "read_only": False},
        {"name": "phase", "variable_class": "ScalarVariable", "default_value": 0.0,
         "value_range": ["-Infinity", "Infinity"]},
        {"name": "profile", "variable_class": "TorchNDVariable", "shape": [2, 3]},
    ],
    "output_variables": [
        {"name": "bunch", "variable_class": "ParticleGroupVariable"},
        {"name": "sigma_x", "variable_class": "ScalarVariable", "unit": "m", "read_only": True},
    ],
}  # fmt: skip


def problem(text: str, member: str = "pkg/variables.yml") -> Problem:
    with pytest.raises(Problem) as caught:
        read_variables(textwrap.dedent(text), member)
    return caught.value


class TestDialects:
    def test_lume_model_1_the_predecessors_template(self):
        v = read_variables(LUME_MODEL_1, "pkg/files/variables.yml")
        assert (v.format, v.source_file) == ("lume-model-1", "pkg/files/variables.yml")
        assert list(v.inputs) == ["input1", "QUAD:IN20:425:BACT"]
        one = v.inputs["input1"]
        assert (one.kind, one.default, one.range, one.unit, one.read_only) == ("scalar", 1, (0.0, 256.0), "mm", False)
        assert v.inputs["QUAD:IN20:425:BACT"].read_only
        screen = v.outputs["screen"]
        assert screen.kind == "image"
        assert screen.extra == {"x_label": "x", "y_label": "y", "axis_units": ["mm", "mm"],
                                "x_min": -1.5, "x_max": 1.5, "y_min": -1, "y_max": 1}  # fmt: skip

    def test_lume_model_2_torch_model_config(self):
        v = read_variables(LUME_MODEL_2, "pkg/torch_model.yml")
        assert v.format == "lume-model-2"
        assert v.inputs["MedInc"].range == (0.4999, 15.0001)
        assert v.inputs["HouseAge"].unit == "years"
        assert v.outputs["MedHouseVal"].kind == "scalar"

    def test_lume_base_json_lists_with_classes_and_open_ranges(self):
        v = read_variables(json.dumps(LUME_BASE).replace('"-Infinity"', "-Infinity").replace('"Infinity"', "Infinity"),
                           "pkg/variables.json")  # fmt: skip
        assert v.format == "lume-base"
        assert v.inputs["energy"].default == 0.135 and v.inputs["energy"].unit == "GeV"
        assert v.inputs["phase"].range == (-math.inf, math.inf)
        assert v.inputs["profile"].kind == "array" and v.inputs["profile"].extra == {"shape": [2, 3]}
        assert v.outputs["bunch"].kind == "particle_group"
        assert v.outputs["sigma_x"].read_only

    def test_stored_form_round_trips_and_is_strict_json(self):
        v = read_variables(json.dumps(LUME_BASE).replace('"-Infinity"', "null").replace('"Infinity"', "null"),
                           "pkg/variables.json")  # fmt: skip
        row = v.stored()
        text = json.dumps(row, allow_nan=False)  # open range ends are null, never Infinity
        assert '"range": [null, null]' in text
        assert Variables.from_stored(json.loads(text)) == v

    def test_a_file_with_empty_sections(self):
        v = read_variables("input_variables: {}\noutput_variables:\n", "pkg/variables.yml")
        assert (v.inputs, v.outputs, v.format, v.declared) == ({}, {}, "empty", True)


class TestRefused:
    @pytest.mark.parametrize(
        "text, line, says",
        [
            ("input_variables: [unclosed\n", 2, "not valid YAML"),
            ("input_variables:\n  a: {type: scalar, range: [3, 1]}\n", 2, "min above its max"),
            ("input_variables:\n  a: {type: scalar, default: 9, range: [0, 1]}\n", 2, "outside its range"),
            ("input_variables:\n  a: {type: tensor}\n", 2, "unknown type 'tensor'"),
            ("input_variables:\n  a: {variable_class: FooVariable}\n", 2, "unknown variable_class"),
            ("input_variables:\n  a: {default: 1}\n", 2, "declares no type"),
            ("input_variables:\n  a: {type: scalar}\n  b: {type: scalar}\n  a: {type: array}\n", 4,
             "declared twice in input_variables (lines 2 and 4)"),
            ("input_variables:\n  a: {type: scalar, default: abc}\n", 2, "must be a number"),
            ("input_variables:\n  a: {type: scalar, default: .nan}\n", 2, "which JSON cannot store"),
            ("input_variables:\n  a: {name: b, type: scalar}\n", 2, "its name field says 'b'"),
            ("input_variables:\n  a: {type: scalar, range: [0, 1, 2]}\n", 2, "must be [min, max]"),
            ("input_variables:\n  a: {type: scalar, default: 1, default_value: 2}\n", 2, "disagree"),
            ("input_variables:\n  a: {type: scalar, is_constant: maybe}\n", 2, "true or false"),
            ("input_variables:\n  a: !!python/object:os.system {}\n", 2, "cannot be read"),
            ("- just\n- a list\n", None, "top level must be a mapping"),
        ],
    )  # fmt: skip
    def test_names_the_line_the_variable_and_the_problem(self, text, line, says):
        caught = problem(text)
        assert says in caught.problem
        assert caught.line == line
        if "YAML" not in caught.problem and "cannot be read" not in caught.problem and line:
            assert caught.variable == "a"

    def test_duplicate_names_in_a_list_and_in_json(self):
        assert "declared twice" in problem("input_variables:\n  - {name: a, type: scalar}\n  - {name: a, type: array}\n").problem
        dup = problem('{"input_variables": {"a": {"type": "scalar"}, "a": {"type": "array"}}}', "pkg/v.json")
        assert "appears twice" in dup.problem and dup.variable == "a"

    def test_json_syntax_error_has_its_line(self):
        caught = problem('{\n  "input_variables": {\n    "a": }\n}', "pkg/variables.json")
        assert "not valid JSON" in caught.problem and caught.line == 3

    def test_an_alias_bomb_is_refused_quickly(self):
        bomb = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
        bomb += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
        bomb += ["input_variables:", "  a: {type: scalar, default: 1, extra: *a8}"]
        caught = problem("\n".join(bomb) + "\n")
        assert f"more than {MAX_NODES} values" in caught.problem

    def test_deep_nesting_is_refused_not_a_crash(self):
        text = '{"input_variables": {"a": {"type": "array", "default": ' + "[" * 5000 + "]" * 5000 + "}}}"
        assert "nested" in problem(text, "pkg/variables.json").problem

    def test_a_lone_surrogate_is_refused(self):
        yaml_says = problem('input_variables:\n  a: {type: scalar, unit: "\\ud800"}\n').problem
        assert "invalid Unicode" in yaml_says  # PyYAML refuses the escape itself
        text = '{"input_variables": {"a": {"type": "scalar", "unit": "\\ud800"}}}'
        assert "not valid Unicode" in problem(text, "pkg/variables.json").problem
