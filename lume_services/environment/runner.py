"""Run code in a deployment environment's own interpreter, never in ours.

The child is started isolated (``python -I``) with a minimal environment
(no LUME_* variables, so no secrets), a timeout, and answers with one JSON
document on stdout. Errors carry the tail of its stderr.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any, Optional

from lume_services.environment import children
from lume_services.environment.store import tail
from lume_services.errors import FlowLoadError

# Loads the flow entry point inside the environment and reports what the
# registry needs. Kept self-contained: it runs in another interpreter.
DESCRIBE = r"""
import json, sys
from importlib.metadata import entry_points
pkg = sys.argv[1]
eps = {ep.name: ep for ep in entry_points(group="orchestration")}
if pkg + ".flow" not in eps:
    print(json.dumps({"error": "entry point %s.flow is not installed (found: %s)" % (pkg, sorted(eps))}))
    sys.exit(0)
ep = eps[pkg + ".flow"]
flow = ep.load()
from prefect import Flow
if not isinstance(flow, Flow):
    print(json.dumps({"error": "%s is a %s, not a Prefect flow" % (ep.value, type(flow).__name__)}))
    sys.exit(0)
from prefect.utilities.callables import parameter_schema
import prefect
module, _, attr = ep.value.partition(":")
model = eps.get(pkg + ".model")
from prefect import Task
namespace = vars(sys.modules[flow.fn.__module__])
tasks = sorted({v.name for v in namespace.values() if isinstance(v, Task)})
print(json.dumps({
    "flow_name": flow.name,
    "entrypoint": module + "." + attr if attr else module,
    "parameters": parameter_schema(flow.fn).model_dump(),
    "model": model.value if model else None,
    "prefect_version": prefect.__version__,
    "tasks": tasks,
}))
"""


def child_environment(home: Optional[Path], extra: Optional[dict[str, str]] = None) -> dict[str, str]:
    """PATH, HOME, locale and PREFECT_* only; Prefect pointed inside LUME_HOME ``home`` unless configured."""
    env = {k: v for k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR") if (v := os.environ.get(k))}
    for key, value in os.environ.items():
        if key.startswith("PREFECT_"):
            env[key] = value
    if home is not None:
        env.setdefault("PREFECT_HOME", str(home / "prefect"))
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    env.update(extra or {})
    return env


def run_json(python: Path, script: str, args: list[str], *, home: Path, timeout: float, package: str) -> Any:
    try:
        result = children.run(
            [str(python), "-I", "-c", script, *args], timeout=timeout, env=child_environment(home)
        )
    except subprocess.TimeoutExpired:
        raise FlowLoadError(package, f"it did not finish within {timeout:g} s") from None
    if result.returncode != 0:
        raise FlowLoadError(package, tail(result.stderr or result.stdout))
    try:
        answer = json.loads(result.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        raise FlowLoadError(
            package, "it printed no JSON answer:\n" + tail(result.stdout + result.stderr)
        ) from None
    if isinstance(answer, dict) and answer.get("error"):
        raise FlowLoadError(package, answer["error"])
    return answer


def describe_flow(
    python: Path, import_name: str, *, home: Path, timeout: float, package: str
) -> dict[str, Any]:
    """Load ``<import_name>.flow`` in the environment: flow name, entrypoint, parameter schema."""
    return run_json(python, DESCRIBE, [import_name], home=home, timeout=timeout, package=package)
