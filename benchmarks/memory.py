"""Peak resident memory of this process, for a stretch of it (Linux's VmHWM)."""

from __future__ import annotations

import resource
import sys
from pathlib import Path

_STATUS = Path("/proc/self/status")


def _status_kib(field: str) -> int | None:
    try:
        text = _STATUS.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return None


def rss_kib() -> int:
    """Resident memory now (KiB)."""
    return _status_kib("VmRSS") or 0


def reset_peak() -> bool:
    """Start measuring the peak afresh; False where the OS cannot (then it is the
    process's lifetime peak, and callers run in a fresh process)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_kib() -> int:
    """Peak resident memory since ``reset_peak()`` (or since the process started)."""
    peak = _status_kib("VmHWM")
    if peak is not None:
        return peak
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss // 1024 if sys.platform == "darwin" else maxrss
