"""The one exception tree of lume-services.

Every error raised on purpose by this package derives from
:class:`LUMEServicesError`, so callers can catch the whole family at once.
Messages are full sentences built in ``__init__``: they name the values
involved (with ``!r``) and say what to do next. The values stay available as
attributes. Secrets are never part of a message.

::

    LUMEServicesError
    ├── NotFoundError (also LookupError)
    │   ├── ModelNotFoundError
    │   ├── DeploymentNotFoundError
    │   ├── ProjectNotFoundError
    │   ├── FlowNotFoundError
    │   ├── FlowOfFlowsNotFoundError
    │   ├── LiveRequestNotFoundError
    │   ├── DeploymentNotRegisteredError
    │   ├── WebhookNotFoundError
    │   ├── DeliveryNotFoundError
    │   ├── TokenNotFoundError
    │   ├── JobNotFoundError
    │   └── RunNotFoundError
    ├── ConflictError
    │   ├── AlreadyExistsError
    │   │   ├── ProjectAlreadyExistsError
    │   │   └── FlowAlreadyExistsError
    │   ├── DeploymentConflictError
    │   ├── LiveDeploymentChangedError
    │   ├── LiveRequestClosedError
    │   ├── VariablesConflictError
    │   └── InUseError
    ├── AuthenticationError
    ├── PermissionDeniedError
    │   ├── ApprovalRequiredError
    │   ├── SelfApprovalError
    │   └── ScopeError
    ├── ValidationError (also ValueError)
    │   ├── UnknownFilterError
    │   └── UnsafeTargetError
    ├── ConfigurationError
    │   ├── EnvironmentNotConfiguredError
    │   ├── SchemaNotCurrentError
    │   │   └── PredecessorSchemaError
    │   ├── AdoptionRefusedError
    │   └── SchedulingNotConfiguredError
    ├── DatabaseError
    │   └── RegistryUnreachableError
    ├── EnvironmentResolutionError
    │   ├── SourceError
    │   ├── DownloadError
    │   ├── ChecksumMismatchError
    │   ├── UnsafeArchiveError
    │   ├── PackageInspectionError
    │   │   ├── NoFlowFoundInPackageError
    │   │   └── VariablesFileError
    │   ├── InstallError
    │   ├── FlowLoadError
    │   └── MissingEnvironmentYamlError
    ├── StorageError
    ├── UnexpectedError
    ├── JobInterruptedError
    ├── MlflowError (the MLflow bridge, lume_services.mlflow)
    │   ├── MlflowUnreachableError
    │   ├── NotMlflowError
    │   ├── MlflowAuthError
    │   ├── MlflowRequestError
    │   ├── MlflowMappingError
    │   └── MlflowModelError
    └── SchedulingError
        ├── RegistrationError
        ├── FlowFailedError
        ├── RunTimeoutError
        ├── TaskNotInFlowError
        ├── TaskNotCompletedError
        └── EmptyResultError
"""

from __future__ import annotations

import errno
import re
from collections.abc import Iterable, Mapping
from typing import Any


def _describe(query: Mapping[str, Any]) -> str:
    if not query:
        return "no filters"
    return ", ".join(f"{key}={value!r}" for key, value in sorted(query.items()))


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class LUMEServicesError(Exception):
    """Base class of every error raised on purpose by lume-services."""


# --- not found -------------------------------------------------------------


class NotFoundError(LUMEServicesError, LookupError):
    """A requested row does not exist."""

    entity = "row"
    hint = "check the filters"

    def __init__(self, query: Mapping[str, Any] | None = None) -> None:
        self.query = dict(query or {})
        super().__init__(f"No {self.entity} matches {_describe(self.query)}; {self.hint}.")


class ModelNotFoundError(NotFoundError):
    entity = "model"
    hint = "list models with `lume-services models list` or create one with Model.create_model(...)"


class DeploymentNotFoundError(NotFoundError):
    entity = "deployment"
    hint = "list deployments with `lume-services deployments list`"


class ProjectNotFoundError(NotFoundError):
    entity = "project"
    hint = (
        "create it first with model_db_service.store_project(project_name=..., "
        "description=...) or `lume-services projects create NAME`"
    )


