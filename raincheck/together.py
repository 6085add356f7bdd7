"""Async jobs a thread runs itself, awaited together rather than one after another.

The async jobs that find no room on raincheck's event loop (under ``block``
and ``caller_runs`` alike: they do not wait for room) run in the thread that
hands them off. Awaited one after another, five webhooks of 200 ms held that
thread for a second, and under ASGI, where that thread is one Django makes per
request, such threads piled up five times as fast as the jobs needed. Awaited
together, as on raincheck's loop, they hold it for the longest of them.
"""

from __future__ import annotations

import asyncio

from raincheck.awaiting import OWN_THREAD
from raincheck.jobs import Job, await_here, report_failure, run_async


def run_together(jobs: list[Job]) -> list[bool]:
    """Await the async ``jobs`` at once, in this thread; each one's outcome, in order.

    Each runs as a task in its own context, with a thread of its own for its
    sync calls, reported like any job. Never raises for a job.
    """
    outcomes: list[bool | None] = [None] * len(jobs)

    async def each(position: int, job: Job) -> None:
        # run_async reports every exception of the job's own; None is only ever
        # a drain's cancellation, and no drain cancels these.
        outcomes[position] = bool(await run_async(job, _never, OWN_THREAD))

    async def all_of_them() -> None:
        loop = asyncio.get_running_loop()
        # Made in each job's context: its task runs in a copy of it.
        tasks = [job[3].run(loop.create_task, each(i, job)) for i, job in enumerate(jobs)]
        await asyncio.gather(*tasks)

    try:
        await_here(all_of_them)
    except BaseException as exc:
        # No loop or no thread to await them on (a helper thread at interpreter
        # shutdown): each job not done fails with that error, never silently.
        for position, job in enumerate(jobs):
            if outcomes[position] is None:
                report_failure(job, exc)
    return [bool(outcome) for outcome in outcomes]


def _never() -> bool:
    return False
