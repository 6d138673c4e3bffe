"""Import and sync: MLflow's registered models become models, their versions deployments.

One run reads our side once (:meth:`ModelDBService.mirror_state`, two
statements however many models), lists MLflow's registered models and
versions (paged), hashes the artifacts of versions not seen before (in a
few threads), and writes each model that changed in ONE transaction
(:meth:`ModelDBService.store_mirrored_model`). A model with nothing changed
is not written: a sync that finds nothing new issues a constant number of
SQL statements. A failing model is reported and leaves nothing of it
written; the others go on.

Our tags that keep MLflow's identity (``mlflow.*``, see ``KEY_*``): a model
has ``mlflow.tracking_uri`` and ``mlflow.name``, the keys of its MLflow tags
(``mlflow.tag_keys``, so that a tag removed in MLflow is removed here and tags
set here stay) and the alias's version last seen (``mlflow.alias.<alias>``,
what tells an alias moved in MLflow from a live change made here); a
deployment has ``mlflow.version``, ``mlflow.artifact_uri``, ``mlflow.run_id``,
and ``mlflow.deleted`` once its version is gone from MLflow (never deleted here).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Optional

from lume_services.errors import LUMEServicesError, MlflowError, MlflowModelError, ValidationError
from lume_services.mlflow.artifacts import Inspected, inspect_version
from lume_services.mlflow.client import MlflowClient
from lume_services.mlflow.mapping import FIELDS, Mapping
from lume_services.services.models.db.schema import Model
from lume_services.services.models.mirror_ops import MirroredDeployment, MirroredModel, MirrorPlan
from lume_services.services.models.records import UNSET
from lume_services.services.models.tags import check_tags
from lume_services.services.models.validation import check_value

KEY_URI, KEY_NAME, KEY_KEYS = "mlflow.tracking_uri", "mlflow.name", "mlflow.tag_keys"
KEY_VERSION, KEY_ARTIFACTS, KEY_RUN, KEY_DELETED = "mlflow.version", "mlflow.artifact_uri", "mlflow.run_id", "mlflow.deleted"
LIVE_ACTOR = "mlflow"  # MLflow does not say who moved an alias
WORKERS = 8


def alias_key(alias: str) -> str:
    return f"mlflow.alias.{alias}"


@dataclass
class ModelReport:
    name: str
    model_id: Optional[int] = None
    action: str = "unchanged"  # created, updated, unchanged, failed (dry run: would create/would update)
    new_versions: list[str] = field(default_factory=list)
    retagged: int = 0
    live: Optional[str] = None  # "1 -> 2" when the alias moved
    deleted: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    error: Optional[str] = None


@dataclass
class Report:
    tracking_uri: str
    dry_run: bool
    models: list[ModelReport] = field(default_factory=list)

    @property
    def failed(self) -> list[ModelReport]:
        return [m for m in self.models if m.error is not None]

    def totals(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for m in self.models:
            counts[m.action] = counts.get(m.action, 0) + 1
        counts["versions"] = sum(len(m.new_versions) for m in self.models)
        counts["conflicts"] = sum(len(m.conflicts) for m in self.models)
        return counts

    def as_dict(self) -> dict[str, Any]:
        return {"tracking_uri": self.tracking_uri, "dry_run": self.dry_run, "totals": self.totals(),
                "models": [asdict(m) for m in self.models]}  # fmt: skip


def _tags(items: Optional[Iterable[dict[str, Any]]]) -> dict[str, str]:
    return {t["key"]: t.get("value", "") for t in items or ()}


def _own(current: dict[str, str]) -> dict[str, str]:
    """A row's tags that did not come from MLflow (set here), given its ``mlflow.tag_keys``."""
    try:
        from_mlflow = set(json.loads(current.get(KEY_KEYS, "[]")))
    except ValueError:
        from_mlflow = set()
    return {k: v for k, v in current.items() if k not in from_mlflow}


