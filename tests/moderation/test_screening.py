"""Prompt screening on the live app over real HTTP: a refused prompt is a 400 that creates no
task, moves no credits and leaves a record for the operator; a clean one goes through."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import select

from vidgate.moderation.aliyun import AliyunTextModerator
from vidgate.moderation.models import ModerationBlock
from vidgate.moderation.screen import PromptScreen
from vidgate.moderation.wordlist import WordListModerator

from ..fixtures.app import Live
from ..fixtures.loopback import closed_port_url
from ..fixtures.operators import operator
from ..fixtures.samples import png_bytes
from ..fixtures.tasks import (
    BONUS,
    CHARGE_20,
    Caller,
    account,
    new_caller,
    tasks_of,
    upload,
    wait_for,
)

T2V = "/api/videos/text-to-video"
I2V = "/api/videos/image-to-video"
UNTOUCHED = (100, 0, [BONUS])
Install = Callable[..., PromptScreen]


async def _blocks(live: Live, user_id: uuid.UUID) -> list[tuple[str, str, str, str, str]]:
    async with live.runtime.db.session() as session:
        rows = await session.scalars(
            select(ModerationBlock)
            .where(ModerationBlock.user_id == user_id)
            .order_by(ModerationBlock.id)
        )
        return [(b.kind, b.source, b.category, b.rule, b.prompt_excerpt) for b in rows]


async def _image_body(http: httpx.AsyncClient, caller: Caller, prompt: str) -> dict[str, Any]:
    image = await upload(http, caller, png_bytes((320, 400)), "still.png", "image")
    return {"prompt": prompt, "image_urls": [image]}


def _refused(category: str) -> dict[str, str]:
    return {
        "detail": f"The prompt was refused by content screening: {category}."
        " Change the prompt and try again; nothing was charged."
    }


async def test_a_listed_prompt_is_refused_for_each_kind_with_a_prompt(
    live: Live, http: httpx.AsyncClient, install: Install, wordlist: WordListModerator
) -> None:
    install(wordlist)
    caller = await new_caller(http)
    text = await http.post(T2V, headers=caller.headers, json={"prompt": "Ｋｉｌｌ them. all"})
    assert (text.status_code, text.json()) == (400, _refused("violence"))
    assert "kill" not in text.text.lower()  # the entry itself is never shown

    body = await _image_body(http, caller, "a 炸·弹 in the square")
    image = await http.post(I2V, headers=caller.headers, json=body)
    assert (image.status_code, image.json()) == (400, _refused("violence"))

    assert await tasks_of(live.runtime.db, caller.user_id) == []
    assert await account(live.runtime.db, caller.user_id) == UNTOUCHED
    assert await _blocks(live, caller.user_id) == [
        ("text-to-video", "wordlist", "violence", "word list line 2", "Ｋｉｌｌ them. all"),
        ("image-to-video", "wordlist", "violence", "word list line 3", "a 炸·弹 in the square"),
    ]


async def test_a_clean_prompt_is_created_and_charged(
    live: Live, http: httpx.AsyncClient, install: Install, wordlist: WordListModerator
) -> None:
    install(wordlist)
    caller = await new_caller(http)
    created = await http.post(T2V, headers=caller.headers, json={"prompt": "a skillful dancer"})
    assert created.status_code == 200, created.text
    task_id = created.json()["task_id"]
    assert await tasks_of(live.runtime.db, caller.user_id) == [task_id]
    assert (await wait_for(http, caller, task_id))["status"] == "SUCCEEDED"
    credits, _, rows = await account(live.runtime.db, caller.user_id)
    assert (credits, rows) == (80, [BONUS, CHARGE_20])
    assert await _blocks(live, caller.user_id) == []


async def test_a_refusal_gives_its_idempotency_key_back(
    live: Live, http: httpx.AsyncClient, install: Install, wordlist: WordListModerator
) -> None:
    install(wordlist)
    caller = await new_caller(http)
    headers = {**caller.headers, "Idempotency-Key": str(uuid.uuid4())}
    refused = await http.post(T2V, headers=headers, json={"prompt": "BUY   now!"})
    assert (refused.status_code, refused.json()) == (400, _refused("spam"))
    again = await http.post(T2V, headers=headers, json={"prompt": "BUY   now!"})
    assert again.status_code == 400 and "Idempotent-Replayed" not in again.headers
    fixed = await http.post(T2V, headers=headers, json={"prompt": "a quiet harbour"})
    assert fixed.status_code == 200, fixed.text
    assert await tasks_of(live.runtime.db, caller.user_id) == [fixed.json()["task_id"]]


async def test_the_vendor_flags_a_prompt(
    live: Live, http: httpx.AsyncClient, install: Install, vendor: AliyunTextModerator
) -> None:
    install(vendor)
    caller = await new_caller(http)
    flagged = await http.post(
        T2V, headers=caller.headers, json={"prompt": "a rally [label:political_content]"}
    )
    assert (flagged.status_code, flagged.json()) == (400, _refused("political_content"))
    assert await tasks_of(live.runtime.db, caller.user_id) == []
    assert await account(live.runtime.db, caller.user_id) == UNTOUCHED
    assert await _blocks(live, caller.user_id) == [
        (
            "text-to-video",
            "aliyun",
            "political_content",
            "aliyun labels political_content",
            "a rally [label:political_content]",
        )
    ]
    passed = await http.post(T2V, headers=caller.headers, json={"prompt": "a calm lake"})
    assert passed.status_code == 200, passed.text


async def test_a_vendor_down_refuses_creates_when_failing_closed(
    live: Live, http: httpx.AsyncClient, install: Install
) -> None:
    down = AliyunTextModerator("id", "secret", endpoint=closed_port_url(), timeout=1.0)
    install(down)
    caller = await new_caller(http)
    refused = await http.post(T2V, headers=caller.headers, json={"prompt": "a calm lake"})
    assert refused.status_code == 503
    assert refused.json() == {
        "detail": "Content screening is unavailable right now, so no task was created and"
        " nothing was charged; try again shortly."
    }
    assert refused.headers["Retry-After"] == "30"
    assert await tasks_of(live.runtime.db, caller.user_id) == []
    assert await account(live.runtime.db, caller.user_id) == UNTOUCHED
    await down.aclose()


async def test_a_vendor_down_lets_prompts_through_when_failing_open(
    live: Live, http: httpx.AsyncClient, install: Install, wordlist: WordListModerator
) -> None:
    down = AliyunTextModerator("id", "secret", endpoint=closed_port_url(), timeout=1.0)
    install(wordlist, down, fail_open=True)
    caller = await new_caller(http)
    passed = await http.post(T2V, headers=caller.headers, json={"prompt": "a calm lake"})
    assert passed.status_code == 200, passed.text
    # The operator's list still applies while the vendor is away.
    listed = await http.post(T2V, headers=caller.headers, json={"prompt": "kill them all"})
    assert (listed.status_code, listed.json()) == (400, _refused("violence"))
    await down.aclose()


async def test_operators_see_refused_prompts(
    live: Live, http: httpx.AsyncClient, install: Install, wordlist: WordListModerator
) -> None:
    install(wordlist)
    caller = await new_caller(http)
    await http.post(T2V, headers=caller.headers, json={"prompt": "buy now"})
    admin = await operator(http, live.runtime, "support")
    page = await http.get(
        "/api/admin/moderation/blocks",
        headers=admin.headers,
        params={"user_id": str(caller.user_id)},
    )
    assert page.status_code == 200, page.text
    body = page.json()
    assert body["total"] == 1
    (block,) = body["blocks"]
    assert {k: block[k] for k in ("user_id", "kind", "category", "rule", "prompt_excerpt")} == {
        "user_id": str(caller.user_id),
        "kind": "text-to-video",
        "category": "spam",
        "rule": "word list line 5",
        "prompt_excerpt": "buy now",
    }
    users = await http.get("/api/admin/moderation/blocks", headers=caller.headers)
    assert users.status_code == 403
