"""/api/v1/models: list, search, read, create, update, tag; models with their live deployment."""

from __future__ import annotations

from typing import Annotated, Optional

from fastapi import APIRouter, Query, Response

from lume_services.api.bodies import ModelCreate, ModelUpdate, TagsRemove, TagsSet
from lume_services.api.deps import Reader, Writer
from lume_services.api.routes.common import After, Field100, JSONBody, Limit, Search, Tags, given, tag_filter
from lume_services.services.models.records import LoadedDeployment, ModelRecord, ModelWithLive, Page

router = APIRouter(tags=["models"])
MODEL, MODELS_PAGE, MODELS_WITH_LIVE_PAGE = JSONBody(ModelRecord), JSONBody(Page[ModelRecord]), JSONBody(Page[ModelWithLive])


@router.get("/models", response_model=Page[ModelRecord])
def list_models(access: Reader, limit: Limit = 100, after: After = None, search: Search = None,
                author: Field100 = None, laboratory: Field100 = None, facility: Field100 = None,
                beampath: Field100 = None, description: Field100 = None, require_approval: Optional[bool] = None,
                tag: Tags = ()) -> Response:  # fmt: skip
    """A page of models in model_id order, filtered by fields (exact), tags (all) and ``search`` (any text)."""
    filters = given(author=author, laboratory=laboratory, facility=facility, beampath=beampath,
                    description=description, require_approval=require_approval)  # fmt: skip
    return MODELS_PAGE(access.service.list_models(limit=limit, after=after, search=search, **filters,
                                                  **tag_filter(tag)))  # fmt: skip


@router.get("/live-models", response_model=Page[ModelWithLive])
def list_models_with_live(access: Reader, limit: Limit = 100, after: After = None, search: Search = None,
                          author: Field100 = None, laboratory: Field100 = None, facility: Field100 = None,
                          beampath: Field100 = None, tag: Tags = ()) -> Response:  # fmt: skip
    """A page of models, each with its live deployment (null when none is live)."""
    filters = given(author=author, laboratory=laboratory, facility=facility, beampath=beampath)
    return MODELS_WITH_LIVE_PAGE(access.service.list_models_with_live(limit=limit, after=after, search=search,
                                                                      **filters, **tag_filter(tag)))  # fmt: skip


@router.get("/models/{model_id}", response_model=ModelRecord)
def get_model(model_id: int, access: Reader) -> Response:
    return MODEL(access.service.get_model(model_id=model_id))


@router.get("/models/{model_id}/loaded-deployment", response_model=LoadedDeployment)
def load_deployment(model_id: int, access: Reader,
                    deployment_id: Annotated[Optional[int], Query(ge=1, le=2**31 - 1)] = None) -> LoadedDeployment:  # fmt: skip
    """A deployment (the latest when none is named) with its flow, project, steps and variables."""
    return access.service.load_deployment(model_id=model_id, deployment_id=deployment_id)


@router.post("/models", response_model=ModelRecord, status_code=201)
def create_model(body: ModelCreate, access: Writer, response: Response) -> ModelRecord:
    """Store a model (storing the same fields again returns the same model)."""
    access.require_unrestricted("Creating a model")
    model_id = access.service.store_model(**body.model_dump())
    response.headers["Location"] = f"/api/v1/models/{model_id}"
    return access.service.get_model(model_id=model_id)


@router.patch("/models/{model_id}", response_model=ModelRecord)
def update_model(model_id: int, body: ModelUpdate, access: Writer) -> ModelRecord:
    access.require_unrestricted("Changing a model")
    return access.service.update_model(model_id, **body.model_dump(exclude_unset=True))


@router.post("/models/{model_id}/tags", response_model=ModelRecord)
def set_model_tags(model_id: int, body: TagsSet, access: Writer) -> ModelRecord:
    """Set (add or replace) tags; the others stay."""
    access.require_unrestricted("Tagging a model")
    return access.service.set_model_tags(model_id, body.tags)


@router.post("/models/{model_id}/tags/remove", response_model=ModelRecord)
def remove_model_tags(model_id: int, body: TagsRemove, access: Writer) -> ModelRecord:
    access.require_unrestricted("Tagging a model")
    return access.service.remove_model_tags(model_id, body.keys)
