"""Settings and the service container.

Settings come from ``LUME_*`` environment variables, nested with ``__``
(``LUME_MODEL_DB__HOST``), case-insensitive, with no ``.env`` file.
``configure()`` validates them and builds a :class:`Context`; nothing
connects, imports a driver or writes a file until a service is first used,
and nothing is ever written outside ``LUME_HOME``.

With no ``LUME_MODEL_DB__*`` variable set the registry is an embedded
SQLite file, ``$LUME_HOME/registry.db``.
"""

from __future__ import annotations

import threading
import types
from pathlib import Path
from typing import Any, Literal, Optional, Union, get_args, get_origin

from pydantic import BaseModel, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from lume_services.api.settings import ApiSettings
from lume_services.client.settings import RegistrySettings
from lume_services.environment.settings import EnvironmentSettings
from lume_services.errors import EnvironmentNotConfiguredError
from lume_services.events.settings import EventsSettings
from lume_services.services.models.db.db import ModelDB, ModelDBConfig
from lume_services.services.scheduling.settings import PrefectSettings

ENV_PREFIX = "LUME_"
DEFAULT_HOME = Path("~/.lume-services")


class LUMEServicesSettings(BaseSettings):
    """All lume-services settings (environment variables ``LUME_*``)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        case_sensitive=False,
        extra="ignore",
    )

    actor: Optional[str] = Field(
        default=None,
        description="Who is acting, recorded in audit events, live history and approvals (printable, at most 100 characters); unset: <os user>@<hostname>.",
    )
    home: Path = Field(
        default=DEFAULT_HOME,
        description="Directory for everything lume-services writes locally (embedded registry, environments, Prefect home).",
    )
    backend: Literal["local", "docker", "kubernetes"] = Field(
        default="local",
        description="Where flows run: local processes, docker or kubernetes (predecessor-compatible; read by the scheduling layer).",
    )
    model_db: Optional[ModelDBConfig] = Field(
        default=None,
        description="Model registry database; unset means the embedded SQLite file $LUME_HOME/registry.db.",
    )
    environment: EnvironmentSettings = Field(
        default_factory=EnvironmentSettings, description="Fetching, inspecting and installing packages."
    )
    prefect: PrefectSettings = Field(default_factory=PrefectSettings, description="Prefect 3 orchestration.")
    events: EventsSettings = Field(default_factory=EventsSettings, description="Event delivery to webhooks.")
    api: ApiSettings = Field(default_factory=ApiSettings, description="The REST server (`lume-services serve`).")
    registry: RegistrySettings = Field(
        default_factory=RegistrySettings, description="A registry server to use instead of a database."
    )

    @field_validator("home")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser().absolute()

    @field_validator("actor")
    @classmethod
    def _valid_actor(cls, value: Optional[str]) -> Optional[str]:
        if value is None:
            return None
        from lume_services.services.models.validation import check_actor

        try:
            return check_actor(value)
        except ValueError as exc:
            raise ValueError(exc.problem) from None  # type: ignore[attr-defined]

    def model_db_config(self) -> ModelDBConfig:
        return self.model_db or ModelDBConfig(sqlite_path=self.home / "registry.db")


class Context:
    """Lazily built service singletons for one set of settings."""

    def __init__(self, settings: LUMEServicesSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._model_db: Optional[ModelDB] = None
        self._model_db_service: Any = None
        self._scheduling_service: Any = None
        self._connection: Any = None

    def __repr__(self) -> str:
        if self.remote:
            return f"Context(home={str(self.settings.home)!r}, registry={self.settings.registry.url!r})"
        return f"Context(home={str(self.settings.home)!r}, model_db={self.model_db()!r})"

    @property
    def remote(self) -> bool:
        """True with LUME_REGISTRY__URL: services talk to that server, never to a database."""
        return self.settings.registry.url is not None

    def connection(self) -> Any:
        """The :class:`~lume_services.client.http.RegistryConnection` (remote only)."""
        from lume_services.client.http import RegistryConnection

        with self._lock:
            if self._connection is None:
                self._connection = RegistryConnection(self.settings.registry)
            return self._connection

    def model_db(self) -> ModelDB:
        if self.remote:
            from lume_services.errors import ConfigurationError

            raise ConfigurationError(
                f"LUME_REGISTRY__URL is set ({self.settings.registry.url}): this client has no database; "
                "run database commands on the server host."
            )
        with self._lock:
            if self._model_db is None:
                self._model_db = ModelDB(self.settings.model_db_config())
            return self._model_db

    def model_db_service(self) -> Any:
        """The :class:`~lume_services.services.models.service.ModelDBService` (remote: its HTTP twin)."""
        if self.remote:
            from lume_services.client.registry import RemoteModelDBService

            connection = self.connection()
            with self._lock:
                if self._model_db_service is None:
                    self._model_db_service = RemoteModelDBService(connection)
                return self._model_db_service
        from lume_services.services.models.service import ModelDBService

        db = self.model_db()
        with self._lock:
            if self._model_db_service is None:
                self._model_db_service = ModelDBService(db, actor=self.settings.actor)
                self._model_db_service.events_settings = self.settings.events
            return self._model_db_service

    def scheduling_service(self) -> Any:
        """The Prefect 3 :class:`~lume_services.services.scheduling.service.SchedulingService` (remote: its twin)."""
        if self.remote:
            from lume_services.client.scheduling import RemoteSchedulingService

            connection = self.connection()
            with self._lock:
                if self._scheduling_service is None:
                    self._scheduling_service = RemoteSchedulingService(connection)
                return self._scheduling_service
        from lume_services.services.scheduling.service import SchedulingService

        with self._lock:
            if self._scheduling_service is None:
                s = self.settings
                self._scheduling_service = SchedulingService(s.prefect, home=s.home, backend=s.backend)
            return self._scheduling_service

    def registrar(self) -> Any:
        """What stores deployments from sources: this machine's pipeline, or (remote) a server job."""
        if self.remote:
            from lume_services.client.jobs import RemoteRegistrar

            return RemoteRegistrar(self.connection())
        from lume_services.models.registration import LocalRegistrar, Services

        return LocalRegistrar(Services.of(self))

    def artifact_store(self) -> Any:
        """The content-addressed :class:`~lume_services.environment.store.ArtifactStore`."""
        from lume_services.environment.store import ArtifactStore

        return ArtifactStore(self.settings.home / "store", self.settings.environment, _uv_bin())

    def environment_manager(self) -> Any:
        """The :class:`~lume_services.environment.envs.EnvironmentManager` (one env per artifact)."""
        from lume_services.environment.envs import EnvironmentManager

        s = self.settings
        return EnvironmentManager(s.home / "envs", s.environment, _uv_bin(), s.home)

    def close(self) -> None:
        if self._model_db is not None:
            self._model_db.dispose()
        if self._connection is not None:
            self._connection.close()


