"""Seats: the pool's threads and async jobs' sync-call threads share RAINCHECK_MAX_WORKERS."""

from __future__ import annotations

import asyncio
import threading
from contextvars import copy_context

import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings

import raincheck
from raincheck import process
from raincheck import raincheck as decorate
from raincheck import seats as seats_module
from raincheck.callthreads import CallThread, CallThreads
from raincheck.jobs import Job, run
from raincheck.pool import Pool
from raincheck.seats import Seats
from raincheck.testing import wait_idle
from tests.app import jobs
from tests.app.jobs import HOLD_LIMIT, Gate, thread_of

seen = {"now": 0, "peak": 0, "threads": 0}
lock = threading.Lock()


def sync_part() -> None:
    """A sync call of an async job (an ORM query, say) that overlaps the others'."""
    with lock:
        seen["now"] += 1
        seen["peak"] = max(seen["peak"], seen["now"])
        ours = [t for t in threading.enumerate() if t.name.startswith("raincheck-")]
        seen["threads"] = max(seen["threads"], len(ours))  # raincheck-loop's included
    threading.Event().wait(0.01)  # the query's own time
    with lock:
        seen["now"] -= 1


@decorate
async def with_a_sync_call() -> None:
    await sync_to_async(sync_part)()
    await asyncio.sleep(0)


def reset() -> None:
    seen.update(now=0, peak=0, threads=0)


@override_settings(RAINCHECK_MAX_WORKERS=3)
def test_async_jobs_sync_call_threads_stay_within_max_workers() -> None:
    """Thirty async jobs awaiting at once, each with a sync call: at most 3 threads,
    raincheck-loop's included."""
    reset()
    for _ in range(30):
        with_a_sync_call.schedule()
    wait_idle(HOLD_LIMIT)
    assert raincheck.stats().succeeded == 30
    assert 1 <= seen["peak"] <= 3
    assert seen["threads"] <= 3


@override_settings(RAINCHECK_MAX_WORKERS=3)
def test_the_pool_and_async_jobs_share_the_cap() -> None:
    """A pool thread held by a sync job and raincheck-loop leave one seat for async
    jobs' threads."""
    reset()
    gate = Gate()
    jobs.held.schedule(gate, "held")
    assert gate.started.wait(HOLD_LIMIT)
    for _ in range(20):
        with_a_sync_call.schedule()
    # The async jobs finish while the pool's thread is still held.
    while raincheck.stats().succeeded < 20:
        assert seen["threads"] <= 3
        threading.Event().wait(0.01)
    assert seen["threads"] <= 3
    assert seen["peak"] == 1
    gate.release.set()
    wait_idle(HOLD_LIMIT)
    assert raincheck.stats().succeeded == 21


@override_settings(RAINCHECK_MAX_WORKERS=1)
def test_an_idle_pool_thread_gives_its_seat_to_an_async_job() -> None:
    """The pool's thread does not keep its seat for its 30 s keep-alive while a job waits."""
    reset()
    jobs.remember.schedule("pool")
    wait_idle(HOLD_LIMIT)
    assert raincheck.stats().workers == 1  # idle, with the only seat
    with_a_sync_call.schedule()
    wait_idle(HOLD_LIMIT)
    assert raincheck.stats().succeeded == 2


@decorate
def a_sync_job() -> None:
    sync_part()


@decorate
async def sets(event: threading.Event) -> None:
    event.set()


def threads_for_ten_sync_jobs() -> int:
    """The most of raincheck's threads (raincheck-loop's included) seen by 10 sync jobs."""
    reset()
    for _ in range(10):
        a_sync_job.schedule()
    wait_idle(HOLD_LIMIT)
    return seen["threads"]


def two_held_jobs() -> list[Gate]:
    """Two sync jobs running until their gates are released: a cap of 2, all taken."""
    gates = [Gate(), Gate()]
    for gate in gates:
        jobs.held.schedule(gate, "held")
    assert all(gate.started.wait(HOLD_LIMIT) for gate in gates)
    return gates