class FlowNotFoundError(NotFoundError):
    entity = "flow"
    hint = "flows are registered by Model.store_deployment(...)"


class FlowOfFlowsNotFoundError(NotFoundError):
    entity = "flow-of-flows composition"
    hint = "compose one with store_flow_of_flows(...)"


class LiveRequestNotFoundError(NotFoundError):
    entity = "live request"
    hint = "list them with `lume-services requests list`"


class DeploymentNotRegisteredError(NotFoundError):
    """A model has no (such) deployment."""

    def __init__(self, model_id: int, deployment_id: int | None = None) -> None:
        self.model_id = model_id
        self.deployment_id = deployment_id
        self.query = {"model_id": model_id, "deployment_id": deployment_id}
        if deployment_id is None:
            msg = (
                f"Model {model_id!r} has no deployments yet; store one with "
                "model.store_deployment(source_path, project_name=...)."
            )
        else:
            msg = (
                f"Deployment {deployment_id!r} is not registered for model "
                f"{model_id!r}; see model.deployments for the ones that are."
            )
        LUMEServicesError.__init__(self, msg)


class WebhookNotFoundError(NotFoundError):
    entity = "webhook"
    hint = "list webhooks with `lume-services webhooks list`"


class DeliveryNotFoundError(NotFoundError):
    entity = "webhook delivery"
    hint = "list deliveries with `lume-services webhooks deliveries`"


class TokenNotFoundError(NotFoundError):
    entity = "active API token"
    hint = "list tokens with `lume-services tokens list`"


class JobNotFoundError(NotFoundError):
    entity = "job"
    hint = "the server lists jobs at GET /api/v1/jobs"


class RunNotFoundError(NotFoundError):
    entity = "run"
    hint = "list runs with `lume-services runs list`"


# --- conflicts -------------------------------------------------------------


class ConflictError(LUMEServicesError):
    """A write contradicts what is already stored; nothing was written."""


class VariablesConflictError(ConflictError):
    """Other variables for a deployment that has some (they come from its archive and never change)."""

    def __init__(self, deployment_id: int, stored_file: str, given_file: str) -> None:
        self.deployment_id, self.stored_file, self.given_file = deployment_id, stored_file, given_file
        super().__init__(
            f"Deployment {deployment_id!r} already has other variables (read from {stored_file!r}; "
            f"given: {given_file!r}); a deployment's variables come from its archive and never change. "
            "Nothing was written."
        )


class AlreadyExistsError(ConflictError):
    def __init__(self, entity: str, key: Any, detail: str) -> None:
        self.entity = entity
        self.key = key
        super().__init__(f"A {entity} {key!r} already exists {detail}; nothing was written.")


class ProjectAlreadyExistsError(AlreadyExistsError):
    def __init__(self, project_name: str, stored: str, given: str) -> None:
        self.stored_description = stored
        self.given_description = given
        super().__init__(
            "project",
            project_name,
            f"with description {_short(stored)} (given {_short(given)}); "
            "change it with update_project(...) instead",
        )


class FlowAlreadyExistsError(AlreadyExistsError):
    def __init__(self, flow_id: str, detail: str) -> None:
        super().__init__("flow", flow_id, detail)


class DeploymentConflictError(ConflictError):
    """Same model and version stored again with different bytes."""

    def __init__(self, model_id: int, version: str, stored_sha256: str, given_sha256: str) -> None:
        self.model_id = model_id
        self.version = version
        self.stored_sha256 = stored_sha256
        self.given_sha256 = given_sha256
        super().__init__(
            f"Model {model_id!r} already has version {version!r} with sha256 "
            f"{stored_sha256}, but the given artifact has sha256 {given_sha256}; "
            "release the changed package under a new version. Nothing was written."
        )


class LiveDeploymentChangedError(ConflictError):
    """Compare-and-swap of the live pointer: the live deployment is not the one expected."""

    def __init__(self, model_id: int, expected: int | None, actual: int | None) -> None:
        self.model_id = model_id
        self.expected = expected
        self.actual = actual

        def name(d: int | None) -> str:
            return "no deployment" if d is None else f"deployment {d!r}"

        super().__init__(
            f"The live deployment of model {model_id!r} is {name(actual)}, not {name(expected)} as "
            "expected: someone changed it meanwhile. Nothing was changed; look at "
            f"`lume-services deployments history {model_id}` and decide again."
        )


