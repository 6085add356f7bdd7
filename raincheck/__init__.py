"""Run Python functions after Django has sent the response, on a bounded pool."""

from __future__ import annotations

from raincheck.decorators import RaincheckFunction, raincheck
from raincheck.drain import shutdown
from raincheck.process import stats
from raincheck.stats import Stats

__all__ = ["RaincheckFunction", "Stats", "raincheck", "shutdown", "stats"]
__version__ = "0.1.0"
