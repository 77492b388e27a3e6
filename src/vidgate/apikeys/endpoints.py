"""`/api/users/api-keys`: a user's personal keys (for calling vidgate from their own servers)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from vidgate.apikeys import service
from vidgate.apikeys.errors import ApiKeyNotFound, KeyOwnerDeleted, TooManyApiKeys
from vidgate.apikeys.models import ApiKey
from vidgate.apikeys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyList, ApiKeyOut
from vidgate.auth.dependencies import CurrentUser
from vidgate.auth.schemas import MessageResponse
from vidgate.deps import DbSession, RuntimeDep
from vidgate.errors import documented

router = APIRouter(prefix="/api/users/api-keys", tags=["api keys"])


def key_out(key: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(
        id=str(key.id),
        name=key.name,
        prefix=key.prefix,
        kind=key.kind,
        created_at=key.created_at,
        last_used_at=key.last_used_at,
        revoked_at=key.revoked_at,
    )


@router.post(
    "",
    response_model=ApiKeyCreated,
    status_code=201,
    responses=documented(TooManyApiKeys, KeyOwnerDeleted),
)
async def create_api_key(
    body: ApiKeyCreate, user: CurrentUser, session: DbSession
) -> ApiKeyCreated:
    """Create a personal key. The `key` in the answer is shown this once and never again."""
    created = await service.create_personal_key(session, user.id, body.name)
    return ApiKeyCreated(
        id=str(created.key.id),
        name=created.key.name,
        key=created.secret,
        prefix=created.key.prefix,
        created_at=created.key.created_at,
    )


@router.get("", response_model=ApiKeyList)
async def list_api_keys(user: CurrentUser, session: DbSession) -> ApiKeyList:
    """The user's active personal keys (never their secrets)."""
    return ApiKeyList(
        api_keys=[key_out(k) for k in await service.list_keys(session, user_id=user.id)]
    )


@router.delete("/{key_id}", response_model=MessageResponse, responses=documented(ApiKeyNotFound))
async def revoke_api_key(
    key_id: uuid.UUID, user: CurrentUser, session: DbSession, runtime: RuntimeDep
) -> MessageResponse:
    if not await service.revoke_key(session, runtime.principals, key_id, user_id=user.id):
        raise ApiKeyNotFound()
    return MessageResponse(message="API key revoked")