class LiveRequestClosedError(ConflictError):
    """An approval or rejection of a request that is no longer pending."""

    def __init__(self, request_id: int, state: str, decided_by: str | None) -> None:
        self.request_id = request_id
        self.state = state
        self.decided_by = decided_by
        by = f" by {decided_by!r}" if decided_by else ""
        super().__init__(
            f"Live request {request_id!r} was already {state}{by}; only pending requests can be "
            "approved or rejected. Nothing was changed."
        )


class InUseError(ConflictError):
    """A delete would orphan rows that refer to the target."""

    def __init__(self, entity: str, key: Any, users: str, remedy: str) -> None:
        self.entity = entity
        self.key = key
        super().__init__(f"Cannot delete {entity} {key!r}: {users}; {remedy}. Nothing was deleted.")


# --- permission ------------------------------------------------------------


class AuthenticationError(LUMEServicesError):
    """No API token, or one that is unknown, revoked or expired (never named in the message)."""

    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__(
            f"{problem}. Send a valid token as 'Authorization: Bearer <token>' "
            "(LUME_REGISTRY__TOKEN for the client); an administrator creates one with "
            "`lume-services tokens create NAME --scope read|write|admin`."
        )


class PermissionDeniedError(LUMEServicesError):
    """The acting principal may not make this change; nothing was written."""


class ScopeError(PermissionDeniedError):
    """A token whose scope (or project) does not cover the request."""

    def __init__(self, token_name: str, granted: str, needed: str, detail: str = "") -> None:
        self.token_name = token_name
        self.granted = granted
        self.needed = needed
        extra = f" {detail}" if detail else ""
        super().__init__(
            f"Token {token_name!r} has scope {granted!r}; this needs {needed!r}.{extra} "
            "Nothing was changed; ask an administrator for a token with that scope."
        )


class CsrfError(PermissionDeniedError):
    """A web UI form without its page's CSRF value: sent from another site, or from an ended session's page."""

    def __init__(self) -> None:
        super().__init__(
            "The form is not from this site's page of your session (CSRF check failed); "
            "reload the page and try again. Nothing was changed."
        )


class ApprovalRequiredError(PermissionDeniedError):
    """A protected model's live deployment changes only through an approved request."""

    def __init__(self, model_id: int, deployment_id: int | None) -> None:
        self.model_id = model_id
        self.deployment_id = deployment_id
        target = "DEPLOYMENT_ID" if deployment_id is None else repr(deployment_id)
        super().__init__(
            f"Model {model_id!r} requires approval to change its live deployment; nothing was changed. "
            f"Ask for it with request_live({target}, reason=...) (`lume-services deployments request-live ID --reason TEXT`) and have "
            "another person approve it."
        )


class SelfApprovalError(PermissionDeniedError):
    def __init__(self, request_id: int, actor: str) -> None:
        self.request_id = request_id
        self.actor = actor
        super().__init__(
            f"Live request {request_id!r} was made by {actor!r}, who cannot also approve it; "
            "another person must approve it. Nothing was changed."
        )


# --- validation ------------------------------------------------------------


class ValidationError(LUMEServicesError, ValueError):
    """Input refused before it reached the database."""

    def __init__(
        self, field: str, value: Any, problem: str, consequence: str = "Nothing was stored."
    ) -> None:
        self.field = field
        self.value = value
        self.problem = problem
        super().__init__(f"Invalid {field} {_short(value)}: {problem}. {consequence}")


class UnknownFilterError(ValidationError):
    """A filter keyword that is not a column of the table."""

    def __init__(self, table: str, unknown: Iterable[str], allowed: Iterable[str]) -> None:
        self.table = table
        self.unknown = sorted(unknown)
        self.allowed = sorted(allowed)
        self.field, self.value = "filter", self.unknown
        self.problem = "unknown keyword"
        LUMEServicesError.__init__(
            self,
            f"Extra kwargs found in query for table {table}: {', '.join(self.unknown)}. "
            f"Allowed keywords: {', '.join(self.allowed)}.",
        )


