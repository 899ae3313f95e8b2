"""Timing that survives a noisy machine: warm up, synchronize, interleave, take medians.

Cases compared with each other (a step, its floor, PyTorch's step) are timed in
interleaved rounds — one sample of each case per round, in a shuffled order — so that
a burst of load from elsewhere lands on all of them alike and their ratios stay fair.
Each sample runs a case ``number`` times between two synchronized clock readings,
with ``number`` chosen so a sample lasts at least ``min_sample_s`` (tiny networks run
in microseconds, below the clock's resolution for a single call).

Two libraries in one process disturb each other: NumPy's OpenBLAS workers keep a core
busy ~0.1 s after each product, and PyTorch's OpenMP workers spin after theirs; a case
started inside that window was measured here 20–700% slower. With ``settle_s`` each
sample first sleeps until the other pools are quiet, then runs one untimed sample's
worth of calls so that its own library's threads (and the core) are awake, then times
back-to-back calls as a training loop would make them.
"""

from __future__ import annotations

import contextlib
import gc
import random
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
    settle: float = 0.0     # seconds of quiet before each sample (set by ``measure``)
    #: a context entered around each sample, untimed (e.g. fit's BLAS thread setting)
    around: Callable[[], Any] = contextlib.nullcontext

    @property
    def median(self) -> float:
        """Median seconds per call over the samples."""
        return statistics.median(self.samples)


def _sample(t: Timed, clock: Callable[[], float]) -> float:
    fn = t.fn
    with t.around():
        if t.settle:
            time.sleep(t.settle)       # other libraries' worker threads go quiet;
            for _ in range(t.number):  # this one's wake up, untimed
                fn()
        t.sync()
        start = clock()
        for _ in range(t.number):
            fn()
        t.sync()
        return (clock() - start) / t.number


def calibrate(t: Timed, *, min_sample_s: float, clock: Callable[[], float] = time.perf_counter,
              max_number: int = 1 << 16) -> float:
    """Set ``t.number`` so one sample lasts ≥ ``min_sample_s``; return seconds per call."""
    number = 1
    while True:
        t.number = number
        per_call = _sample(t, clock)
        if per_call * number >= min_sample_s or number >= max_number:
            return per_call
        number *= 4


def measure(cases: Sequence[Timed], *, rounds: int, warmup: int = 2, min_sample_s: float = 0.005,
            settle_s: float = 0.0, settle_above_s: float = 1e-3, seed: int = 0,
            clock: Callable[[], float] = time.perf_counter) -> None:
    """Fill each case's ``samples`` with ``rounds`` interleaved timings (seconds per call).

    Each case is first run ``warmup`` times (caches, allocator pools, JIT compilation,
    cuBLAS handles), then calibrated. Round r times every case once, in an order
    shuffled from ``seed`` and r. Cases whose calls last ≥ ``settle_above_s`` — those
    that wake thread pools — settle ``settle_s`` before each sample; shorter ones do
    not (after a sleep this VM ran a 30 µs step 1.5× slower for over 7 ms). The garbage
    collector is paused while sampling, as ``timeit`` does, so a collection triggered
    by one case is not billed to another.
    """
    for t in cases:
        for _ in range(warmup):
            t.fn()
        t.sync()
        t.settle = 0.0
        per_call = calibrate(t, min_sample_s=min_sample_s, clock=clock)
        t.settle = settle_s if per_call >= settle_above_s else 0.0
        t.samples.clear()
    order = list(cases)
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for r in range(rounds):
            random.Random(seed * 1_000_003 + r).shuffle(order)
            for t in order:
                t.samples.append(_sample(t, clock))
    finally:
        if was_enabled:
            gc.enable()
