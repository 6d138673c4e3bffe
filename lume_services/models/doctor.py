"""``lume-services doctor``: find what faults left behind, and repair it.

Each check returns a :class:`Finding` saying what it found, why it matters
and what ``--fix`` does (or did). Checks are safe while other processes
store and run: a build directory counts as debris only when nobody holds its
build lock, and environments, Prefect deployments and temporary files that
no row records count only once they are older than ``min_age`` (a store
records its rows last, after installing and registering).
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Optional

from lume_services.environment.store import remove_tree
from lume_services.errors import LUMEServicesError

OK, ATTENTION, FIXED, SKIPPED = "ok", "attention", "fixed", "skipped"
MIN_AGE = timedelta(hours=1)
MIN_FREE_BYTES = 2 * 1024**3  # an environment takes a few hundred MB


@dataclass
class Finding:
    check: str
    status: str
    summary: str
    why: str = ""
    fix: str = ""
    items: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Report:
    findings: list[Finding]

    @property
    def needs_attention(self) -> bool:
        return any(f.status == ATTENTION for f in self.findings)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": not self.needs_attention, "findings": [f.as_dict() for f in self.findings]}


def examine(ctx: Any, *, fix: bool = False, min_age: timedelta = MIN_AGE) -> Report:
    """Run every check on the configured registry (``ctx`` is a config.Context)."""
    doctor = _Doctor(ctx, fix, min_age)
    return Report(list(doctor.run()))


def size_of(path: Path) -> int:
    if path.is_file() or path.is_symlink():
        return path.lstat().st_size
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def _built(env: Path) -> float:
    marker = env / ".ready"
    return (marker if marker.exists() else env).stat().st_mtime


def human(size: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


class _Doctor:
    def __init__(self, ctx: Any, fix: bool, min_age: timedelta) -> None:
        self.ctx, self.fix, self.min_age = ctx, fix, min_age
        self.home: Path = ctx.settings.home
        self.envs = ctx.environment_manager()
        self.store = ctx.artifact_store()
        self.scheduling = ctx.scheduling_service()
        self.schema_ok = False

    def run(self) -> Iterator[Finding]:
        yield self._guarded("schema", self.schema)
        yield self._guarded("builds", self.builds)
        yield self._guarded("temporary files", self.temporary_files)
        yield self._guarded("unused environments", self.unused_environments)
        yield self._guarded("missing environments", self.missing_environments)
        yield self._guarded("prefect 1 flows", self.prefect1_flows)
        api = self._guarded("prefect api", self.prefect_api)
        yield api
        if api.status == OK:
            yield self._guarded("prefect deployments", self.prefect_deployments)
        else:
            yield Finding("prefect deployments", SKIPPED, "Not checked: the Prefect API does not answer.")
        yield self._guarded("results directory", self.results_directory)
        yield self._guarded("disk space", self.disk_space)

    def _guarded(self, check: str, run: Callable[[], Finding]) -> Finding:
        try:
            return run()
        except LUMEServicesError as exc:
            return Finding(check, ATTENTION, f"The check failed: {exc}", fix="Nothing; fix the cause first.")
        except OSError as exc:
            reason = f"{exc.strerror or exc} ({exc.filename})" if exc.filename else str(exc)
            return Finding(
                check, ATTENTION, f"The check failed: {reason}.", fix="Nothing; fix the cause first."
            )

    def _old(self, mtime: float) -> bool:
        return time.time() - mtime > self.min_age.total_seconds()

    def _outcome(
        self, check: str, items: list[str], summary: str, why: str, fix: str, repair: Any
    ) -> Finding:
        if not items:
            return Finding(check, OK, summary)
        if not self.fix:
            return Finding(check, ATTENTION, summary, why, f"--fix {fix}", items)
        repair()
        return Finding(check, FIXED, summary, why, f"Done: {fix}", items)

    def _needs_schema(self, check: str) -> Optional[Finding]:
        if self.schema_ok:
            return None
        return Finding(check, SKIPPED, "Not checked: the database schema is not at head.")

    # -- the checks ------------------------------------------------------------------

    def schema(self) -> Finding:
        from lume_services.services.models.db.revision import SCHEMA_REVISION

        db = self.ctx.model_db()
        found = db.schema_revision()
        if found == SCHEMA_REVISION:
            self.schema_ok = True
            return Finding("schema", OK, f"The database schema is at revision {found} (head).")
        summary = (
            f"The database schema is at revision {found or '(none)'}; this release needs {SCHEMA_REVISION}."
        )
        why = "Every read and write refuses to run until the schema is at head."
        adopt = self._needs_adoption(db)
        if adopt is not None:
            return Finding("schema", ATTENTION, f"{summary} {adopt}", why,
                           "Nothing automatic: back the database up, then run `lume-services db adopt`.")  # fmt: skip
        if found is not None and found > SCHEMA_REVISION:
            return Finding("schema", ATTENTION, summary, why, "Nothing: upgrade lume-services instead.")
        if not self.fix:
            return Finding("schema", ATTENTION, summary, why, "--fix runs `lume-services db upgrade`.")
        db.upgrade_schema()
        self.schema_ok = True
        return Finding("schema", FIXED, summary, why, f"Done: upgraded to {SCHEMA_REVISION}.")

    @staticmethod
    def _needs_adoption(db: Any) -> Optional[str]:
        from lume_services.errors import PredecessorSchemaError

        try:
            db.refuse_predecessor()
        except PredecessorSchemaError as exc:
            return f"The database needs `lume-services db adopt`: {exc.why}."
        return None

    def prefect1_flows(self) -> Finding:
        if (skipped := self._needs_schema("prefect 1 flows")) is not None:
            return skipped
        from lume_services.services.models.db.adopt import prefect1_flow_ids

        marked = prefect1_flow_ids(self.ctx.model_db())
        stale = [f for f in self.flows if f.flow_id in marked and f.deployment_id is not None]
        if not stale:
            return Finding("prefect 1 flows", OK, "No deployment has a flow registered with Prefect 1.")
        return Finding(
            "prefect 1 flows", ATTENTION,
            f"{len(stale)} deployments adopted from the predecessor still have their Prefect 1 flow.",
            "They cannot run: Prefect 3 does not know those flows.",
            "Nothing automatic: store each deployment again (`lume-services deployments create SOURCE "
            "--model-id ID --project NAME`) to register it with Prefect 3; the old flow row is kept.",
            [f"flow {f.flow_id!r} of deployment {f.deployment_id}" for f in stale],
        )  # fmt: skip

    def builds(self) -> Finding:
        stale = self.envs.stale()
        size = sum(size_of(p) for p in stale)
        return self._outcome(
            "builds", [str(p) for p in stale],
            f"{len(stale)} build directories and lock files left by processes that died ({human(size)})."
            if stale else "No stale build directories or lock files.",
            "A store killed while installing leaves its half-built environment; it only takes space.",
            "removes them (only those whose build lock nobody holds).", self.envs.sweep,
        )  # fmt: skip

    def temporary_files(self) -> Finding:
        tmp = self.store.root / "tmp"
        old = [p for p in sorted(tmp.iterdir()) if self._old(p.lstat().st_mtime)] if tmp.is_dir() else []
        size = sum(size_of(p) for p in old)

        def repair() -> None:
            for path in old:
                remove_tree(path) if path.is_dir() else path.unlink(missing_ok=True)

        return self._outcome(
            "temporary files", [str(p) for p in old],
            f"{len(old)} partial downloads or builds older than {self.min_age} ({human(size)})."
            if old else "No stale partial downloads.",
            "A store killed while fetching leaves its partial download; it only takes space.",
            "removes them.", repair,
        )  # fmt: skip

    @functools.cached_property
    def deployments(self) -> list[Any]:
        """Every recorded deployment, read once (doctor changes no rows)."""
        return self.ctx.model_db_service().get_deployments()

    @functools.cached_property
    def flows(self) -> list[Any]:
        return self.ctx.model_db_service().get_flows()

    def unused_environments(self) -> Finding:
        if (skipped := self._needs_schema("unused environments")) is not None:
            return skipped
        used = {d.sha256 for d in self.deployments}
        root = self.envs.root
        ready = [
            p for p in sorted(root.iterdir()) if not p.name.startswith(".") and p.name not in used
        ] if root.is_dir() else []  # fmt: skip
        unused = [p for p in ready if self._old(_built(p))]
        size = sum(size_of(p) for p in unused)

        def repair() -> None:
            for path in unused:
                with self.envs.lock_for(path.name):  # no build of it meanwhile
                    remove_tree(path)

        return self._outcome(
            "unused environments", [str(p) for p in unused],
            f"{len(unused)} environments that no deployment records ({human(size)})."
            if unused else "Every environment belongs to a recorded deployment.",
            "They are left by stores that failed or were killed after installing, or by deleted "
            "deployments; they only take space.",
            "removes them.", repair,
        )  # fmt: skip

    def missing_environments(self) -> Finding:
        if (skipped := self._needs_schema("missing environments")) is not None:
            return skipped
        registered = {f.deployment_id for f in self.flows if f.deployment_id is not None and not f.composite}
        missing = [
            d for d in self.deployments if d.deployment_id in registered and self.envs.get(d.sha256) is None
        ]
        items = [f"deployment {d.deployment_id} (model {d.model_id}, version {d.version})" for d in missing]

        def repair() -> None:
            for deployment in missing:
                self._rebuild(deployment)

        return self._outcome(
            "missing environments", items,
            f"{len(missing)} registered deployments whose environment is missing."
            if missing else "Every registered deployment has its environment.",
            "Their runs fail: the flow runs in the deployment's own environment.",
            "rebuilds them from the artifact store (or downloads the recorded source again).", repair,
        )  # fmt: skip

    def _rebuild(self, deployment: Any) -> None:
        from lume_services.environment.sources import parse_source
        from lume_services.models.registration import environment_requirements

        artifact = self.store.lookup(deployment.sha256)
        if artifact is None:
            source = parse_source(deployment.source, allow_http=self.store.settings.allow_http)
            artifact = self.store.put(source, expected_sha256=deployment.sha256)
        self.envs.ensure(artifact, environment_requirements())

    def prefect_api(self) -> Finding:
        where = (
            "the configured Prefect API" if self.scheduling.api_configured else "Prefect's ephemeral server"
        )
        problem = self.scheduling.api_problem()
        if problem is None:
            return Finding("prefect api", OK, f"{where[0].upper()}{where[1:]} answers.")
        return Finding(
            "prefect api", ATTENTION, f"{where[0].upper()}{where[1:]} does not answer: {problem}.",
            "Nothing can be registered or run until it does.",
            "Nothing: start the server, or correct LUME_PREFECT__API_URL.",
        )  # fmt: skip

    def prefect_deployments(self) -> Finding:
        if (skipped := self._needs_schema("prefect deployments")) is not None:
            return skipped
        svc = self.ctx.model_db_service()
        recorded = {f.flow_id for f in self.flows}
        cutoff = datetime.now(UTC) - self.min_age
        orphans = [
            d for d in self.scheduling.registry_deployments()
            if str(d.id) not in recorded and (d.updated or d.created or cutoff) < cutoff
        ]  # fmt: skip

        def repair() -> None:
            for deployment in orphans:
                if not svc.get_flows(flow_id=str(deployment.id)):  # still unrecorded
                    self.scheduling.delete_flow(str(deployment.id))

        return self._outcome(
            "prefect deployments", [f"{d.name} ({d.id})" for d in orphans],
            f"{len(orphans)} Prefect deployments made by the registry in pool "
            f"{self.scheduling.pool_name!r} that no flow row records."
            if orphans else "Every registry-made Prefect deployment is recorded.",
            "A store killed after registering, or a deleted deployment, leaves them; runs of them "
            "bypass the registry.",
            "deletes them from Prefect.", repair,
        )  # fmt: skip

    def results_directory(self) -> Finding:
        path = Path(self.scheduling.results_path)
        if not path.exists():
            summary = f"The results directory {path} does not exist yet."
            if not self.fix:
                return Finding("results directory", OK, summary + " It is created by the first run.")
        try:
            path.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path, prefix=".doctor-"):
                pass
        except OSError as exc:
            return Finding(
                "results directory", ATTENTION,
                f"The results directory {path} is not writable: {exc.strerror or exc}.",
                "Runs cannot persist their results, so run_and_return fails.",
                "Nothing: make it writable, or set LUME_PREFECT__RESULTS_PATH.",
            )  # fmt: skip
        return Finding("results directory", OK, f"The results directory {path} is writable.")

    def disk_space(self) -> Finding:
        path = self.home if self.home.exists() else self.home.parent
        usage = shutil.disk_usage(path)
        summary = f"{human(usage.free)} free of {human(usage.total)} under {self.home}."
        if usage.free >= MIN_FREE_BYTES:
            return Finding("disk space", OK, summary)
        return Finding(
            "disk space", ATTENTION, summary,
            f"Below {human(MIN_FREE_BYTES)}, installing a model's environment may fail.",
            "Nothing automatic: remove unused environments (--fix does) or move LUME_HOME.",
        )  # fmt: skip
