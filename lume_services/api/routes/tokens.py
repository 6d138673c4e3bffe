"""/api/v1/tokens (admin): create (the token is in this answer only), list, revoke."""

from __future__ import annotations

from datetime import timedelta
from typing import Optional

from fastapi import APIRouter
from pydantic import BaseModel

from lume_services.api.bodies import TokenCreate
from lume_services.api.deps import Admin, Reader
from lume_services.services.models.event_records import TokenRecord

router = APIRouter(tags=["tokens"])


class CreatedToken(BaseModel):
    token: str  # shown only in this answer
    record: TokenRecord


class Principal(BaseModel):
    name: str  # who changes made with this token are recorded as
    scope: str
    project_name: Optional[str]


@router.get("/whoami", response_model=Principal)
def whoami(access: Reader) -> Principal:
    """The caller's token: its name, scope and project (``anonymous`` / read without one)."""
    token = access.token
    if token is None:
        return Principal(name=access.name, scope="read", project_name=None)
    return Principal(name=token.name, scope=token.scope, project_name=token.project_name)


@router.get("/tokens", response_model=list[TokenRecord])
def list_tokens(access: Admin, include_revoked: bool = False) -> list[TokenRecord]:
    return access.service.list_tokens(include_revoked=include_revoked)


@router.post("/tokens", response_model=CreatedToken, status_code=201)
def create_token(body: TokenCreate, access: Admin) -> CreatedToken:
    expires_in = None if body.expires_in_days is None else timedelta(days=body.expires_in_days)
    new = access.service.create_token(body.name, scope=body.scope, project_name=body.project_name,
                                      expires_in=expires_in)  # fmt: skip
    return CreatedToken(token=new.token.get_secret_value(), record=new.record)


@router.delete("/tokens/{name}", response_model=TokenRecord)
def revoke_token(name: str, access: Admin) -> TokenRecord:
    """Revoke: every request with that token is refused from now on, on every replica."""
    return access.service.revoke_token(name)
