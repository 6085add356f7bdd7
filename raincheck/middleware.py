"""``RaincheckMiddleware``: tells ``on_success`` jobs the response's status code.

Without it, ``on_success`` still skips jobs of requests that raised, but cannot
see a 404 or a 500 that a view returned. Put it first in ``MIDDLEWARE`` so it
sees the final response.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase

from raincheck.buffers import note_status


class RaincheckMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        response: HttpResponseBase = self.get_response(request)
        note_status(response.status_code)
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        get_response: Callable[[HttpRequest], Awaitable[HttpResponseBase]] = self.get_response
        response = await get_response(request)
        note_status(response.status_code)
        return response
