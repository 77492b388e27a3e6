"""Task test helpers: sign in, upload samples, wait for an outcome, read the money."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select

from vidgate.credits import service as ledger
from vidgate.credits.models import LedgerEntry
from vidgate.db.engine import Database
from vidgate.users.models import User

from ..helpers import DEV_CLIENT_KEY, sign_in
from ..samples import mp4_bytes, png_bytes

TERMINAL = {"SUCCEEDED", "FAILED", "TIMEOUT", "CANCELED"}


@dataclass
class Caller:
    user_id: uuid.UUID
    headers: dict[str, str]  # Bearer + the development client key


async def new_caller(http: httpx.AsyncClient) -> Caller:
    signed = await sign_in(http)
    headers = {**signed.headers, "X-API-Key": DEV_CLIENT_KEY}
    me = await http.get("/api/auth/me", headers=headers)
    assert me.status_code == 200, me.text
    return Caller(uuid.UUID(me.json()["id"]), headers)


async def upload(
    http: httpx.AsyncClient, caller: Caller, data: bytes, filename: str, file_type: str
) -> str:
    response = await http.post(
        "/api/videos/upload",
        headers=caller.headers,
        files={"file": (filename, data)},
        data={"file_type": file_type},
    )
    assert response.status_code == 200, response.text
    url: str = response.json()["file_url"]
    return url


async def animate_inputs(
    http: httpx.AsyncClient, caller: Caller, *, seconds: float = 2.5, image_name: str = "me.png"
) -> dict[str, str]:
    image = await upload(http, caller, png_bytes((320, 400)), image_name, "image")
    video = await upload(
        http, caller, mp4_bytes(seconds=seconds, fps=10, size=(256, 256)), "ref.mp4", "video"
    )
    return {"image_url": image, "video_url": video}


async def wait_for(
    http: httpx.AsyncClient,
    caller: Caller,
    task_id: str,
    statuses: set[str] = TERMINAL,
    within: float = 60,
) -> dict[str, Any]:
    async with asyncio.timeout(within):
        while True:
            response = await http.get(f"/api/tasks/{task_id}", headers=caller.headers)
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            if body["status"] in statuses:
                return body
            await asyncio.sleep(0.1)


async def account(db: Database, user_id: uuid.UUID) -> tuple[int, int, list[tuple[str, int, int]]]:
    """(credits, reserved, ledger rows as (kind, delta, reserved_delta)) oldest first."""
    async with db.session() as session:
        user = await session.get_one(User, user_id)
        rows = (
            await session.execute(
                select(LedgerEntry.kind, LedgerEntry.delta, LedgerEntry.reserved_delta)
                .where(LedgerEntry.user_id == user_id)
                .order_by(LedgerEntry.id)
            )
        ).all()
        drift = [d for d in await ledger.find_drift(session) if d.user_id == user_id]
    assert drift == [], drift
    return user.credits, user.credits_reserved, [(r[0], r[1], r[2]) for r in rows]


async def text_to_video(http: httpx.AsyncClient, caller: Caller, prompt: str) -> str:
    """Create a text-to-video task (standard, landscape); its id."""
    created = await http.post(
        "/api/videos/text-to-video", headers=caller.headers, json={"prompt": prompt}
    )
    assert created.status_code == 200, created.text
    task_id: str = created.json()["task_id"]
    return task_id
