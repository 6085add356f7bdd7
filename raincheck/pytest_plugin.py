"""pytest fixtures, registered through the ``pytest11`` entry point.

- ``raincheck_jobs``: a ``capture()`` for the test; scheduled jobs are recorded
  and never run unless the test calls ``raincheck_jobs.run()``.
- ``raincheck_idle``: the ``wait_idle`` function; call it to wait until every
  handed-off job has finished.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from raincheck.testing import CapturedJobs, capture, wait_idle


@pytest.fixture
def raincheck_jobs() -> Iterator[CapturedJobs]:
    with capture() as jobs:
        yield jobs


@pytest.fixture
def raincheck_idle() -> Callable[..., None]:
    return wait_idle