@override_settings(RAINCHECK_MAX_WORKERS=2)
def test_raincheck_loop_holds_a_seat_of_the_cap() -> None:
    """Once async jobs have started raincheck-loop, sync jobs get one pool thread of two."""
    jobs.remember_async.schedule("the loop starts")
    wait_idle(HOLD_LIMIT)
    assert threads_for_ten_sync_jobs() == 2
    assert raincheck.stats().succeeded == 11


@override_settings(RAINCHECK_MAX_WORKERS=2)
def test_raincheck_loop_waits_for_a_seat_a_pool_thread_gives_up() -> None:
    """With every seat taken, the loop starts once the first pool thread to finish
    its job leaves for it, not one thread past the cap."""
    gates = two_held_jobs()
    loop_ran = threading.Event()
    sets.schedule(loop_ran)
    assert "raincheck-loop" not in [t.name for t in threading.enumerate()]
    gates[0].release.set()
    assert loop_ran.wait(HOLD_LIMIT)
    gates[1].release.set()
    wait_idle(HOLD_LIMIT)
    assert threads_for_ten_sync_jobs() == 2
    assert raincheck.stats().succeeded == 13


@override_settings(RAINCHECK_MAX_WORKERS=2)
def test_a_loop_still_waiting_for_a_seat_at_the_drain_deadline_drops_its_jobs() -> None:
    """Counted and named like any job the drain could not run; the seat is not
    kept waiting for a loop that is gone, and the next loop starts as usual."""
    gates = two_held_jobs()
    never_ran = threading.Event()
    sets.schedule(never_ran)
    raincheck.shutdown(timeout=0.1)
    assert raincheck.stats().dropped == 3  # the two held jobs and the waiting one
    seats = process.current().seats
    assert seats is not None
    assert not seats.over()  # the pool's threads would leave after each job
    for gate in gates:
        gate.release.set()
    ran = threading.Event()
    sets.schedule(ran)
    assert ran.wait(HOLD_LIMIT)
    assert not never_ran.is_set()


both_calling = threading.Barrier(2, timeout=HOLD_LIMIT)
calls_by_job: dict[str, set[int]] = {"a": set(), "b": set()}


def record_call(name: str, *, meet: bool = False) -> None:
    calls_by_job[name].add(threading.get_ident())
    if meet:
        both_calling.wait()  # the other job's call runs at the same time


@decorate
async def calls_its_thread(name: str) -> None:
    await sync_to_async(record_call)(name, meet=True)
    # A task of its own, made by gather, still calls on the job's thread.
    await asyncio.gather(sync_to_async(record_call)(name), sync_to_async(record_call)(name))


def test_each_async_job_sync_calls_share_one_thread_of_their_own() -> None:
    """Like a request under ASGI: a job's sync calls share a thread no other running job uses."""
    both_calling.reset()
    for values in calls_by_job.values():
        values.clear()
    calls_its_thread.schedule("a")
    calls_its_thread.schedule("b")
    wait_idle(HOLD_LIMIT)
    assert raincheck.stats().succeeded == 2
    assert len(calls_by_job["a"]) == len(calls_by_job["b"]) == 1
    assert calls_by_job["a"] != calls_by_job["b"]


def test_an_async_job_without_sync_calls_starts_no_thread_for_them() -> None:
    for _ in range(10):
        jobs.remember_async.schedule("no sync call")
    wait_idle(HOLD_LIMIT)
    assert raincheck.stats().succeeded == 10
    assert not [t for t in threading.enumerate() if t.name.startswith("raincheck-sync-")]


outliver_threads: list[str] = []
outliver_done = threading.Event()


def record_thread_name() -> None:
    outliver_threads.append(threading.current_thread().name)


async def call_after(go: asyncio.Event) -> None:
    await go.wait()
    await sync_to_async(record_thread_name)()
    outliver_done.set()


left_running: set[asyncio.Task[None]] = set()


@decorate
async def leaves_a_task_behind() -> None:
    go = asyncio.Event()
    task = asyncio.get_running_loop().create_task(call_after(go))
    left_running.add(task)
    asyncio.get_running_loop().call_later(0.01, go.set)


