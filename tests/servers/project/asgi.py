"""ASGI entry point: Django's handler, wrapped to record when a response is sent.

Django sends the last body message, then runs ``response.close()`` (which sends
``request_finished``). The wrapper records ``response-sent`` once the server has
taken the last body message, which is before that. With ``pause=M`` in the
query it then records ``paused`` and waits for the marker ``M`` before handing
control back to Django, i.e. before ``request_finished``.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.servers.project.settings")

from django.core.asgi import get_asgi_application

from tests.servers.project.events import POLL_SECONDS, has_marker, record

django_application = get_asgi_application()

Message = Mapping[str, Any]

# How long a paused response waits for its marker.
HOLD_SECONDS = 10.0


async def wait_for_marker(name: str) -> None:
    deadline = time.monotonic() + HOLD_SECONDS
    while not has_marker(name) and time.monotonic() < deadline:
        await asyncio.sleep(POLL_SECONDS)


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    query = parse_qs(scope.get("query_string", b"").decode())
    tags = query.get("tag")
    if scope["type"] != "http" or not tags:
        await django_application(scope, receive, send)
        return
    tag = tags[0]
    pause = query.get("pause", [None])[0]

    async def send_and_record(message: Message) -> None:
        await send(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            record(tag, "response-sent")
            if pause is not None:
                record(tag, "paused")
                await wait_for_marker(pause)

    await django_application(scope, receive, send_and_record)