class Importer:
    """Import (and re-import: sync) one tracking server's registry into a ModelDBService."""

    def __init__(self, service: Any, client: MlflowClient, mapping: Optional[Mapping] = None, *,
                 verify: bool = True, workers: int = WORKERS) -> None:  # fmt: skip
        self.service, self.client, self.mapping = service, client, mapping or Mapping()
        self.verify, self.workers = verify, workers

    def run(self, names: Optional[list[str]] = None, *, dry_run: bool = False) -> Report:
        report = Report(self.client.url, dry_run)
        state = {m.model.tags.get(KEY_NAME): m for m in self.service.mirror_state(tags={KEY_URI: self.client.url})}
        models = list(self.client.registered_models(names))
        versions = self._versions(names)
        inspected = self._inspect(models, versions, state)
        for rm in models:
            report.models.append(self._one(rm, versions.get(rm["name"], []), state.get(rm["name"]), inspected, dry_run))
        if names is None:
            seen = {rm["name"] for rm in models}
            for name, gone in state.items():
                if name not in seen and KEY_DELETED not in gone.model.tags:
                    report.models.append(self._model_gone(name, gone, dry_run))
        return report

    # -- reading MLflow -----------------------------------------------------------------

    def _versions(self, names: Optional[list[str]]) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {}
        listed = [v for n in names for v in self.client.model_versions(n)] if names else self.client.model_versions()
        for version in listed:
            if version.get("status", "READY") == "READY":
                found.setdefault(version["name"], []).append(version)
        for group in found.values():
            group.sort(key=lambda v: int(v["version"]))
        return found

    def _inspect(self, models: list[dict[str, Any]], versions: dict[str, list[dict[str, Any]]],
                 state: dict[Optional[str], MirroredModel]) -> dict[tuple[str, str], Any]:  # fmt: skip
        """{(name, version): Inspected or the MlflowError} of the versions whose artifacts must be read."""
        wanted = []
        for rm in models:
            known = {d.tags.get(KEY_VERSION) for d in state[rm["name"]].deployments} if rm["name"] in state else set()
            wanted += [v for v in versions.get(rm["name"], []) if self.verify or v["version"] not in known]

        def one(version: dict[str, Any]) -> Any:
            try:
                return inspect_version(self.client, version)
            except MlflowError as exc:
                return exc

        with ThreadPoolExecutor(max_workers=max(1, self.workers)) as pool:
            results = list(pool.map(one, wanted))
        return {(v["name"], v["version"]): r for v, r in zip(wanted, results)}

    # -- one model -------------------------------------------------------------------------

    def _one(self, rm: dict[str, Any], versions: list[dict[str, Any]], current: Optional[MirroredModel],
             inspected: dict[tuple[str, str], Any], dry_run: bool) -> ModelReport:  # fmt: skip
        report = ModelReport(rm["name"], current.model.model_id if current else None)
        try:
            plan = self._plan(rm, versions, current, inspected, report)
            if plan is None:
                return report
            report.action = ("would " if dry_run else "") + ("create" if current is None else "update")
            if not dry_run:
                report.model_id = self.service.store_mirrored_model(plan)
                report.action = "created" if current is None else "updated"
        except LUMEServicesError as exc:
            report.action, report.error = "failed", str(exc)
        return report

    def _plan(self, rm: dict[str, Any], versions: list[dict[str, Any]], current: Optional[MirroredModel],
              inspected: dict[tuple[str, str], Any], report: ModelReport) -> Optional[MirrorPlan]:  # fmt: skip
        name = rm["name"]
        mlflow_tags = self._checked_tags(name, _tags(rm.get("tags")))
        before = dict(current.model.tags) if current else {}
        model_tags = {**_own(before), **mlflow_tags, KEY_URI: self.client.url, KEY_NAME: name,
                      KEY_KEYS: json.dumps(sorted(mlflow_tags))}  # fmt: skip
        model_tags.pop(KEY_DELETED, None)
        new, retag = self._deployments(name, versions, current, inspected, report)
        live = self._alias(rm, current, model_tags, report)
        if current is not None and not new and not retag and model_tags == before and live is UNSET:
            return None
        have = {d.tags.get(KEY_VERSION) for d in current.deployments} if current else set()
        if live not in (UNSET, None) and live not in have | {d.version for d in new}:
            raise MlflowModelError(name, f"its alias {self.mapping.alias!r} names version {live!r}, which is not "
                                   "ready or could not be read", "Point the alias at a ready version.")  # fmt: skip
        identity = self._identity(rm, versions) if current is None else {}
        return MirrorPlan(
            model=identity, model_id=current.model.model_id if current else None, model_tags=model_tags,
            owner=(KEY_NAME, name), new_deployments=new, deployment_tags=retag, live=live, live_actor=LIVE_ACTOR,
            live_reason=None if live is UNSET else f"alias {self.mapping.alias!r} of {name!r} in MLflow",
        )  # fmt: skip

    def _deployments(self, name: str, versions: list[dict[str, Any]], current: Optional[MirroredModel],
                     inspected: dict[tuple[str, str], Any], report: ModelReport) -> tuple[list, dict]:  # fmt: skip
        known = {d.tags.get(KEY_VERSION): d for d in current.deployments} if current else {}
        new, retag = [], {}
        for version in versions:
            number, found = version["version"], inspected.get((name, version["version"]))
            if isinstance(found, Exception) and (number not in known):
                raise found
            tags = self._version_tags(name, version, found, known.get(number))
            if number not in known:
                new.append(MirroredDeployment(number, f"models:/{name}/{number}", found.sha256,
                                              found.package_import_name, tags, found.variables))  # fmt: skip
                report.new_versions.append(number)
                continue
            stored = known[number]
            if isinstance(found, Exception):
                report.conflicts.append(f"version {number!r}: its artifacts could not be checked again: {found}")
            elif isinstance(found, Inspected) and found.sha256 != stored.sha256:
                report.conflicts.append(
                    f"version {number!r}: its artifacts changed in MLflow (manifest {found.sha256[:12]}..., "
                    f"stored {stored.sha256[:12]}...); kept as stored: register the change as a new version"
                )
            if tags != stored.tags:
                retag[stored.deployment_id] = tags
        gone = set(known) - {v["version"] for v in versions}
        for number in sorted(gone, key=lambda n: int(n) if str(n).isdigit() else 0):
            stored = known[number]
            if number is not None and KEY_DELETED not in stored.tags:
                retag[stored.deployment_id] = {**stored.tags, KEY_DELETED: datetime.now(UTC).isoformat()}
                report.deleted.append(number)
        report.retagged = len(retag) - len(report.deleted)
        return new, retag

    def _version_tags(self, name: str, version: dict[str, Any], found: Any, stored: Any) -> dict[str, str]:
        mlflow_tags = self._checked_tags(name, _tags(version.get("tags")), version["version"])
        before = dict(stored.tags) if stored is not None else {}
        uri = found.artifact_uri if isinstance(found, Inspected) else before.get(KEY_ARTIFACTS, version.get("source", ""))
        tags = {**_own(before), **mlflow_tags, KEY_NAME: name, KEY_VERSION: version["version"],
                KEY_ARTIFACTS: uri, KEY_KEYS: json.dumps(sorted(mlflow_tags))}  # fmt: skip
        if version.get("run_id"):
            tags[KEY_RUN] = version["run_id"]
        return tags

    def _alias(self, rm: dict[str, Any], current: Optional[MirroredModel], model_tags: dict[str, str],
               report: ModelReport) -> Any:  # fmt: skip
        """The version to make live (None: none), or UNSET when the alias did not move since last seen."""
        key = alias_key(self.mapping.alias)
        now = {a["alias"]: a["version"] for a in rm.get("aliases") or ()}.get(self.mapping.alias)
        seen = current.model.tags.get(key) if current else None
        if now is None:
            model_tags.pop(key, None)
        else:
            model_tags[key] = now
        if now == seen and current is not None or (current is None and now is None):
            return UNSET
        report.live = f"{seen or '-'} -> {now or '-'}"
        return now

    def _identity(self, rm: dict[str, Any], versions: list[dict[str, Any]]) -> dict[str, str]:
        name, tags = rm["name"], _tags(rm.get("tags"))
        user = rm.get("user_id") or next((v.get("user_id") for v in versions if v.get("user_id")), None)
        identity = {}
        for model_field in FIELDS:
            found = self.mapping.resolve(model_field, rm, tags, user)
            sources = getattr(self.mapping, model_field)
            if found is None:
                raise MlflowModelError(
                    name, f"none of the sources of {model_field} ({', '.join(sources)}) has a value",
                    f"Set one of them in MLflow, or give {model_field} a fixed value in the mapping file "
                    f"(e.g. '{model_field}: [{', '.join(sources)}, unknown]').",
                )  # fmt: skip
            value, source = found
            try:
                identity[model_field] = check_value(Model, model_field, value)
            except ValidationError as exc:
                raise MlflowModelError(
                    name, f"{model_field} from {source!r} is {value[:40]!r}...: {exc.problem}",
                    f"Shorten it in MLflow, or map {model_field} to another source in the mapping file.",
                ) from None  # fmt: skip
        return identity

    def _checked_tags(self, name: str, tags: dict[str, str], version: Optional[str] = None) -> dict[str, str]:
        try:
            return check_tags(tags)
        except ValidationError as exc:
            raise MlflowModelError(
                name, f"its {exc.field} is {str(exc.value)[:40]!r}...: {exc.problem}",
                "Shorten that tag in MLflow (lume-services keeps tag keys up to 250 and values up to "
                "100,000 characters).", version=version,
            ) from None  # fmt: skip

    def _model_gone(self, name: str, gone: MirroredModel, dry_run: bool) -> ModelReport:
        report = ModelReport(name, gone.model.model_id, "would mark deleted" if dry_run else "marked deleted")
        if not dry_run:
            self.service.set_model_tags(gone.model.model_id, {KEY_DELETED: datetime.now(UTC).isoformat()})
        return report
