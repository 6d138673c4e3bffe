"""The model's Prefect flow: validate inputs, evaluate, summarise."""

from __future__ import annotations

from prefect import flow as prefect_flow
from prefect import task

from my_model.model import BunchLengthModel


@task
def validate(input1: float, input2: float) -> dict[str, float]:
    if not (-10.0 <= input1 <= 10.0 and -10.0 <= input2 <= 10.0):
        raise ValueError(f"inputs out of the surrogate's range [-10, 10]: {input1}, {input2}")
    return {"input1": float(input1), "input2": float(input2)}


@task
def evaluate(inputs: dict[str, float]) -> dict[str, float]:
    return BunchLengthModel().evaluate(**inputs)


@prefect_flow(name="my-model")
def flow(input1: float = 1.0, input2: float = 2.0) -> dict[str, float]:
    """Evaluate the bunch-length surrogate at (input1, input2)."""
    return evaluate(validate(input1, input2))
