"""uWSGI specifics: threads off (W001), its exit hook, reloads, recycling, prefork, brutal stops.

What uWSGI does on each stop (pyuwsgi 2.0.30, checked here):

* master FIFO ``q`` (graceful shutdown) and ``SIGHUP`` (graceful reload): each
  worker finishes its request, then exits through C ``exit()``, which calls
  ``uwsgi.atexit`` and then Python's exit hooks: the pool drains
  (test_shutdown.py, and the reload test below);
* ``max-requests``: the same, for the one worker;
* ``SIGINT``, ``SIGQUIT``, or ``SIGTERM`` with ``--die-on-term`` to the master:
  the workers are told to die at once. An idle worker still runs its exit
  hooks; a worker still inside a request (which includes ``request_finished``
  and uWSGI's own logging after the response) runs none, and its jobs are lost
  without a word (test below).

raincheck attaches its drain to ``uwsgi.atexit`` as well as to Python's
``atexit``: with ``--skip-atexit-teardown`` only the former runs.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.servers.catalog import ServerSpec, params, spec
from tests.servers.checks import (
    EXIT_DEADLINE,
    FOUR_WORKERS,
    assert_all_ran_once,
    assert_replaced,
    check_forked_workers,
    schedule_naps,
)
from tests.servers.conftest import ServerFactory
from tests.servers.harness import (
    count,
    only,
    position,
    process_gone,
    uwsgi_argv,
)
from tests.servers.legacy_uwsgi import (
    INSTALL_TIMEOUT,
    LEGACY_UWSGI,
    Unavailable,
    legacy_uwsgi_python,
)
from tests.servers.project.wsgi_prefork import IMPORT_TAGS

pytestmark = pytest.mark.server

UWSGI_SERVERS = [spec("uwsgi-prefork"), spec("uwsgi-lazy-threads")]
ONE_PROCESS = ("--processes", "1")
# max-requests acts only once a worker is min-worker-lifetime (10 s) old.
RECYCLE_AFTER_2 = ("--max-requests", "2", "--min-worker-lifetime", "0")
W001 = "raincheck.W001:"


@pytest.fixture(autouse=True)
def _needs_uwsgi() -> None:
    reason = spec("uwsgi-prefork").skip_reason()
    if reason:
        pytest.skip(reason)


@pytest.mark.parametrize("spec", params(UWSGI_SERVERS))
def test_graceful_reload_drains_the_old_workers(start: ServerFactory, spec: ServerSpec) -> None:
    """SIGHUP (graceful reload) right after queueing 30 jobs: the old worker runs them all."""
    server = start(spec.id, spec.argv, env=FOUR_WORKERS, stop_signal=spec.stop_signal)
    pid = schedule_naps(server)
    server.send_signal(signal.SIGHUP)
    assert_replaced(server, pid)
    assert "gracefully killing workers" in server.log(), server.report("no graceful reload")
    assert_all_ran_once(server, pid)
    assert W001 not in server.log(), server.report("W001 although threads are on")


@pytest.mark.parametrize(
    "exit_options",
    [(), ("--skip-atexit-teardown",)],
    ids=["python-atexit", "uwsgi-atexit-only"],
)
def test_max_requests_recycling_drains_the_old_worker(
    start: ServerFactory, exit_options: tuple[str, ...]
) -> None:
    """A worker recycled by max-requests runs its 30 jobs first, even with Python's hooks off."""
    server = start(
        "uwsgi-max-requests",
        # Request 1 is the readiness check, request 2 queues the jobs.
        uwsgi_argv(
            *ONE_PROCESS, "--max-requests", "2", "--min-worker-lifetime", "0", *exit_options
        ),
        env=FOUR_WORKERS,
        stop_signal=signal.SIGINT,
    )
    pid = schedule_naps(server)
    assert_replaced(server, pid)
    assert "The work of process" in server.log(), server.report("not recycled by max-requests")
    assert_all_ran_once(server, pid)


def test_prefork_master_pool_is_not_inherited_by_the_workers(start: ServerFactory) -> None:
    """Jobs the master ran before forking run once there; each worker builds its own pool."""
    server = start(
        "uwsgi-prefork",
        uwsgi_argv("--processes", "2", app="tests.servers.project.wsgi_prefork:application"),
        env={"RAINCHECK_TEST_MAX_WORKERS": "1"},
        stop_signal=signal.SIGINT,
    )
    check_forked_workers(server, IMPORT_TAGS, lambda server: server.uwsgi("q"))


