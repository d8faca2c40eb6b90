"""What a benchmark ran on, recorded in its JSON.

The same benchmark on two machines of the same nominal size can differ by several times
(another CPU model, other vector instructions, neighbours on a shared host): numbers compare
only between runs whose `machine` agrees, so every benchmark names the CPU model, not just
the architecture, and the load it started under.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name ("AMD EPYC 7B13"), or the architecture where the OS does not say."""
    try:
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe(**extra: Any) -> dict[str, Any]:
    """The machine a benchmark runs on, with the benchmark's own `extra` entries (library
    versions, cores it used)."""
    return {"cpu": cpu_model(), "arch": platform.machine(), "cores": os.cpu_count(),
            "python": platform.python_version(), "load_average_1min": round(os.getloadavg()[0], 2), **extra}
