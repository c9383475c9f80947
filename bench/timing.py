"""Latency measurement shared by the benchmarks."""

from __future__ import annotations

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


def latencies_ms(calls: dict[str, Callable[[], object]], runs: int, block: int = 10) -> dict[str, Latency]:
    """The latency of each call over `runs` calls, timed in alternating blocks of `block`
    calls (after two untimed ones), so that whatever else the machine does falls on all of them
    alike while each block runs with the caches warm, as a deployed model does."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    with torch.no_grad():
        for _ in range(max(1, runs // block)):
            for name, fn in calls.items():
                for i in range(block + 2):
                    start = time.perf_counter()
                    fn()
                    if i >= 2:
                        times[name].append(time.perf_counter() - start)
    return {name: Latency(statistics.median(t) * 1e3, min(t) * 1e3) for name, t in times.items()}
