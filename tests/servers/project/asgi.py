"""ASGI entry point: Django's handler, wrapped to record when a response is sent.

Django sends the last body message, then runs ``response.close()`` (which sends
``request_finished``). The wrapper records ``response-sent`` once the server has
taken the last body message, which is before that. With ``pause=S`` in the
query it then records ``paused`` and waits ``S`` seconds before handing control
back to Django, i.e. before ``request_finished``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.servers.project.settings")

from django.core.asgi import get_asgi_application

from tests.servers.project import observability
from tests.servers.project.events import record

if observability.LIBRARY == "otel":
    # Before Django builds its middleware chain, which the instrumentation joins.
    from tests.servers.project import observe_otel  # noqa: F401

django_application = get_asgi_application()

Message = Mapping[str, Any]


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
                await asyncio.sleep(float(pause))

    await django_application(scope, receive, send_and_record)
