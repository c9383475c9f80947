"""Latency measurement shared by the benchmarks."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import NamedTuple

import torch


class Latency(NamedTuple):
    """Milliseconds per call: the median, and the fastest call, the figure least moved by what
    else a shared machine does (other processes, page faults of the allocator)."""

    median: float
    fastest: float


_UNTIMED = 3


def latencies_ms(calls: dict[str, Callable[[], object]], runs: int, block: int = 10) -> dict[str, Latency]:
    """The latency of each call over `runs` calls, timed in alternating blocks of `block`
    calls (after three untimed ones: a qir module generates its code at its third call,
    `qir.graph_runner`), so that whatever else the machine does falls on all of them alike while
    each block runs with the caches warm, as a deployed model does."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    with torch.no_grad():
        for _ in range(max(1, runs // block)):
            for name, fn in calls.items():
                for i in range(block + _UNTIMED):
                    start = time.perf_counter()
                    fn()
                    if i >= _UNTIMED:
                        times[name].append(time.perf_counter() - start)
    return {name: Latency(statistics.median(t) * 1e3, min(t) * 1e3) for name, t in times.items()}


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo), or what the platform module knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(threads: int) -> str:
    """One line naming where the figures were measured: the CPU, qir's target for it (what its int8
    kernels compute), torch, the threads and whether idle ones spin (OMP_WAIT_POLICY), and the
    load average (on a shared machine, how many runnable processes the figures competed with)."""
    from qir.target import host

    load = "/".join(f"{v:.1f}" for v in os.getloadavg())
    policy = os.environ.get("OMP_WAIT_POLICY") or "unset (spin, then sleep)"
    if os.environ.get("GOMP_SPINCOUNT"):
        policy += f", GOMP_SPINCOUNT {os.environ['GOMP_SPINCOUNT']}"
    return (f"CPU: {cpu_name()} ({os.cpu_count()} logical), qir target {host()}, torch {torch.__version__}, "
            f"{threads} threads, OMP_WAIT_POLICY {policy}, load average {load} (1/5/15 min)")