def test_brutal_stop_of_a_busy_worker_loses_its_jobs_silently(start: ServerFactory) -> None:
    """SIGINT to the master kills a worker still in its request: no exit hook, no drain, no log.

    This pins down a uWSGI limit that docs/servers.rst warns about; it is not
    what raincheck wants, and nothing in a Python library can change it.
    """
    server = start("uwsgi", uwsgi_argv(*ONE_PROCESS), env=FOUR_WORKERS, stop_signal=signal.SIGINT)
    # The worker stays inside the request after request_finished (jobs handed
    # off) until the marker "never" exists, which it never does. The jobs, too,
    # can only finish once "never" exists: whether they are lost cannot depend
    # on how soon this process sends SIGINT (30 short naps used to, and on a
    # busy machine could all finish first). Had a drain run, it would have
    # timed out on them and logged "did not finish".
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="client") as client:
        reply = client.submit(
            server.get_json, "/waits/?prefix=nap&n=4&marker=never&tag=busy&linger=never"
        )
        server.wait_for_events(lambda seen: count(seen, "busy", "lingering") == 1, "the linger")
        pid = reply.result(timeout=10)["pid"]
    # Handed off is not yet started: wait for the pool to have every job in hand.
    server.wait_for_events(
        lambda seen: all(count(seen, f"nap-{i}", "start") == 1 for i in range(4)), "the jobs"
    )
    server.send_signal(signal.SIGINT)

    assert server.wait_exit(EXIT_DEADLINE) == 0, server.report("uWSGI did not stop")
    seen = server.events()
    ended = [e for e in seen if e["event"] == "end" and e["pid"] == pid]
    assert not ended, server.report("a job finished: uWSGI waited for the worker after all?")
    assert "did not finish" not in server.log(), server.report("a drain ran after all")


# -- uWSGI without Python threads (raincheck.W001) ----------------------------------------


@pytest.fixture(scope="module")
def legacy_python(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The ``python`` of a virtualenv with uWSGI 2.0.26 (see legacy_uwsgi.py), kept in
    pytest's cache directory (built again each run under ``-p no:cacheprovider``)."""
    # config.cache exists only with pytest's cacheprovider plugin.
    cache: pytest.Cache | None = getattr(request.config, "cache", None)
    where = (
        Path(cache.mkdir("raincheck-legacy-uwsgi"))
        if cache is not None
        else tmp_path_factory.mktemp("legacy-uwsgi")
    )
    try:
        yield legacy_uwsgi_python(where)
    except Unavailable as exc:
        pytest.skip(str(exc))


# The first test also builds the environment, which may take each of its two
# steps up to INSTALL_TIMEOUT: that comes on top of the usual per-test limit.
@pytest.mark.timeout(2 * INSTALL_TIMEOUT + 300)
@pytest.mark.parametrize("threads", [False, True], ids=["threads-off", "enable-threads"])
def test_w001_fires_exactly_when_threads_are_off_and_no_job_is_lost(
    start: ServerFactory, legacy_python: str, threads: bool
) -> None:
    """uWSGI 2.0.26 without threads: W001 once, jobs run after the response in the request's
    thread; with --enable-threads: no W001, jobs run on the pool."""
    server = start(
        f"uwsgi-{LEGACY_UWSGI}",
        uwsgi_argv(*ONE_PROCESS, *(["--enable-threads"] if threads else []), python=legacy_python),
        env=FOUR_WORKERS,
        stop_signal=signal.SIGINT,
    )
    disabled = "Python threads support is disabled" in server.log()
    assert disabled is not threads, server.report("uWSGI did not set threads as asked")
    pids = {
        server.get_json(f"/naps/?prefix={tag}&n=3&seconds=0.05&tag={tag}")["pid"]
        for tag in ("w1", "w2")
    }
    assert len(pids) == 1, server.report("one worker, one pid")
    pid = pids.pop()
    seen = server.wait_for_events(
        lambda seen: all(count(seen, f"{tag}-2", "end") == 1 for tag in ("w1", "w2")), "the jobs"
    )
    for tag in ("w1", "w2"):
        for i in range(3):
            job = only(seen, f"{tag}-{i}", "start")
            assert position(seen, f"{tag}-{i}", "start") > position(seen, tag, "response-sent")
            assert job["thread"].startswith("raincheck-") is threads, server.report(
                f"job {tag}-{i} ran on {job['thread']}"
            )
    warnings = [line for line in server.log().splitlines() if W001 in line]
    assert len(warnings) == (0 if threads else 1), server.report("W001 not logged as expected")

    server.uwsgi("q")
    assert server.wait_exit(EXIT_DEADLINE) == 0, server.report("uWSGI did not stop cleanly")
    assert_all_ran_once(server, pid, prefix="w1", n=3)
    assert_all_ran_once(server, pid, prefix="w2", n=3)
    assert process_gone(pid)