class UnsafeTargetError(ValidationError):
    """A webhook URL that may not be sent to (scheme, or an address it resolves to)."""

    def __init__(self, url: str, problem: str, consequence: str = "Nothing was stored.") -> None:
        super().__init__("webhook url", url, problem, consequence)


# --- configuration ---------------------------------------------------------


class ConfigurationError(LUMEServicesError):
    """lume-services is not configured, or configured wrongly."""


class EnvironmentNotConfiguredError(ConfigurationError):
    def __init__(self, env_vars: Mapping[str, list[str]] | None = None, detail: str = "") -> None:
        self.env_vars = dict(env_vars or {})
        self.detail = detail
        names = sorted({name for group in self.env_vars.values() for name in group})
        hint = f" Relevant variables: {', '.join(names)}." if names else ""
        if detail:
            msg = f"lume-services is misconfigured: {detail}. Fix the environment variables named.{hint}"
        else:
            msg = (
                "lume-services is not configured: call lume_services.config.configure() "
                f"first, after setting the LUME_* environment variables you need.{hint}"
            )
        super().__init__(msg)


class SchemaNotCurrentError(ConfigurationError):
    def __init__(self, database: str, current: str | None, head: str) -> None:
        self.current = current
        self.head = head
        super().__init__(
            f"The model database {database} is at schema revision {current!r}, "
            f"but this lume-services needs {head!r}; run `lume-services db upgrade`."
        )


class PredecessorSchemaError(SchemaNotCurrentError):
    """The database holds the predecessor lume-services' tables (or a half-done adoption of them)."""

    def __init__(self, database: str, why: str, head: str) -> None:
        self.current = None
        self.head = head
        self.why = why
        ConfigurationError.__init__(
            self,
            f"The model database {database} cannot be upgraded: {why}. Back it up, then run "
            "`lume-services db adopt --dry-run` to see what would change and `lume-services db adopt` "
            "to convert it in place (see \"Coming from the predecessor\" in the README).",
        )


