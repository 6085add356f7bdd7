"""The jobs of the debug toolbar tests and of their demo page; each only records its call."""

from __future__ import annotations

import threading
from typing import Any

from raincheck import raincheck

calls: list[tuple[str, tuple[Any, ...]]] = []
calls_lock = threading.Lock()


def record(name: str, *args: Any) -> None:
    with calls_lock:
        calls.append((name, args))


@raincheck
def send_welcome_email(user_id: int, *, subject: str) -> None:
    record("send_welcome_email", user_id, subject)


@raincheck(on_success=True, unique=True)
def refresh_recommendations(user_id: int) -> None:
    record("refresh_recommendations", user_id)


@raincheck
def index_document(document: dict[str, Any]) -> None:
    record("index_document", document)


@raincheck
async def ping_webhook(url: str) -> None:
    record("ping_webhook", url)
