"""pytest-benchmark suites over every installed backend: ``python -m pytest bench``.

Sizes are the full suite's (``nnx.benchmark.DEFAULTS``); ``NNX_BENCH_QUICK=1`` runs the
toy sizes instead. Every timed call ends with the backend's ``synchronize``, so GPU
work is finished before pytest-benchmark reads the clock; each case is warmed up first.
The ``backend`` fixture comes from the repository's root conftest.py.
"""

from __future__ import annotations

import os

import pytest

from nnx.benchmark import cases, suite

SIZES = suite.QUICK if os.environ.get("NNX_BENCH_QUICK") == "1" else suite.DEFAULTS
WIDE = cases.Network(tuple(SIZES["sizes"]), SIZES["batch"])


@pytest.fixture
def run(benchmark):
    """``run(timed, flops, group)``: warm up, then benchmark ``fn(); sync()`` per call."""

    def go(timed, flops: int, group: str):
        if timed is None:
            pytest.skip("torch is not installed, or has no device beside this backend")
        for _ in range(3):
            timed.fn()
        timed.sync()

        def call():
            timed.fn()
            timed.sync()

        benchmark.group = group
        benchmark.extra_info["flops"] = flops
        benchmark(call)
        if benchmark.stats is not None:             # None under --benchmark-disable
            median = benchmark.stats.stats.median
            benchmark.extra_info["gflops_at_median"] = flops / median / 1e9

    return go
