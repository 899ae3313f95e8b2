"""One fixture runs every backend test on every backend installed here.

cupy appears only where a CUDA device answers; elsewhere its cases are skipped with
the reason, never failed.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import nnx
from nnx import backends as registry

# Keep the suite quiet and deterministic on 2 cores.
os.environ.setdefault("MPLBACKEND", "Agg")


def _params():
    out = []
    for name in registry.NAMES:
        reason = registry.why_unavailable(name)
        marks = [pytest.mark.skip(reason=reason)] if reason else []
        out.append(pytest.param(name, id=name, marks=marks))
    return out


@pytest.fixture(params=_params())
def backend(request):
    """The name of a usable backend, made active for the duration of the test."""
    with nnx.use_backend(request.param) as b:
        yield b


@pytest.fixture
def to_np():
    """Host NumPy copy of an array of any backend (for assertions)."""
    return nnx.to_numpy


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
