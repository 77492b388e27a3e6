"""Buying credits end to end on the live app, through the emulated WeChat Pay and Stripe: the
order, the payer's page, the gateway's signed notification back to vidgate, the credits."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from ..fixtures.app import Live
from ..fixtures.tasks import Caller, account, new_caller


def bearer(caller: Caller) -> dict[str, str]:
    return {"Authorization": caller.headers["Authorization"]}


async def until_completed(http: httpx.AsyncClient, caller: Caller, payment_id: str) -> Any:
    async with asyncio.timeout(15):
        while True:
            shown = (await http.get(f"/api/payments/{payment_id}", headers=bearer(caller))).json()
            if shown["status"] != "pending":
                return shown
            await asyncio.sleep(0.05)


async def test_wechat_native_order_paid_on_the_emulator_is_credited(
    live: Live, http: httpx.AsyncClient
) -> None:
    caller = await new_caller(http)
    created = await http.post(
        "/api/payments/wechat/create",
        headers=bearer(caller),
        json={"amount": 100, "currency": "CNY", "credits": 1100},
    )
    assert created.status_code == 200, created.text
    order = created.json()
    assert order["code_url"].startswith("weixin://wxpay/bizpayurl?pr=")
    assert (order["status"], order["provider"], order["amount"]) == ("pending", "wechat", 100.0)

    out_trade_no = uuid.UUID(order["payment_id"]).hex
    paid = await http.post(f"/_emulator/wechatpay/_control/orders/{out_trade_no}/pay")
    assert paid.status_code == 200, paid.text
    shown = await until_completed(http, caller, order["payment_id"])
    assert shown["status"] == "completed" and shown["paid_at"]
    credits, reserved, rows = await account(live.runtime.db, caller.user_id)
    assert (credits, reserved) == (100 + 1100, 0)
    assert rows[-1] == ("purchase", 1100, 0)


async def test_wechat_h5_page_pays_and_credits(live: Live, http: httpx.AsyncClient) -> None:
    caller = await new_caller(http)
    created = await http.post(
        "/api/payments/wechat/create",
        headers=bearer(caller),
        json={"amount": 50, "credits": 500, "scene": "h5"},
    )
    assert created.status_code == 200, created.text
    h5_url = created.json()["h5_url"]
    page = await http.get(h5_url)
    assert page.status_code == 200 and "EMULATED" in page.text and "50.00" in page.text
    form_path = httpx.URL(h5_url).path
    await http.post(form_path, data={})
    shown = await until_completed(http, caller, created.json()["payment_id"])
    assert shown["status"] == "completed"
    assert (await account(live.runtime.db, caller.user_id))[0] == 600


async def test_stripe_checkout_paid_on_the_emulator_is_credited(
    live: Live, http: httpx.AsyncClient
) -> None:
    caller = await new_caller(http)
    created = await http.post(
        "/api/payments/stripe/create",
        headers=bearer(caller),
        json={"amount": 500, "credits": 6000, "return_url": "https://app.example/paid"},
    )
    assert created.status_code == 200, created.text
    checkout_url = created.json()["checkout_url"]
    page = await http.get(checkout_url)
    assert page.status_code == 200 and "EMULATED" in page.text
    done = await http.post(httpx.URL(checkout_url).path, data={"method": "card"})
    assert done.status_code == 303
    assert done.headers["location"].startswith("https://app.example/paid")
    shown = await until_completed(http, caller, created.json()["payment_id"])
    assert shown["status"] == "completed"
    credits, _, rows = await account(live.runtime.db, caller.user_id)
    assert credits == 6100
    assert [r for r in rows if r[0] == "purchase"] == [("purchase", 6000, 0)]
