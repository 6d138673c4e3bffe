"""Running a deployment from the web UI: a form from its input variables, and a run's page with its result.

The form has one field per input variable (numbers with their range and
default, constants read-only, arrays as JSON) and a JSON object for any
other flow parameter; the values are checked against the variables as
``Model.run`` checks them, then submitted to the server's Prefect workers
(never run in the server) and recorded. The run's page reloads itself
(plain HTML refresh) until Prefect says the run is final, then shows the
result: numbers as a table, arrays of numbers as a plot and 2-D arrays (images)
as a heat map (server-rendered SVG).
"""

from __future__ import annotations

import json
import math
from typing import Any

from fastapi import Request
from markupsafe import Markup
from starlette.responses import RedirectResponse, Response

from lume_services.errors import SchedulingNotConfiguredError, ValidationError
from lume_services.ui.pages import Seen, router
from lume_services.ui.render import page
from lume_services.variables.checks import check_inputs

MAX_FORM_FIELDS = 500
FIELD = "in:"  # the form field of input variable NAME is "in:NAME"
PLOT_W, PLOT_H, PAD = 480, 200, 28
IMAGE_CELLS = 96  # an image is drawn as at most this many cells a side


def _number(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValidationError(name, text, "expected a number", "Nothing was submitted.") from None
    return value


def parameters_of(variables: Any, form: Any) -> dict[str, Any]:
    """The run's parameters from the form: each input variable's field, then the JSON object of the rest."""
    if len(form) > MAX_FORM_FIELDS:
        raise ValidationError("form", f"{len(form)} fields", f"expected at most {MAX_FORM_FIELDS}", "Nothing was submitted.")
    parameters: dict[str, Any] = {}
    extra = str(form.get("extra", "") or "").strip()
    if extra:
        try:
            parsed = json.loads(extra)
        except ValueError as exc:
            raise ValidationError("other parameters", extra[:100], f"not JSON ({exc.msg})", "Nothing was submitted.") from None
        if not isinstance(parsed, dict):
            raise ValidationError("other parameters", extra[:100], "expected a JSON object", "Nothing was submitted.")
        named = sorted(set(parsed) & set(variables.inputs))
        if named:
            raise ValidationError("other parameters", ", ".join(named), "are input variables: set them in their "
                                  "own fields", "Nothing was submitted.")  # fmt: skip
        parameters.update(parsed)
    for name, variable in variables.inputs.items():
        text = form.get(FIELD + name)
        if text is None or not str(text).strip():
            continue  # the flow's default
        text = str(text).strip()
        if variable.kind == "scalar":
            parameters[name] = _number(name, text)
        else:
            try:
                parameters[name] = json.loads(text)
            except ValueError:
                parameters[name] = text
    check_inputs(variables, parameters)  # ValidationError naming the input, its value and its range
    return parameters


@router.post("/models/{model_id}/deployments/{deployment_id}/runs")
async def submit_run(request: Request, seen: Seen, model_id: int, deployment_id: int) -> Response:
    form = await request.form(max_fields=MAX_FORM_FIELDS + 10)
    seen.check_form(form.get("csrf"))  # type: ignore[arg-type]
    import anyio.to_thread

    return await anyio.to_thread.run_sync(_submit, request, seen, model_id, deployment_id, form)


def _submit(request: Request, seen: Any, model_id: int, deployment_id: int, form: Any) -> Response:
    from lume_services.api.routes.runs import start_run

    loaded = seen.service.load_deployment(model_id=model_id, deployment_id=deployment_id)
    if loaded.flow is None:
        raise ValidationError("deployment_id", deployment_id, "has no registered flow to run", "Nothing was submitted.")
    seen.access.require_project_of(deployment_id)
    parameters = parameters_of(loaded.variables, form)
    run = start_run(request, seen.access, loaded.deployment, loaded.flow.flow_id, parameters)
    return RedirectResponse(f"/runs/{run.run_id}", status_code=303)


@router.get("/runs/{run_id}")
def run_page(request: Request, seen: Seen, run_id: int) -> Response:
    """A run: its state (the page reloads until it is final), parameters and result, and a link to Prefect."""
    from lume_services.api.routes.runs import refresh

    run = seen.service.get_run(run_id)
    note = None
    if not run.done:
        try:
            run = refresh(request, seen.access, run)
        except SchedulingNotConfiguredError as exc:
            note = str(exc)
    prefect = request.app.state.context.settings.prefect.api_url
    link = f"{prefect.rstrip('/').removesuffix('/api')}/runs/flow-run/{run.prefect_run_id}" if prefect else None
    return page("run.html", viewer=seen, title=f"Run {run_id}", run=run, note=note, prefect_link=link,
                numbers=_numbers(run.result), plots=_plots(run.result))  # fmt: skip


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _numbers(result: Any) -> list[tuple[str, Any]]:
    """The result's numbers (and short text) as rows of a table, by name."""
    if not isinstance(result, dict):
        return [("result", result)] if _is_number(result) else []
    return [(str(k), v) for k, v in result.items() if _is_number(v) or (isinstance(v, str) and len(v) <= 200)]


def _plots(result: Any) -> list[tuple[str, Markup]]:
    """Each array of numbers in the result as a line plot, each 2-D array (an image) as a heat map.

    SVG of numbers only; the label is escaped by the template.
    """
    items = result.items() if isinstance(result, dict) else [("result", result)]
    plots = []
    for name, values in items:
        if isinstance(values, list) and 2 <= len(values) <= 100_000 and all(_is_number(v) for v in values):
            plots.append((str(name), svg_line(values)))
        elif _is_image(values):
            plots.append((str(name), svg_image(values)))
    return plots[:20]


def _is_image(values: Any) -> bool:
    if not isinstance(values, list) or not 2 <= len(values) <= 1024 or not isinstance(values[0], list):
        return False
    width = len(values[0])
    return 2 <= width <= 1024 and all(isinstance(row, list) and len(row) == width and all(_is_number(v) for v in row)
                                      for row in values)  # fmt: skip


def svg_image(rows: list[list[float]], cells: int = IMAGE_CELLS) -> Markup:
    """A 2-D array as a grey-scale heat map of at most ``cells`` x ``cells`` cells (block means)."""
    h, w = len(rows), len(rows[0])
    ny, nx = min(h, cells), min(w, cells)
    grid = [[0.0] * nx for _ in range(ny)]
    counts = [[0] * nx for _ in range(ny)]
    for y, row in enumerate(rows):
        gy = y * ny // h
        for x, v in enumerate(row):
            gx = x * nx // w
            grid[gy][gx] += v
            counts[gy][gx] += 1
    means = [[grid[y][x] / counts[y][x] for x in range(nx)] for y in range(ny)]
    low = min(min(r) for r in means)
    span = (max(max(r) for r in means) - low) or 1.0
    size = 4 if max(nx, ny) > 64 else 6
    rects = "".join(
        f'<rect x="{x * size}" y="{y * size}" width="{size}" height="{size}" fill="rgb({g},{g},{g})"/>'
        for y, r in enumerate(means) for x, v in enumerate(r) for g in (int(255 * (v - low) / span),)
    )
    return Markup(f'<svg class="plot image" viewBox="0 0 {nx * size} {ny * size}" width="{nx * size}" '
                  f'height="{ny * size}" role="img">{rects}</svg>'
                  f'<p class="hint">{h} x {w} values, from {low:.6g} (black) to {low + span:.6g} (white)</p>')


def svg_line(values: list[float]) -> Markup:
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = (PLOT_W - 2 * PAD) / (len(values) - 1)
    points = " ".join(f"{PAD + i * step:.1f},{PLOT_H - PAD - (v - low) / span * (PLOT_H - 2 * PAD):.1f}"
                      for i, v in enumerate(values))  # fmt: skip
    return Markup(
        f'<svg class="plot" viewBox="0 0 {PLOT_W} {PLOT_H}" width="{PLOT_W}" height="{PLOT_H}" role="img">'
        f'<rect x="{PAD}" y="{PAD}" width="{PLOT_W - 2 * PAD}" height="{PLOT_H - 2 * PAD}" fill="none" stroke="#d0d7de"/>'
        f'<polyline fill="none" stroke="#0a5bd3" stroke-width="1.5" points="{points}"/>'
        f'<text x="{PAD}" y="{PAD - 8}" font-size="11">max {high:.6g}</text>'
        f'<text x="{PAD}" y="{PLOT_H - 8}" font-size="11">min {low:.6g} · {len(values)} values</text></svg>'
    )
