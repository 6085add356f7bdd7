"""``RaincheckMiddleware``: tells ``on_success`` jobs the response's status code.

Without it, ``on_success`` still skips jobs of requests that raised, but cannot
see a 404 or a 500 that a view returned. Put it first in ``MIDDLEWARE`` so it
sees the final response.

It also opens the request's buffer when ``request_started`` could not: Django's
test ``AsyncClient`` on Django 5.0-6.0 sends that signal in a copy of the
request's context (see raincheck.buffers).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase

from raincheck.buffers import note_status, open_buffer, request_buffer


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
        if request_buffer() is None:
            open_buffer()
        response: HttpResponseBase = self.get_response(request)
        note_status(response.status_code)
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        get_response: Callable[[HttpRequest], Awaitable[HttpResponseBase]] = self.get_response
        if request_buffer() is None:
            open_buffer()
        response = await get_response(request)
        note_status(response.status_code)
        return response