@override_settings(RAINCHECK_MAX_WORKERS=1)
def test_a_task_that_outlives_its_job_still_gets_a_thread_within_the_cap() -> None:
    """The job's thread has gone back when the job returned; a task it left running
    gets one for its call, leased from the same cap, not one asgiref would start."""
    outliver_threads.clear()
    outliver_done.clear()
    leaves_a_task_behind.schedule()
    wait_idle(HOLD_LIMIT)
    assert outliver_done.wait(HOLD_LIMIT)
    [name] = outliver_threads
    assert name.startswith("raincheck-sync-")


@decorate
async def leaves_a_call_waiting(task_made: threading.Event) -> None:
    task = asyncio.get_running_loop().create_task(sync_to_async(record_thread_name)())
    left_running.add(task)
    task.add_done_callback(lambda _: outliver_done.set())
    await asyncio.sleep(0)  # the task's call now waits for a thread
    task_made.set()


@override_settings(RAINCHECK_MAX_WORKERS=1)
def test_a_call_waiting_for_a_thread_when_its_job_ends_still_runs() -> None:
    """The call came from a task the job left running, not from the job: its job's
    end does not cancel it; it runs once a thread is free."""
    outliver_threads.clear()
    outliver_done.clear()
    gate = Gate()
    jobs.held.schedule(gate, "held")  # the only seat, busy
    assert gate.started.wait(HOLD_LIMIT)
    task_made = threading.Event()
    leaves_a_call_waiting.schedule(task_made)
    assert task_made.wait(HOLD_LIMIT)
    while raincheck.stats().succeeded < 1:  # the job has ended, its task's call waits
        threading.Event().wait(0.005)
    assert outliver_threads == []
    gate.release.set()
    assert outliver_done.wait(HOLD_LIMIT)
    [name] = outliver_threads
    assert name.startswith("raincheck-sync-")
    wait_idle(HOLD_LIMIT)


def test_a_call_thread_stopped_by_its_own_call_leaves_without_waiting_for_itself() -> None:
    """A thread given back from its own last call (a task a job left running) may be
    the one that leaves for the pool: it cannot join itself."""
    threads = CallThreads(Seats(1))
    got: list[CallThread | None] = []
    threads.lease(got.append)
    thread = leased(got)
    stopping = thread.submit(lambda: thread.stop(wait=True))
    stopping.result(timeout=HOLD_LIMIT)  # raises what the call raised
    for left in threading.enumerate():
        if left.name.startswith("raincheck-sync-"):
            left.join(HOLD_LIMIT)
            assert not left.is_alive()


def leased(got: list[CallThread | None]) -> CallThread:
    """The thread a job was granted."""
    assert got
    thread = got[0]
    assert thread is not None
    return thread


def jobs_asking(threads: CallThreads, count: int) -> list[list[CallThread | None]]:
    """``count`` jobs ask for a thread, in order: what each was granted (empty while it waits)."""
    grants: list[list[CallThread | None]] = [[] for _ in range(count)]
    for got in grants:
        threads.lease(got.append)
    return grants


def a_job_waiting() -> tuple[Seats, CallThreads, list[CallThread | None]]:
    """One seat, taken by the pool's thread; a job asks for a thread, and waits."""
    seats = Seats(1)
    threads = CallThreads(seats)
    assert seats.take(pool=True)
    got: list[CallThread | None] = []
    threads.lease(got.append)
    assert got == []
    return seats, threads, got


def test_a_call_thread_serves_one_job_then_the_next() -> None:
    """A job's thread is kept for the next job: no thread started and joined per job."""
    threads = CallThreads(Seats(1))
    got: list[CallThread | None] = []
    threads.lease(got.append)
    threads.give_back(leased(got))
    threads.lease(got.append)
    assert got[0] is not None
    assert got[1] is got[0]
    threads.give_back(leased(got))
    threads.stop_idle()


def test_jobs_wait_for_a_thread_in_arrival_order() -> None:
    seats = Seats(1)
    threads = CallThreads(seats)
    first, second, third = jobs_asking(threads, 3)
    assert (len(first), second, third, seats.wanted()) == (1, [], [], True)
    threads.give_back(leased(first))
    assert (second, third) == (first, [])
    threads.give_back(leased(second))
    assert third == first
    threads.give_back(leased(third))
    assert (seats.taken, seats.wanted()) == (1, False)  # idle, with its seat
    threads.stop_idle()
    assert seats.taken == 0


