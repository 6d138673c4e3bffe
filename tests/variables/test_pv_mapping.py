"""check-mapping's rules on the deployment template's pv_mapping.yaml shape; formulas are never evaluated."""

from __future__ import annotations

import pytest

from lume_services.variables.formats import read_variables
from lume_services.variables.mapping import check_mapping

VARIABLES = read_variables(
    """\
input_variables:
  model_input_1: {type: scalar, range: [0, 100]}
  model_input_2: {type: scalar, default: 1.85, is_constant: true}
  model_input_3: {type: scalar, range: [-5, 5]}
  fixed_in_model: {type: scalar, default: 3, is_constant: true}
output_variables:
  model_output_1: {type: scalar}
  model_output_2: {type: scalar}
""",
    "pkg/variables.yml",
)

# The template README's example, completed for these variables.
CLEAN = """\
input_variables:
  model_input_1:
    symbols:
      - INPUT:PV:1
      - INPUT:PV:2
    formula: (INPUT:PV:1**2 + INPUT:PV:2**2)**(1/2)
    proto: ca
  model_input_2:
    formula: "1.850"  # constant value needs to match lume-model config exactly
  model_input_3:
    symbols:
      - INPUT:PV:3
    formula: sqrt(abs(INPUT:PV:3)) * pi
    proto: pva
output_variables:
  OUTPUT:PV:1:
    symbols:
      - model_output_1
    formula: model_output_1 * 2.0 + 1.0
    proto: pva
  OUTPUT:PV:2:
    symbols: [model_output_1, model_output_2]
    formula: model_output_1 ^ 2 - model_output_2
"""


def messages(text: str) -> list[str]:
    return [str(f) for f in check_mapping(VARIABLES, text)]


class TestCheckMapping:
    def test_the_templates_example_is_clean(self):
        assert messages(CLEAN) == []

    def test_every_problem_is_listed_with_its_line(self):
        broken = """\
input_variables:
  model_input_1:
    symbols: [INPUT:PV:1]
    formula: INPUT:PV:1 + INPUT:PV:9
    proto: http
  model_input_2:
    formula: "2.0"
  not_an_input:
    formula: "1"
output_variables:
  OUTPUT:PV:1:
    symbols: [model_output_7]
    formula: model_output_7 * (
  OUTPUT:PV:1:
    symbols: [model_output_1]
    formula: model_output_1
"""
        found = messages(broken)
        assert found == [
            "line 14: output_variables 'OUTPUT:PV:1': is mapped twice",
            "input_variables 'model_input_3': this model input is neither mapped nor constant",
            "line 2: input_variables 'model_input_1': its proto 'http' is not one of ca, pva",
            "line 6: input_variables 'model_input_2': its constant 2 differs from the model's constant 1.85",
            "line 8: input_variables 'not_an_input': the model has no input of this name "
            "(its inputs: model_input_1, model_input_2, model_input_3, fixed_in_model)",
        ]  # the second OUTPUT:PV:1 is the one YAML keeps (and the template would read)
        assert "('(' was never closed)" in messages(broken.replace("  OUTPUT:PV:1:\n    symbols: [model_output_1]\n    formula: model_output_1\n", ""))[-1]

    def test_undeclared_symbols_and_constants_outside_the_range(self):
        text = CLEAN.replace("formula: sqrt(abs(INPUT:PV:3)) * pi", "formula: INPUT:PV:3 + OTHER:PV")
        assert messages(text) == [
            "line 10: input_variables 'model_input_3': its formula uses OTHER_PV, which its symbols do not declare"
        ]
        text = CLEAN.replace("    symbols:\n      - INPUT:PV:3\n    formula: sqrt(abs(INPUT:PV:3)) * pi\n",
                             '    formula: "7"\n')  # fmt: skip
        assert messages(text) == [
            "line 10: input_variables 'model_input_3': its constant 7 is outside the input's range [-5, 5]"
        ]

    @pytest.mark.parametrize(
        "formula, says",
        [
            ("__import__('os').system('touch /tmp/pwned')", "calls something other than"),
            ("INPUT:PV:1.__class__", "not arithmetic"),
            ("[x for x in INPUT:PV:1]", "not arithmetic"),
            ("lambda: 1", "does not parse"),
            ("'text'", "not a number"),
            ("INPUT:PV:1 if 1 else 2", "not arithmetic"),
        ],
    )
    def test_formulas_beyond_arithmetic_are_refused_without_running_them(self, formula, says, tmp_path):
        text = CLEAN.replace("(INPUT:PV:1**2 + INPUT:PV:2**2)**(1/2)", formula.replace("'", "''").join("''"))
        found = messages(text)
        assert len(found) == 1 and says in found[0]

    def test_not_yaml_or_not_a_mapping(self):
        assert messages("input_variables: [unclosed\n")[0].startswith("line 2: file: it is not valid YAML")
        assert messages("- a list\n") == ["file: its top level must have input_variables and output_variables"]
