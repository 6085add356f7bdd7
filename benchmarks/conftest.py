"""Fixtures of the pytest-benchmark suites; each session runs one peer (``BENCH_PEER``)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.signals import request_finished

from benchmarks import jobs, peers

# Every library that hands off at request_finished, by the module it lives in.
HANDING_OFF = {"raincheck": "raincheck", "dj_raincheck": "dj_raincheck"}


@pytest.fixture(scope="session")
def peer() -> Iterator[peers.Peer]:
    """This session's peer, after checking that no other one listens to request ends."""
    peer = peers.active()
    for name, module in HANDING_OFF.items():
        if name != peer.name and module in sys.modules:
            raise RuntimeError(
                f"{module} is loaded in the {peer.name} process: run with -p no:{name}"
            )
    foreign = [
        receiver
        for receiver in request_finished._live_receivers(None)[0]
        if getattr(receiver, "__module__", "").split(".")[0] in HANDING_OFF.values()
        and getattr(receiver, "__module__", "").split(".")[0] != HANDING_OFF.get(peer.name)
    ]
    if foreign:
        raise RuntimeError(f"another library listens to request_finished: {foreign}")
    yield peer
    peer.discard()


@pytest.fixture(autouse=True)
def _fresh_jobs() -> None:
    jobs.DONE.clear()
    jobs.THREADS_SEEN.clear()
    jobs.THREAD_NAMES.clear()


def measure(
    benchmark: Any,
    target: Callable[[], object],
    setup: Callable[[], object] = lambda: None,
    *,
    budget: float,
    calls: int = 1,
    min_rounds: int = 5,
    max_rounds: int = 500,
) -> None:
    """Time ``target`` (``setup`` untimed before each round) for about ``budget`` seconds.

    One untimed round first measures how long a round takes (and pays for any
    first use: a pool, an import); the round count follows from it. ``calls``
    says how many operations one round performs, for a per-operation figure.
    """
    started = time.perf_counter()
    setup()
    target()
    cycle = time.perf_counter() - started
    rounds = max(min_rounds, min(max_rounds, int(budget / max(cycle, 1e-6))))

    def timed_setup() -> None:
        setup()

    benchmark.extra_info["calls"] = calls
    benchmark.pedantic(target, setup=timed_setup, rounds=rounds, warmup_rounds=min(5, rounds // 10))