def test_a_seat_the_pool_gives_back_starts_a_thread_for_a_waiting_job() -> None:
    seats, threads, got = a_job_waiting()
    seats.give_back(pool=True)  # the pool's thread left
    assert len(got) == 1
    assert got[0] is not None
    threads.give_back(leased(got))
    threads.stop_idle()


def test_a_job_that_stops_waiting_gets_no_thread() -> None:
    seats, threads, got = a_job_waiting()
    assert threads.cancel(got.append)
    seats.give_back(pool=True)
    assert (got, seats.taken) == ([], 0)


def test_the_pool_finding_no_seat_lets_an_idle_call_thread_go() -> None:
    seats = Seats(1)
    threads = CallThreads(seats)
    got: list[CallThread | None] = []
    threads.lease(got.append)
    assert got[0] is not None
    threads.give_back(leased(got))
    assert not seats.take(pool=True)
    seats.on_full()
    assert seats.take(pool=True)


def test_call_threads_leave_the_pool_a_seat_while_it_has_no_thread() -> None:
    """So its first thread never has to start past the limit."""
    seats = Seats(3)
    assert seats.take()
    assert seats.take()
    assert not seats.take()  # the last one is the pool's
    assert seats.take(pool=True)
    seats.give_back()
    assert seats.take()  # the pool has a thread: every seat may be taken
    assert seats.taken == 3


def test_a_job_finding_no_pool_thread_and_no_seat_runs_in_its_caller() -> None:
    """With one seat for pool and call threads, an async job's call thread may hold
    it when the pool has no thread: the pool's job then runs in the thread handing
    it off, rather than on a thread past the limit, and the next call thread given
    back leaves, its seat the pool's."""
    seats = Seats(1)
    threads = CallThreads(seats)
    pool = Pool(1, run_job=run, seats=seats)
    [got] = jobs_asking(threads, 1)
    overflow = pool.put([(jobs.remember, ("no seat",), {}, copy_context())])
    assert overflow is not None
    assert [fn for fn, *_ in overflow.run_in_caller] == [jobs.remember]
    assert (seats.taken, pool.load()[2]) == (1, 0)  # the call thread's; no pool thread
    threads.give_back(leased(got))  # it leaves for the pool
    assert (seats.taken, seats.pool_short) == (0, False)
    assert pool.put([(jobs.remember, ("a seat",), {}, copy_context())]) is None
    assert pool.wait_idle(HOLD_LIMIT)
    assert thread_of("a seat").startswith("raincheck-")
    assert pool.drain(HOLD_LIMIT) == []
    assert seats.taken == 0


def test_a_pool_thread_ending_while_a_job_waits_becomes_its_call_thread() -> None:
    """No second thread is started for the seat while the first one ends."""
    seats = Seats(1)
    threads = CallThreads(seats)
    assert seats.take(pool=True)  # the pool's thread
    got: list[CallThread | None] = []
    threads.lease(got.append)  # waits
    names: list[str] = []
    ending = threading.Thread(target=lambda: seats.leave(pool=True), name="raincheck-pool-ending")
    ending.start()
    call = leased(got).submit(lambda: names.append(threading.current_thread().name))
    call.result(timeout=HOLD_LIMIT)
    assert names[0].startswith("raincheck-sync-")
    assert threading.current_thread() is not ending
    assert ending.name == names[0]  # the very thread that ended in the pool
    assert seats.taken == 1
    threads.give_back(leased(got))
    threads.stop_idle()
    ending.join(HOLD_LIMIT)
    assert seats.taken == 0


def test_a_higher_limit_starts_threads_for_waiting_jobs() -> None:
    seats, threads, got = a_job_waiting()
    seats.set_limit(2)  # the pool has its thread: the new seat is the job's
    assert seats.taken == 2
    threads.give_back(leased(got))
    threads.stop_idle()