def _uv_bin() -> str:
    from uv import find_uv_bin

    return find_uv_bin()


context: Optional[Context] = None
_settings: Optional[LUMEServicesSettings] = None


def configure(settings: Optional[LUMEServicesSettings] = None) -> Context:
    """Validate settings (from the environment unless given) and build the context."""
    global context, _settings
    if settings is None:
        try:
            settings = LUMEServicesSettings()
        except ValidationError as exc:
            raise EnvironmentNotConfiguredError(
                get_env_vars(LUMEServicesSettings, only=_failed_groups(exc)),
                detail=_safe_errors(exc),
            ) from None
    if context is not None:
        context.close()
    _settings = settings
    context = Context(settings)
    return context


def get_context() -> Context:
    """The configured context, or a clear error saying to call configure()."""
    if context is None:
        raise EnvironmentNotConfiguredError(get_env_vars(LUMEServicesSettings))
    return context


def _safe_errors(exc: ValidationError) -> str:
    """Describe validation errors by variable name and problem, never by value."""
    parts = []
    for err in exc.errors(include_input=False, include_url=False):
        name = ENV_PREFIX + "__".join(str(p) for p in err["loc"]).upper()
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{name}: {msg}")
    return "; ".join(parts)


def _failed_groups(exc: ValidationError) -> set[str]:
    groups = set(get_env_vars(LUMEServicesSettings))
    failed = {str(err["loc"][0]).lower() for err in exc.errors() if err["loc"]}
    return {name if name in groups else "base" for name in failed}


def _nested_model(annotation: Any) -> Optional[type[BaseModel]]:
    if get_origin(annotation) in (Union, types.UnionType):
        for arg in get_args(annotation):
            found = _nested_model(arg)
            if found is not None:
                return found
        return None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def iter_settings(model: type[BaseModel], prefix: str = ENV_PREFIX) -> list[tuple[str, str, Any, str]]:
    """(VARIABLE, type, default, description) for every leaf setting."""
    rows = []
    for name, field in model.model_fields.items():
        var = f"{prefix}{name.upper()}"
        nested = _nested_model(field.annotation)
        if nested is not None:
            rows.extend(iter_settings(nested, var + "__"))
            continue
        default = None if field.is_required() else field.get_default(call_default_factory=True)
        rows.append((var, _type_name(field.annotation), default, field.description or ""))
    return rows


def _type_name(annotation: Any) -> str:
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) is Literal:
        return " / ".join(str(a) for a in get_args(annotation))
    if args and get_origin(annotation) is not Literal:
        return _type_name(args[0])
    return getattr(annotation, "__name__", str(annotation))


def get_env_vars(
    settings_cls: type[BaseModel] = LUMEServicesSettings, only: Optional[set[str]] = None
) -> dict[str, list[str]]:
    """Variable names by group: ``{"base": [...], "model_db": [...], ...}``."""
    groups: dict[str, list[str]] = {}
    for var, *_ in iter_settings(settings_cls):
        rest = var[len(ENV_PREFIX) :]
        group = rest.split("__")[0].lower() if "__" in rest else "base"
        if only is None or group in only:
            groups.setdefault(group, []).append(var)
    return groups
