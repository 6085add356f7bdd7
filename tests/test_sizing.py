"""The elastic pool's thread target: grown for jobs that wait, not for jobs that
compute, and never judged on a window in which the jobs were all there was to do."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from unittest import mock

from raincheck import sizing
from raincheck.sizing import CORE_THREADS, HOLD, ThreadBudget

STEP = 0.01  # seconds between two steps the budget is told of
CAP = 32


def run(
    budget: ThreadBudget,
    seconds: float,
    jobs_per_second: Callable[[int], float],
    *,
    start: float = 0.0,
    waiting: int | Callable[[int], int] = 1000,
    idle: bool = False,
    cpu_share: float = 0.0,
    callers_wait: bool | Callable[[int], bool] = False,
) -> list[int]:
    """Tell ``budget`` of slow steps for ``seconds``, finishing ``jobs_per_second(target)``;
    the targets it had, step by step. ``callers_wait`` may depend on the step's number."""
    targets: list[int] = []
    now, cpu, owed = start, 0.0, 0.0
    while now < start + seconds:
        wait = callers_wait(len(targets)) if callable(callers_wait) else callers_wait
        queued = waiting(len(targets)) if callable(waiting) else waiting
        now += STEP
        cpu += cpu_share * STEP
        owed += jobs_per_second(budget.target) * STEP
        done, owed = int(owed), owed - int(owed)
        if idle:
            budget.went_idle()
        with mock.patch("time.thread_time", return_value=cpu):
            budget.step_done(2 * sizing.SLOW_STEP, done, now, queued, wait)
        targets.append(budget.target)
    return targets


def waits(target: int) -> float:
    """Jobs that wait 5 ms: each thread finishes 200 a second."""
    return 200.0 * target


def flat(target: int) -> float:
    """Jobs held back by something other than threads (the GIL, a shared lock)."""
    return 800.0


def test_a_backlog_of_jobs_that_wait_grows_the_target_to_the_cap() -> None:
    budget = ThreadBudget(CAP, 0.0)
    targets = run(budget, 5.0, waits)
    assert targets[-1] == CAP
    assert max(targets) == CAP


def test_more_threads_that_finish_no_more_jobs_go_back_and_wait() -> None:
    """Every trial up fails; each failure waits longer before the next."""
    budget = ThreadBudget(CAP, 0.0)
    targets = run(budget, 30.0, flat)
    assert targets[-1] == CORE_THREADS
    assert max(targets) == 2 * CORE_THREADS
    trials = sum(1 for a, b in itertools.pairwise(targets) if b > a)
    assert trials <= 4  # at about 1 s, then 5, 10 and 20 s later


def test_a_window_with_an_idle_worker_is_never_taken_for_capacity() -> None:
    """Paced jobs, then a backlog: the backlog's rate is never compared with the paced one."""
    budget = ThreadBudget(CAP, 0.0)
    paced = run(budget, 3.0, flat, waiting=3, idle=True)
    assert max(paced) <= 2 * CORE_THREADS
    targets = run(budget, 5.0, waits, start=3.0)
    assert targets[-1] == CAP


def test_jobs_that_compute_get_no_more_threads() -> None:
    """The pool's threads already hold the GIL 40 % of the time: no trial adds threads."""
    budget = ThreadBudget(CAP, 0.0)
    targets = run(budget, 10.0, waits, cpu_share=0.4)
    assert max(targets) == CORE_THREADS


def test_jobs_that_wait_get_threads_once_callers_wait_for_the_pool() -> None:
    """The pool's threads hold the GIL 40 % of the time (a job's wake-up costs more
    on a busy machine), but the queue is full: the callers wait for the pool, not
    for the GIL, so more threads are tried, and kept as they finish more jobs."""
    budget = ThreadBudget(CAP, 0.0)
    targets = run(budget, 5.0, waits, cpu_share=0.4, callers_wait=True)
    assert targets[-1] == CAP


def test_threads_that_are_not_needed_come_down_by_trying() -> None:
    """At the cap, a quarter fewer threads finish as many jobs: down to the core."""
    budget = ThreadBudget(CAP, 0.0)
    budget.resized(CAP, CAP)
    targets = run(budget, HOLD + 10.0, flat)
    assert targets[0] == CAP
    assert targets[-1] == CORE_THREADS