def a_pool_short_of_seats() -> tuple[Seats, CallThreads, list[list[CallThread | None]], list[bool]]:
    """Four seats: the pool's first thread holds one, three jobs' call threads the
    rest, a fourth job waits, and the pool found no seat for its next thread either.
    Also whether each thread the pool starts with a seat kept for it got one."""
    seats = Seats(4)
    threads = CallThreads(seats)
    pool_started: list[bool] = []
    # What the pool does with a seat kept for it.
    seats.on_freed_for_pool = lambda: pool_started.append(seats.take(pool=True))
    assert seats.take(pool=True)
    grants = jobs_asking(threads, 4)
    seats.pool_short = True
    return seats, threads, grants, pool_started


def test_a_pool_short_of_seats_gets_the_next_call_thread_given_back() -> None:
    """Async jobs that keep waiting must not keep every seat from the pool's queued jobs."""
    seats, threads, (first, second, third, fourth), pool_started = a_pool_short_of_seats()
    threads.give_back(leased(first))  # the pool has 1 thread, these 3: it goes
    assert (pool_started, fourth, seats.pool_short) == ([True], [], False)
    threads.give_back(leased(second))  # 2 and 2: the waiting job's turn
    assert fourth == second
    for got in (third, fourth):
        threads.give_back(leased(got))
    threads.stop_idle()
    assert seats.taken == 2  # the pool's


def test_a_seat_kept_for_the_pool_goes_to_a_waiting_job_if_the_pool_has_no_use_for_it() -> None:
    """By the time a call thread leaves for the pool, the pool may have run its jobs
    already: the seat must not stay free while async jobs wait (they waited for good)."""
    seats, threads, (first, second, third, fourth), _ = a_pool_short_of_seats()
    seats.on_freed_for_pool = lambda: None  # its queue is empty by now: no thread
    threads.give_back(leased(first))  # the pool has 1 thread, these 3: it goes
    assert fourth != []  # and its seat, unused, went to the waiting job
    for got in (second, third, fourth):
        threads.give_back(leased(got))
    threads.stop_idle()
    assert seats.taken == 1  # the pool's


def test_the_loop_waits_for_a_seat_and_gets_the_next_one_freed() -> None:
    seats = Seats(3)
    started: list[bool] = []
    seats.on_loop_seat = started.append  # here: whether the thread giving it runs the loop
    assert seats.take(pool=True)
    assert seats.take(pool=True)
    assert seats.take_for_loop()  # one seat left: the loop's
    seats.loop_ended()
    assert seats.take(pool=True)  # every seat the pool's
    assert not seats.take_for_loop()
    assert seats.loop_waits
    assert seats.pool_over(2)  # the pool's threads past its last leave
    seats.leave(pool=True)  # one does, and runs the loop itself: none starts beside it
    assert started == [True]
    assert not seats.loop_waits
    assert (seats.taken, seats.room()) == (2, 2)


def test_a_seat_given_back_by_an_ending_thread_is_taken_once_that_thread_is_gone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A thread gives its seat back in its last steps: the next thread to start for
    that seat would run beside it, one past the limit, if its taker did not wait."""
    monkeypatch.setattr(seats_module, "ENDING_WAIT", HOLD_LIMIT)
    seats = Seats(1)
    gave_back = threading.Event()

    def last_steps() -> None:
        assert seats.take()
        seats.give_back()
        seats.ending()
        gave_back.set()
        threading.Event().wait(0.05)  # what is left of it: closing, logging

    ending = threading.Thread(target=last_steps)
    ending.start()
    assert gave_back.wait(HOLD_LIMIT)
    assert seats.take()
    assert not ending.is_alive()


def test_a_call_thread_leaving_from_its_own_last_call_hands_its_seat_over_as_it_ends() -> None:
    """Given back by a call of its own (a task a job left running) while raincheck-loop
    waits for a seat, the thread must leave, and cannot wait for itself to be gone:
    it runs the loop itself, rather than start the loop's thread beside it."""
    seats = Seats(2)
    threads = CallThreads(seats)
    assert seats.take(pool=True)  # the pool's thread
    got: list[CallThread | None] = []
    threads.lease(got.append)
    thread = leased(got)
    assert not seats.take_for_loop()  # every seat taken: the loop waits
    came: list[tuple[bool, threading.Thread]] = []
    seats.on_loop_seat = lambda here: came.append((here, threading.current_thread()))
    names: list[str] = []
    thread.submit(lambda: names.append(threading.current_thread().name)).result(HOLD_LIMIT)
    thread.submit(threads.give_back, thread).result(timeout=HOLD_LIMIT)
    for left in threading.enumerate():
        if left.name == names[0]:
            left.join(HOLD_LIMIT)
    assert [(here, where.name) for here, where in came] == [(True, names[0])]
    assert (seats.taken, seats.loop_waits) == (1, False)  # the pool's; the loop has its own


