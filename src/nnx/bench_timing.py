"""Timing that survives a noisy machine: warm up, synchronize, interleave, take medians.

Cases compared with each other (a step, its floor, PyTorch's step) are timed in
interleaved rounds — one sample of each case per round, in rotating order — so that
a burst of load from elsewhere lands on all of them alike and their ratios stay fair.
Each sample runs a case ``number`` times between two synchronized clock readings,
with ``number`` chosen so a sample lasts at least ``min_sample_s`` (tiny networks run
in microseconds, below the clock's resolution for a single call).
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Timed", "calibrate", "measure"]


@dataclass
class Timed:
    """A unit of work to time: ``fn()`` runs it, ``sync()`` waits until it has finished."""

    fn: Callable[[], Any]
    sync: Callable[[], Any] = lambda: None
    number: int = 1
    samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        """Median seconds per call over the samples."""
        return statistics.median(self.samples)


def _sample(t: Timed, clock: Callable[[], float]) -> float:
    fn = t.fn
    t.sync()
    start = clock()
    for _ in range(t.number):
        fn()
    t.sync()
    return (clock() - start) / t.number


def calibrate(t: Timed, *, min_sample_s: float, clock: Callable[[], float] = time.perf_counter,
              max_number: int = 1 << 16) -> int:
    """The number of calls per sample that makes one sample last ≥ ``min_sample_s``."""
    number = 1
    while number < max_number:
        t.number = number
        if _sample(t, clock) * number >= min_sample_s:
            break
        number *= 4
    t.number = min(number, max_number)
    return t.number


def measure(cases: Sequence[Timed], *, rounds: int, warmup: int = 2, min_sample_s: float = 0.005,
            clock: Callable[[], float] = time.perf_counter) -> None:
    """Fill each case's ``samples`` with ``rounds`` interleaved timings (seconds per call).

    Each case is first run ``warmup`` times (caches, allocator pools, JIT compilation,
    cuBLAS handles), then calibrated. The garbage collector is paused while sampling,
    as ``timeit`` does, so a collection triggered by one case is not billed to another.
    """
    for t in cases:
        for _ in range(warmup):
            t.fn()
        t.sync()
        calibrate(t, min_sample_s=min_sample_s, clock=clock)
        t.samples.clear()
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        n = len(cases)
        for r in range(rounds):
            for i in range(n):
                t = cases[(r + i) % n]
                t.samples.append(_sample(t, clock))
    finally:
        if was_enabled:
            gc.enable()
