"""The ``job_scheduled`` signal: each job reaching ``schedule()``, and where it goes."""

from __future__ import annotations

from collections.abc import Callable

from django.core.signals import request_finished, request_started
from django.dispatch import Signal

from raincheck import scheduling, signals
from raincheck.testing import wait_idle
from tests.app import jobs
from tests.conftest import Received


def test_a_job_outside_a_request_is_announced_for_the_pool(
    received: Callable[[Signal], Received],
) -> None:
    """Outside a request: the original function as sender, the arguments, and "pool"."""
    sent = received(signals.job_scheduled)
    jobs.remember.schedule("now")
    wait_idle()
    assert len(sent) == 1
    assert sent[0]["sender"] is jobs.remember.func
    assert sent[0]["args"] == ("now",)
    assert sent[0]["kwargs"] == {}
    assert sent[0]["function"] is jobs.remember
    assert sent[0]["destination"] == "pool"


def test_a_receiver_closes_the_direct_path_so_plain_jobs_in_a_request_are_announced(
    received: Callable[[Signal], Received],
) -> None:
    """With a receiver connected, refresh_direct_path() keeps the direct path closed, and a
    plain job inside a request is announced as held in the buffer."""
    scheduling.refresh_direct_path()
    assert scheduling.direct_path.open
    sent = received(signals.job_scheduled)
    scheduling.refresh_direct_path()
    assert not scheduling.direct_path.open
    request_started.send(sender=None)
    try:
        jobs.remember.schedule("later")
    finally:
        request_finished.send(sender=None)
    wait_idle()
    assert [(kwargs["args"], kwargs["destination"]) for kwargs in sent] == [(("later",), "buffer")]
