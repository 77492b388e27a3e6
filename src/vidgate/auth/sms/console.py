"""Development sender: logs the code and keeps it in the outbox table the dev endpoint reads."""

from __future__ import annotations

import structlog

from vidgate.auth.models import DevSmsMessage
from vidgate.db.engine import Database

logger = structlog.get_logger(__name__)


class ConsoleSmsSender:
    name = "console"

    def __init__(self, db: Database) -> None:
        self._db = db

    async def send_code(self, phone_e164: str, code: str) -> None:
        async with self._db.transaction() as session:
            session.add(DevSmsMessage(phone=phone_e164, code=code))
        # Info, not a warning: nothing is wrong. A terminal shows it as a highlighted sentence.
        logger.info("sms.console", phone=phone_e164, code=code, note="development only")

    async def aclose(self) -> None:
        return None
