"""Peak resident memory of the calling process, for the benchmarks' per-process memory columns."""

from __future__ import annotations

import resource
from pathlib import Path


def peak_rss_gb() -> float:
    """This process's peak resident memory since it started, in GB.

    Linux's VmHWM, not getrusage's ru_maxrss: the latter carries the parent's RSS over fork + exec, so a child
    started by a big benchmark process reports the parent's size (seen: 4.19 GB for a child that peaked at 2.96).
    """
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 1e9  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # Linux reports KiB
