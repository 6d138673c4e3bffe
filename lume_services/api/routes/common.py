"""What the routers share: query parameters typed once (paging, tags), pre-serialized JSON bodies."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Optional

from fastapi import Query, Response
from pydantic import TypeAdapter

from lume_services.errors import ValidationError

Limit = Annotated[int, Query(ge=1, le=1000, description="Items per page (at most 1000).")]
After = Annotated[Optional[int], Query(ge=0, le=2**63 - 1, description="`next_after` of the previous page.")]
Tags = Annotated[list[str], Query(max_length=50, description="key=value; repeat for several (all must match).")]
Search = Annotated[Optional[str], Query(max_length=200, description="Text in any of the fields.")]
Field100 = Annotated[Optional[str], Query(max_length=2000)]


def tag_filter(pairs: Sequence[str]) -> dict[str, object]:
    """``tags={...}`` for the service's reads, from ``?tag=k=v&tag=...`` (none: no filter)."""
    tags: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValidationError("tag", pair, "expected key=value", "Nothing was read.")
        tags[key] = value
    return {"tags": tags} if tags else {}


def given(**values: object) -> dict[str, object]:
    """The filters a request set (None: not given)."""
    return {k: v for k, v in values.items() if v is not None}


class JSONBody:
    """A route's ``response_model`` body as JSON bytes, for routes that return a ``Response`` themselves.

    The bytes are FastAPI's own for that model (the same TypeAdapter
    serialization, ``by_alias``), but made in the route's thread from the
    service's records: FastAPI would validate the records again against the
    model (in another thread-pool hop) before serializing them. The route
    keeps ``response_model`` for the OpenAPI document.
    """

    def __init__(self, model: Any) -> None:
        self.adapter: TypeAdapter[Any] = TypeAdapter(model)

    def __call__(self, value: Any) -> Response:
        return Response(self.adapter.dump_json(value, by_alias=True), media_type="application/json")
