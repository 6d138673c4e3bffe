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


DESCRIBED = ".lume-described.json"  # in an environment: what describe_flow found there, by import name


def describe_flow(
    python: Path, import_name: str, *, home: Path, timeout: float, package: str, environment: Optional[Path] = None
) -> dict[str, Any]:
    """Load ``<import_name>.flow`` in the environment: flow name, entrypoint, parameter schema.

    With ``environment`` (the environment's directory) the answer is kept
    there and reused: an environment is built once per artifact and never
    changed, so its flow describes the same every time (storing the same
    archive for another model, or into another registry, skips loading it).
    """
    cache = environment / DESCRIBED if environment is not None else None
    known = _read_described(cache)
    if import_name in known:
        return known[import_name]
    answer = run_json(python, DESCRIBE, [import_name], home=home, timeout=timeout, package=package)
    if cache is not None:
        _write_described(cache, {**known, import_name: answer})
    return answer


def _read_described(cache: Optional[Path]) -> dict[str, Any]:
    if cache is None:
        return {}
    try:
        found = json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # none yet, or unreadable: describe again
    return found if isinstance(found, dict) else {}


def _write_described(cache: Path, described: dict[str, Any]) -> None:
    """Atomically (a reader sees the old file or the new one); a read-only environment is not an error."""
    temporary = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(json.dumps(described), encoding="utf-8")
        os.replace(temporary, cache)
    except OSError:
        try:
            temporary.unlink(missing_ok=True)
        except OSError:
            pass
