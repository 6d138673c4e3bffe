"""A tiny surrogate: bunch length (fs) from two magnet settings, with numpy."""

from __future__ import annotations

import numpy as np


class BunchLengthModel:
    """Quadratic response surface fitted offline; inputs in amperes."""

    input_names = ("input1", "input2")
    coefficients = np.array([42.0, -3.5, 1.25, 0.75, -0.2, 0.05])

    def evaluate(self, input1: float, input2: float) -> dict[str, float]:
        x = np.array([1.0, input1, input2, input1 * input1, input1 * input2, input2 * input2])
        length = float(self.coefficients @ x)
        return {"bunch_length_fs": length, "peak_current_ka": float(np.round(12.0 / max(length, 1e-9), 6))}