class AdoptionRefusedError(ConfigurationError):
    """``db adopt`` found a database that is neither empty, ours, nor the predecessor's."""

    def __init__(self, database: str, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        super().__init__(
            f"The model database {database} is neither empty, a lume-services database, nor one of "
            f"the predecessor lume-services: {'; '.join(self.problems)}. Nothing was changed; point "
            "LUME_MODEL_DB__* at the predecessor's database, or adopt it by hand."
        )


class SchedulingNotConfiguredError(ConfigurationError):
    def __init__(self, detail: str) -> None:
        super().__init__(f"The scheduling service is not available: {detail}.")


# --- database --------------------------------------------------------------


COMMIT_OUTCOME_UNKNOWN = (
    "The commit failed: the change may or may not have been applied; read it back before retrying."
)


class DatabaseError(LUMEServicesError):
    """The database failed in a way that is not the caller's fault.

    ``outcome_unknown`` is True only when the COMMIT itself failed (typically
    the connection was lost while committing): the server may have applied
    the change before the answer was lost, so the message says to read it
    back before retrying. Such a unit of work is never retried automatically.
    Any other DatabaseError of a write happened before COMMIT: nothing was
    applied (the message says "Nothing was stored.") and a retry is safe.

    After ``outcome_unknown``, calling again is safe for the idempotent calls:
    every read; ``store_model``, ``store_project``, ``store_deployment``,
    ``store_deployment_with_flow``, ``store_flow``, ``store_flow_of_flows``
    and the bulk stores/``import_records`` with the same values (an identical
    row is returned, not stored twice); ``update_*`` and ``set_live`` without
    ``expected_live`` (the same values again are a no-op). Idempotent but
    answered differently the second time: ``set_live`` with ``expected_live``
    (LiveDeploymentChangedError whose ``actual`` is the wanted deployment),
    ``approve_live``/``reject_live`` (LiveRequestClosedError naming the
    decision) and ``delete_*`` (a NotFoundError). Not idempotent:
    ``request_live`` (a second pending request); read back with
    ``list_live_requests`` first. See the README, "When things go wrong".
    """

    def __init__(
        self, operation: str, reason: str, *, outcome_unknown: bool = False, consequence: str = ""
    ) -> None:
        self.operation = operation
        self.reason = reason
        self.outcome_unknown = outcome_unknown
        self.consequence = consequence or (COMMIT_OUTCOME_UNKNOWN if outcome_unknown else "")
        message = f"Database error during {operation}: {reason}."
        super().__init__(f"{message} {self.consequence}" if self.consequence else message)

    def __reduce__(self) -> tuple[Any, ...]:
        # The keyword arguments are not in ``args``: rebuild from the attributes.
        return (_rebuild_database_error, (type(self), self.operation, self.reason,
                                          self.outcome_unknown, self.consequence))  # fmt: skip


def _rebuild_database_error(
    cls: type[DatabaseError], operation: str, reason: str, outcome_unknown: bool, consequence: str
) -> DatabaseError:
    return cls(operation, reason, outcome_unknown=outcome_unknown, consequence=consequence)


# What SQLAlchemy appends to a driver's message, and how it prefixes it.
_SQLALCHEMY_TAILS = ("[SQL:", "[parameters:", "(Background on this error")
_WRAPPED_PREFIX = re.compile(r"^\((?:[A-Za-z_][\w]*\.)+[A-Za-z_]\w*\)\s*")


def driver_reason(exc: BaseException, *, secret: str | None = None) -> str:
    """The database driver's own reason for ``exc``, in one line, for a :class:`DatabaseError`.

    ``exc`` is a SQLAlchemy error (the driver's exception is its ``orig``) or a
    driver exception; nothing is imported to read it, so the command line can
    use this without loading SQLAlchemy. sqlite3 errors carry their message as
    their one argument, PyMySQL errors are ``(code, message)``, psycopg errors
    have their own message (``diag.message_primary`` for the server's). Only
    the first line is kept and what SQLAlchemy appends (``[SQL: ...]``,
    ``[parameters: ...]``, ``(Background on this error ...)``) is cut, so the
    reason never carries SQL text or parameters; ``secret`` (a password) is
    masked should a driver echo it.
    """
    orig = getattr(exc, "orig", None)
    if not isinstance(orig, BaseException):
        orig = exc
    args = getattr(orig, "args", ())
    primary = getattr(getattr(orig, "diag", None), "message_primary", None)
    if isinstance(primary, str) and primary.strip():  # psycopg, an error from the server
        reason = primary
    elif len(args) >= 2 and isinstance(args[0], int) and isinstance(args[1], str):  # PyMySQL
        reason = args[1]
    else:  # sqlite3, psycopg on the client side, anything else
        reason = str(orig)
    lines = reason.strip().splitlines()
    reason = lines[0] if lines else ""
    for tail in _SQLALCHEMY_TAILS:
        reason = reason.split(tail, 1)[0]
    reason = _WRAPPED_PREFIX.sub("", reason.strip())
    if secret:
        reason = reason.replace(secret, "***")
    return reason.strip().rstrip(".").strip() or type(orig).__name__


# --- environments and scheduling (filled in by later layers) ----------------


class EnvironmentResolutionError(LUMEServicesError):
    """A model package could not be fetched, inspected or installed."""


class SourceError(EnvironmentResolutionError):
    """A source string that is not an accepted kind of package source."""

    def __init__(self, source: str, problem: str) -> None:
        self.source = source
        super().__init__(f"Cannot use source {_short(source, 200)}: {problem}.")


class DownloadError(EnvironmentResolutionError):
    def __init__(self, url: str, problem: str) -> None:
        self.url = url
        super().__init__(f"Downloading {_short(url, 200)} failed: {problem}. Nothing was stored.")


class ChecksumMismatchError(EnvironmentResolutionError):
    def __init__(self, source: str, expected: str, actual: str) -> None:
        self.source, self.expected, self.actual = source, expected, actual
        super().__init__(
            f"The artifact from {_short(source, 200)} has sha256 {actual}, but {expected} was "
            "expected; check the source or the expected hash. Nothing was stored."
        )


class UnsafeArchiveError(EnvironmentResolutionError):
    """An archive that could write outside its directory or exhaust resources."""

    def __init__(self, archive: str, problem: str) -> None:
        self.archive = archive
        super().__init__(f"Refusing archive {archive!r}: {problem}. Nothing was extracted or installed.")


class PackageInspectionError(EnvironmentResolutionError):
    def __init__(self, archive: str, problem: str) -> None:
        self.archive = archive
        super().__init__(f"Package {archive!r} cannot be registered: {problem}.")


class VariablesFileError(PackageInspectionError):
    """A package's variables file cannot be read: which file, where, which variable, what is wrong."""

    def __init__(
        self, archive: str, member: str, problem: str, *, line: Any = None, variable: Any = None
    ) -> None:
        self.member, self.problem, self.line, self.variable = member, problem, line, variable
        where = ", ".join(
            part for part in (f"line {line}" if line else "", f"variable {variable!r}" if variable else "") if part
        )
        PackageInspectionError.__init__(
            self, archive, f"its variables file {member!r}{f' ({where})' if where else ''}: {problem}; "
            "fix the file and build the package again",
        )  # fmt: skip


class NoFlowFoundInPackageError(PackageInspectionError):
    def __init__(self, package: str, detail: str = "") -> None:
        self.package = package
        PackageInspectionError.__init__(
            self,
            package,
            "it declares no `<pkg>.flow` entry point in the `orchestration` group; add one "
            f'pointing at its Prefect flow (e.g. my_model.flow = "my_model.flow:flow"){detail}',
        )


class InstallError(EnvironmentResolutionError):
    def __init__(self, package: str, detail: str) -> None:
        self.package = package
        self.detail = detail
        super().__init__(f"Installing {package} into its environment failed; the installer said:\n{detail}")


class FlowLoadError(EnvironmentResolutionError):
    def __init__(self, package: str, detail: str) -> None:
        self.package = package
        self.detail = detail
        super().__init__(f"Loading the flow of {package} in its own environment failed:\n{detail}")


class MissingEnvironmentYamlError(EnvironmentResolutionError):
    def __init__(self, source: str) -> None:
        self.source = source
        super().__init__(f"No environment.yml found in {source!r}; add one at the package root.")


_OS_ADVICE = {
    errno.ENOSPC: "free space on that filesystem, or point LUME_HOME at a larger one",
    errno.EDQUOT: "free space within your quota, or point LUME_HOME at another filesystem",
    errno.EACCES: "make it writable by this user, or point LUME_HOME somewhere that is",
    errno.EPERM: "make it writable by this user, or point LUME_HOME somewhere that is",
    errno.EROFS: "that filesystem is read-only: point LUME_HOME at a writable one",
}


class StorageError(LUMEServicesError):
    """The operating system refused a file operation (no space, permission denied, read-only, ...)."""

    def __init__(self, doing: str, path: Any, exc: OSError) -> None:
        self.doing = doing
        self.path = str(exc.filename or path)
        self.errno = exc.errno
        reason = exc.strerror or type(exc).__name__
        advice = _OS_ADVICE.get(exc.errno or 0, "check that path and try again")
        super().__init__(f"{doing} failed: {reason} ({self.path}); {advice}.")


class RegistryUnreachableError(DatabaseError):
    """The registry server (LUME_REGISTRY__URL) did not answer."""

    def __init__(self, url: str, reason: str, change: bool = False) -> None:
        self.url = url
        self.operation, self.reason, self.outcome_unknown = f"reaching {url}", reason, change
        self.consequence = (
            "The change may or may not have been applied: read it back before retrying." if change
            else "Nothing was changed; retry when the server is up."
        )
        LUMEServicesError.__init__(self, f"The registry server {url} did not answer ({reason}). {self.consequence}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.url, self.reason, self.outcome_unknown))


class JobInterruptedError(LUMEServicesError):
    """A server job whose server stopped before it finished (no heartbeat within the lease)."""


class UnexpectedError(LUMEServicesError):
    """An error that lume-services did not anticipate: a bug to report, with the original chained."""

    def __init__(self, doing: str, exc: BaseException) -> None:
        self.doing = doing
        self.original = type(exc).__name__
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        super().__init__(
            f"{doing} failed with an unexpected {self.original}: {first or '(no message)'}. "
            "This is a bug in lume-services; please report it with the traceback."
        )


# --- the MLflow bridge --------------------------------------------------------


class MlflowError(LUMEServicesError):
    """Reading or writing an MLflow tracking server failed (credentials never appear in messages)."""


class MlflowUnreachableError(MlflowError):
    def __init__(self, url: str, problem: str) -> None:
        self.url, self.problem = url, problem
        super().__init__(
            f"The MLflow tracking server {url!r} could not be reached ({problem}); nothing was imported. "
            "Check --tracking-uri and that the server is running."
        )


class NotMlflowError(MlflowError):
    def __init__(self, url: str, detail: str) -> None:
        self.url, self.detail = url, detail
        super().__init__(
            f"{url!r} does not answer like an MLflow tracking server ({detail}); nothing was imported. "
            "Give the server's base URL (as MLFLOW_TRACKING_URI), e.g. 'https://mlflow.example.org'."
        )


class MlflowAuthError(MlflowError):
    def __init__(self, url: str, status: int) -> None:
        self.url, self.status = url, status
        what = "refused the credentials" if status == 401 else "denied access with these credentials"
        super().__init__(
            f"The MLflow tracking server {url!r} {what} (HTTP {status}); nothing was imported. "
            "Set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) "
            "to an account that may read the model registry."
        )


class MlflowRequestError(MlflowError):
    def __init__(self, url: str, what: str, status: int, detail: str) -> None:
        self.url, self.what, self.status, self.detail = url, what, status, detail
        super().__init__(
            f"The MLflow tracking server {url!r} answered HTTP {status} to {what}: {detail[:300]}. "
            "Check the server's log, or retry."
        )


class MlflowMappingError(MlflowError, ValueError):
    def __init__(self, path: str, problem: str) -> None:
        self.path, self.problem = path, problem
        super().__init__(
            f"The mapping file {path!r} is not valid: {problem}. Nothing was imported; "
            "fix the file (see 'Coming from MLflow' in the README for its fields)."
        )


class MlflowModelError(MlflowError):
    """One registered model (or version) cannot be imported as it is; nothing of it was written."""

    def __init__(self, name: str, problem: str, remedy: str, version: str | None = None) -> None:
        self.name, self.problem, self.remedy, self.version = name, problem, remedy, version
        which = f"Version {version!r} of registered model {name!r}" if version else f"Registered model {name!r}"
        super().__init__(f"{which}: {problem}; nothing of that model was imported. {remedy}")


class SchedulingError(LUMEServicesError):
    """The orchestrator refused or failed a request."""


class RegistrationError(SchedulingError):
    def __init__(self, what: str, detail: str) -> None:
        self.what = what
        super().__init__(f"Registering {what} with Prefect failed: {detail}")


class FlowFailedError(SchedulingError):
    def __init__(self, flow_run_id: str, message: str) -> None:
        self.flow_run_id = flow_run_id
        super().__init__(f"Flow run {flow_run_id!r} failed: {message}")


class RunTimeoutError(SchedulingError):
    def __init__(self, flow_run_id: str, timeout: float) -> None:
        self.flow_run_id = flow_run_id
        self.timeout = timeout
        super().__init__(
            f"Flow run {flow_run_id!r} did not finish within {timeout:g} s; it was cancelled. "
            "Pass a larger timeout, or use run() and check on it later."
        )


class TaskNotInFlowError(SchedulingError):
    def __init__(self, flow_name: str, task_name: str, tasks: Iterable[str] = ()) -> None:
        self.flow_name = flow_name
        self.task_name = task_name
        self.tasks = sorted(tasks)
        super().__init__(
            f"Flow {flow_name!r} has no task {task_name!r}; its tasks are: "
            f"{', '.join(self.tasks) or '(none)'}."
        )


class TaskNotCompletedError(SchedulingError):
    def __init__(self, task_name: str, state: str) -> None:
        self.task_name = task_name
        self.state = state
        super().__init__(f"Task {task_name!r} did not complete (state {state!r}).")


class EmptyResultError(SchedulingError):
    def __init__(self, flow_run_id: str) -> None:
        self.flow_run_id = flow_run_id
        super().__init__(f"Flow run {flow_run_id!r} completed without a stored result.")
