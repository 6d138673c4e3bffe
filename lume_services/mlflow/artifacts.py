"""What a model version's artifacts say: their manifest digest, the flavor loader, the LUME variables.

Every artifact file is streamed through the tracking server's artifact API
and hashed; nothing is kept but the texts of small YAML/JSON files and the
``MLmodel`` file (weights are hashed and dropped). The version's ``sha256`` is
the SHA-256 of its manifest: one line ``<sha256>  <path>`` per file, sorted by
path (what ``sha256sum`` prints, so it can be checked by hand). The variables
are read from the LUME YAML config among the artifacts with
:mod:`lume_services.variables` (no model code runs).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Optional

import yaml

from lume_services.errors import MlflowModelError
from lume_services.mlflow.client import MlflowClient, artifact_path
from lume_services.variables import NO_VARIABLES, Variables
from lume_services.variables.formats import Problem, looks_like_variables, read_variables

TEXT_SUFFIXES = (".yml", ".yaml", ".json")
MAX_TEXT = 1 << 20  # texts read for MLmodel and variables (bigger files are only hashed)
NOT_CONFIGS = ("conda.yaml", "python_env.yaml", "input_example.json", "serving_input_example.json")
DEFAULT_LOADER = "mlflow.pyfunc"


@dataclass(frozen=True)
class Inspected:
    sha256: str
    package_import_name: str
    variables: Variables
    files: int
    artifact_uri: str


def inspect_version(client: MlflowClient, version: dict[str, Any]) -> Inspected:
    """Hash and read one model version's artifacts (MlflowModelError when they cannot be read)."""
    name, number = version["name"], version["version"]
    uri = version.get("source") or ""
    root = artifact_path(uri)
    if root is None:
        uri = client.download_uri(name, number)
        root = artifact_path(uri)
    if root is None:
        raise MlflowModelError(
            name, f"its artifacts are at {uri!r}, which the tracking server does not serve",
            "Run the tracking server with artifact proxying (mlflow server --serve-artifacts, the default).",
            version=number,
        )  # fmt: skip
    lines, texts = [], {}
    for rel, size in sorted(client.list_files(root)):
        digest = hashlib.sha256()
        keep = size <= MAX_TEXT and (rel.rsplit("/", 1)[-1] == "MLmodel" or rel.endswith(TEXT_SUFFIXES))
        chunks = []
        for chunk in client.stream(f"{root}/{rel}"):
            digest.update(chunk)
            if keep:
                chunks.append(chunk)
        lines.append(f"{digest.hexdigest()}  {rel}\n")
        if keep:
            texts[rel] = b"".join(chunks).decode("utf-8", errors="replace")
    if not lines:
        raise MlflowModelError(name, f"it has no artifacts under {uri!r}", "Log the model's artifacts, or delete that version.",
                               version=number)  # fmt: skip
    manifest = hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()
    return Inspected(manifest, _loader(texts), _variables(name, number, texts), len(lines), uri)


def _loader(texts: dict[str, str]) -> str:
    """The flavor's loader module named by MLmodel (python_function's, else the first flavor's name)."""
    mlmodel = next((t for p, t in sorted(texts.items()) if p.rsplit("/", 1)[-1] == "MLmodel"), None)
    if mlmodel is None:
        return DEFAULT_LOADER
    try:
        flavors = (yaml.safe_load(mlmodel) or {}).get("flavors") or {}
    except (yaml.YAMLError, AttributeError):
        return DEFAULT_LOADER
    if not isinstance(flavors, dict) or not flavors:
        return DEFAULT_LOADER
    loader = (flavors.get("python_function") or {}).get("loader_module")
    return str(loader or f"mlflow.{next(iter(flavors))}")


def _variables(name: str, number: str, texts: dict[str, str]) -> Variables:
    configs = sorted(
        (p for p, t in texts.items()
         if p.endswith(TEXT_SUFFIXES) and p.rsplit("/", 1)[-1] not in NOT_CONFIGS and looks_like_variables(t)),
        key=lambda p: (p.count("/"), p),
    )  # fmt: skip
    chosen: Optional[str] = configs[0] if configs else None
    if chosen is None:
        return NO_VARIABLES
    try:
        return read_variables(texts[chosen], chosen)
    except Problem as exc:
        where = f" (line {exc.line})" if exc.line else ""
        raise MlflowModelError(
            name, f"its LUME config {chosen!r} is not valid{where}: {exc.problem}",
            "Fix the config and log it again as a new version.", version=number,
        ) from None  # fmt: skip
