"""push-live: live changes made in lume-services set the MLflow alias, so MLflow-based deployers follow.

Stateless and idempotent: for each model mirrored from the tracking server,
compare its live deployment's MLflow version here (``ours``), the alias's
version last seen (the model tag ``mlflow.alias.<alias>``) and the alias in
MLflow now (``theirs``):

* ours == seen: nothing moved here, nothing to push (an alias moved in MLflow
  is ``sync``'s to bring in);
* ours != seen and theirs == seen: the live deployment changed here: set the
  alias (delete it when nothing is live), then record the version as seen;
* ours != seen and theirs != seen: both moved: reported as a conflict, nothing
  is pushed (run ``sync`` to take MLflow's, or ``live set`` again here).

A failed request is retried (the client's retries, then ``attempts`` rounds)
and reported; the live change here stands either way. A live deployment
that did not come from this server cannot be pushed and is reported.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

from lume_services.errors import MlflowError
from lume_services.mlflow.client import MlflowClient
from lume_services.mlflow.importer import KEY_NAME, KEY_URI, KEY_VERSION, alias_key

ATTEMPTS = 3


@dataclass
class Pushed:
    name: str
    model_id: int
    action: str  # pushed, removed, conflict, failed, not mirrored
    version: Optional[str] = None
    detail: Optional[str] = None


@dataclass
class PushReport:
    tracking_uri: str
    alias: str
    models: list[Pushed] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"tracking_uri": self.tracking_uri, "alias": self.alias, "models": [asdict(m) for m in self.models]}


def push_live(service: Any, client: MlflowClient, *, alias: str = "champion", attempts: int = ATTEMPTS,
              pause: float = 1.0) -> PushReport:  # fmt: skip
    report = PushReport(client.url, alias)
    key = alias_key(alias)
    state = service.mirror_state(tags={KEY_URI: client.url})
    moved = [m for m in state if _ours(m) != m.model.tags.get(key)]
    if not moved:
        return report
    theirs = {rm["name"]: {a["alias"]: a["version"] for a in rm.get("aliases") or ()}.get(alias)
              for rm in client.registered_models([m.model.tags[KEY_NAME] for m in moved])}  # fmt: skip
    for mirrored in moved:
        report.models.append(_push_one(service, client, mirrored, alias, theirs, attempts, pause))
    return report


def _ours(mirrored: Any) -> Optional[str]:
    live = next((d for d in mirrored.deployments if d.is_live), None)
    return None if live is None else live.tags.get(KEY_VERSION, f"(not from MLflow: version {live.version!r})")


def _push_one(service: Any, client: MlflowClient, mirrored: Any, alias: str, theirs: dict[str, Any],
              attempts: int, pause: float) -> Pushed:  # fmt: skip
    name, model_id = mirrored.model.tags[KEY_NAME], mirrored.model.model_id
    ours, seen = _ours(mirrored), mirrored.model.tags.get(alias_key(alias))
    if ours is not None and ours.startswith("(not from MLflow"):
        return Pushed(name, model_id, "not mirrored", None, f"the live deployment is {ours[1:-1]}; MLflow cannot point at it")
    if theirs.get(name) != seen:
        return Pushed(name, model_id, "conflict", ours,
                      f"the alias moved in MLflow too ({seen or '-'} -> {theirs.get(name) or '-'}); "
                      "run 'lume-services mlflow sync' to take MLflow's, or set live here again")  # fmt: skip
    send: Callable[[], None] = (
        (lambda: client.set_alias(name, alias, ours)) if ours is not None else (lambda: client.delete_alias(name, alias))
    )
    error = _retry(send, attempts, pause)
    if error is not None:
        return Pushed(name, model_id, "failed", ours, f"{error} The live change here stands; push-live again later.")
    if ours is None:
        service.remove_model_tags(model_id, [alias_key(alias)])
    else:
        service.set_model_tags(model_id, {alias_key(alias): ours})
    return Pushed(name, model_id, "pushed" if ours is not None else "removed", ours)


def _retry(send: Callable[[], None], attempts: int, pause: float) -> Optional[MlflowError]:
    for attempt in range(max(1, attempts)):
        try:
            send()
            return None
        except MlflowError as exc:
            error = exc
            if attempt + 1 < attempts:
                time.sleep(pause * 2**attempt)
    return error
