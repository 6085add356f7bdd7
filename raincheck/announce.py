"""``job_scheduled``: where ``schedule()`` is about to send a job, told to its receivers.

Sent only while the signal has receivers (``schedule()`` asks first), and those
receivers close the direct path, so that they see every job. Receivers get:

- ``sender``: the original, undecorated function (``run_task`` for a
  ``RaincheckBackend`` task);
- ``args``, ``kwargs``: the job's arguments;
- ``function``: what was scheduled: the ``@raincheck`` function, whose ``name``
  and options (``on_commit``, ``on_success``, ``unique``) it carries, or the
  job of a ``RaincheckBackend`` task;
- ``destination``: ``"buffer"`` (held until its request has answered, then
  handed off), ``"duplicate"`` (``unique=True``, and an equal job is already in
  the buffer: dropped), ``"pool"`` (no request: handed off at once),
  ``"captured"`` (a ``capture()`` records it), ``"immediate"``
  (``RAINCHECK_IMMEDIATE``: run now), or ``"tasks:<alias>"``
  (``RAINCHECK_TASKS_BACKEND``: enqueued on that Tasks backend).

It is sent before the job goes there: a routed job whose arguments the backend
cannot take is announced, then ``schedule()`` raises in the view.
"""

from __future__ import annotations

from raincheck import conf, signals
from raincheck.buffers import request_buffer
from raincheck.jobs import Job, send_robust


def announce(job: Job, settings: conf.Conf, *, capturing: bool, unique_key: object) -> None:
    """Send ``job_scheduled`` for ``job``, which ``schedule()`` is about to place."""
    # The same order of questions as schedule() asks.
    function = job[0]
    if capturing:
        destination = "captured"
    elif settings.immediate:
        destination = "immediate"
    elif settings.tasks_backend is not None and function.routable:
        destination = f"tasks:{settings.tasks_backend}"
    else:
        buffer = request_buffer()
        if buffer is None:
            destination = "pool"
        elif unique_key is not None and buffer.seen is not None and unique_key in buffer.seen:
            destination = "duplicate"
        else:
            destination = "buffer"
    send_robust(
        signals.job_scheduled,
        sender=function.func,
        args=job[1],
        kwargs=job[2],
        function=function,
        destination=destination,
    )
