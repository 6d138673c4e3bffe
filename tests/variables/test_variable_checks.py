"""A run's parameters against the input variables: kinds, ranges, constants, and validate=warn/none."""

from __future__ import annotations

import logging
import re

import pytest

from lume_services.errors import ValidationError
from lume_services.variables.checks import check_inputs
from lume_services.variables.formats import read_variables

VARIABLES = read_variables(
    """\
input_variables:
  QUAD:IN20:425:BACT: {type: scalar, default: 0.5, range: [-10, 10], units: kG}
  charge: {type: scalar, default: 0.25, range: [0, .inf]}
  gun_phase: {type: scalar, default: 12.0, is_constant: true}
  profile: {type: array}
  screen: {type: image}
output_variables:
  sigma_x: {type: scalar}
""",
    "pkg/variables.yml",
)


class TestCheckInputs:
    def test_values_that_fit_pass_and_other_parameters_are_left_to_the_flow(self):
        ok = {"QUAD:IN20:425:BACT": -10, "charge": 1e9, "gun_phase": 12.0, "profile": [1, 2],
              "screen": [[1, 2], [3, 4]], "sleep": "not a variable"}  # fmt: skip
        assert check_inputs(VARIABLES, ok) == []

    def test_out_of_range_names_the_variable_its_range_and_the_value(self):
        with pytest.raises(ValidationError) as caught:
            check_inputs(VARIABLES, {"QUAD:IN20:425:BACT": 99.0})
        assert str(caught.value) == (
            "Invalid input 'QUAD:IN20:425:BACT' 99.0: it is outside its range [-10, 10] kG. Nothing was submitted."
        )
        assert caught.value.value == 99.0

    @pytest.mark.parametrize(
        "parameters, says",
        [
            ({"charge": -1}, "outside its range [0, inf]"),
            ({"gun_phase": 13.0}, "a constant (12.0); a run cannot change it"),
            ({"QUAD:IN20:425:BACT": "5"}, "not a number"),
            ({"QUAD:IN20:425:BACT": True}, "not a number"),
            ({"QUAD:IN20:425:BACT": float("nan")}, "not a number"),
            ({"profile": 3.0}, "not a list"),
            ({"screen": [1, 2]}, "not a list of rows"),
        ],
    )
    def test_each_rule(self, parameters, says):
        with pytest.raises(ValidationError, match=re.escape(says)):
            check_inputs(VARIABLES, parameters)

    def test_several_problems_are_reported_together(self):
        with pytest.raises(ValidationError) as caught:
            check_inputs(VARIABLES, {"charge": -1, "gun_phase": 0.0})
        assert "'charge' -1 is outside" in str(caught.value) and "'gun_phase' 0.0 is a constant" in str(caught.value)

    def test_warn_logs_range_errors_but_still_refuses_kinds_and_constants(self, caplog):
        with caplog.at_level(logging.WARNING, logger="lume_services.variables.checks"):
            warnings = check_inputs(VARIABLES, {"QUAD:IN20:425:BACT": 11}, validate="warn")
        assert warnings == ["input 'QUAD:IN20:425:BACT' 11 is outside its range [-10, 10] kG"]
        assert "validate='warn'" in caplog.text
        with pytest.raises(ValidationError, match="constant"):
            check_inputs(VARIABLES, {"gun_phase": 0.0}, validate="warn")

    def test_none_checks_nothing_and_an_unknown_mode_is_refused(self):
        assert check_inputs(VARIABLES, {"gun_phase": 0.0, "charge": -5}, validate="none") == []
        with pytest.raises(ValidationError, match="Invalid validate 'strict'"):
            check_inputs(VARIABLES, {}, validate="strict")