def test_no_trial_down_while_callers_wait_for_the_pool() -> None:
    """Threads that finish no more jobs come down (above), but not while the
    queue is full: then the requests wait for them."""
    budget = ThreadBudget(CAP, 0.0)
    budget.resized(CAP, CAP)
    targets = run(budget, HOLD + 10.0, flat, callers_wait=True)
    assert min(targets) == CAP


def test_no_trial_down_after_a_window_in_which_callers_waited_at_all() -> None:
    """Under a saturated server the queue is full most of the time, not at every
    instant: room for a request's few jobs, its threads not in line yet. A window
    that ended on such an instant was taken for one with room, and a trial down
    could follow, as many as noise let pass (seen: a gunicorn worker of 32
    threads down to 6 with its queue full)."""
    budget = ThreadBudget(CAP, 0.0)
    budget.resized(CAP, CAP)
    targets = run(budget, HOLD + 10.0, flat, callers_wait=lambda step: step % 2 == 0)
    assert min(targets) == CAP


def test_no_trial_down_while_the_jobs_waiting_pile_up() -> None:
    """A queue that grows, full or not yet, says the threads do not keep up:
    fewer cannot be enough, whatever a window's rate says (seen: a trial from
    8 threads down to 6 with 5,000 jobs waiting and growing, as a saturating
    load began)."""
    budget = ThreadBudget(CAP, 0.0)
    budget.resized(CAP, CAP)
    targets = run(budget, HOLD + 10.0, flat, waiting=lambda step: 1000 + step)
    assert min(targets) == CAP


def test_threads_that_are_needed_stay_after_a_trial_down() -> None:
    """At the cap, a quarter fewer threads finish a quarter fewer jobs: back to the cap,
    and the next trial down waits longer."""
    budget = ThreadBudget(CAP, 0.0)
    budget.resized(CAP, CAP)
    targets = run(budget, HOLD + 20.0, waits)
    assert targets[-1] == CAP
    assert min(targets) == CAP - CAP // 4
    below = sum(1 for t in targets if t < CAP) * STEP
    assert below < 2.0  # trials of half a second: at 5, 10, 20 s


def sublinear(target: int) -> float:
    """Jobs that wait, sharing the GIL: a quarter fewer threads finish 13 % fewer."""
    return 1000.0 * math.sqrt(target)


def test_steps_down_that_each_lose_a_little_do_not_add_up() -> None:
    """Each trial down loses less than a trial may (1 / GAIN), but they are judged
    against the best the threads did, so the pool stays within that of it rather
    than sliding to the core with two thirds of its jobs per second gone."""
    budget = ThreadBudget(CAP, 0.0)
    budget.resized(CAP, CAP)
    targets = run(budget, HOLD + 60.0, sublinear)
    kept = [t for t in targets if sublinear(t) * sizing.GAIN >= sublinear(CAP)]
    assert min(targets) == CAP - CAP // 4 - (CAP - CAP // 4) // 4  # one trial below
    below = sum(1 for t in targets if t not in kept) * STEP
    assert below < 3.0  # trials of half a second, each failure waiting longer


def test_a_stopping_process_gets_every_thread_the_cap_allows() -> None:
    """Jobs that compute keep the target at the core while the server runs; once
    the process is stopping, what is queued must run by the stop's deadline and
    the server no longer needs the GIL: the target goes to the cap and stays."""
    stop_at = math.inf
    budget = ThreadBudget(CAP, 0.0, lambda: stop_at)
    assert max(run(budget, 10.0, flat, cpu_share=0.4)) == CORE_THREADS
    stop_at = 20.0  # a stop signal came
    targets = run(budget, 10.0, flat, start=10.0, cpu_share=0.4)
    assert targets[0] == CAP
    assert min(targets) == CAP  # no trial takes threads away again
    budget.resized(CAP, 1)  # a thread retired
    assert budget.target == CAP


def test_finish_up_says_whether_more_threads_should_start() -> None:
    """The drain asks for every thread at once, whether or not a step has ended."""
    budget = ThreadBudget(CAP, 0.0)
    assert budget.finish_up()
    assert budget.target == CAP
    assert not budget.finish_up()