def test_a_call_thread_given_back_by_its_own_call_leaves_the_pool_the_next_seat() -> None:
    """Leaving for the pool from its own call, it would start the pool's thread beside
    itself: it serves the waiting job instead, and the next one given back goes."""
    seats, threads, (first, second, third, fourth), pool_started = a_pool_short_of_seats()
    own = leased(first)
    own.submit(threads.give_back, own).result(timeout=HOLD_LIMIT)
    assert (fourth, pool_started, seats.pool_short) == ([own], [], True)
    threads.give_back(leased(second))  # from elsewhere: it goes, its seat the pool's
    assert (pool_started, seats.pool_short) == ([True], False)
    for got in (third, fourth):
        threads.give_back(leased(got))
    threads.stop_idle()
    assert seats.taken == 2  # the pool's


def test_the_seat_of_a_thread_that_ends_is_never_free_while_it_passes_on() -> None:
    """A thread that asked for a seat while a pool thread ending with one looked for
    a job to serve would have started beside it: the seat passes on, never free."""
    seats, threads, got = a_job_waiting()  # the pool's thread holds the only seat
    serve_instead = seats.serve_instead
    racer_took: list[bool] = []

    def while_it_decides(pool: bool) -> bool:
        racer_took.append(seats.take())  # another thread asks for a seat just then
        return serve_instead(pool)

    seats.serve_instead = while_it_decides
    ending = threading.Thread(target=lambda: seats.leave(pool=True))
    ending.start()
    leased(got).submit(lambda: None).result(timeout=HOLD_LIMIT)
    assert racer_took == [False]
    assert (seats.taken, seats.pool_taken) == (1, 0)  # the job's thread, the pool's was
    threads.give_back(leased(got))
    threads.stop_idle()
    ending.join(HOLD_LIMIT)
    assert seats.taken == 0


def test_the_pools_last_thread_stays_while_the_others_leave_with_their_seats() -> None:
    """Pool threads leaving for raincheck-loop hold their seats until their last steps
    are done (closing connections): were the last one to leave too, a job queued
    meanwhile would find no thread, and the pool's next would start past the limit."""
    seats = Seats(4)
    last_steps = threading.Event()

    def closing_connections() -> None:
        last_steps.wait(HOLD_LIMIT)

    pool = Pool(4, run_job=run, on_worker_exit=closing_connections, seats=seats)
    gates = [Gate(), Gate()]
    held: list[Job] = [
        (jobs.held, (gate, f"held {i}"), {}, copy_context()) for i, gate in enumerate(gates)
    ]
    assert pool.put(held) is None
    for gate in gates:
        assert gate.started.wait(HOLD_LIMIT)
    for _ in range(2):
        assert seats.take()  # two async jobs' call threads
    assert not seats.take_for_loop()  # every seat taken: the loop waits
    for gate in gates:
        gate.release.set()
    while pool.load()[1]:  # both threads have chosen to stay or leave
        threading.Event().wait(0.01)
    assert pool.put([(jobs.remember, ("queued meanwhile",), {}, copy_context())]) is None
    assert pool.wait_idle(HOLD_LIMIT)
    assert seats.taken == 4  # none forced past the limit
    assert thread_of("queued meanwhile") in {thread_of("held 0"), thread_of("held 1")}
    last_steps.set()
    seats.give_back()
    seats.give_back()
    assert pool.drain(HOLD_LIMIT) == []
