"""The baseline for bench/run.py: the cheapest useful FastAPI endpoint (no database, no auth)."""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI(title="trivial")


class Pong(BaseModel):
    status: str
    service: str
    version: int


@app.get("/ping", response_model=Pong)
async def ping() -> Pong:
    return Pong(status="ok", service="trivial", version=1)
