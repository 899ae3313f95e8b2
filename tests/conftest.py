"""Test helpers; the ``backend`` fixture (every installed backend) is in the root conftest.py."""

from __future__ import annotations

import os

import numpy as np
import pytest

import nnx

# Keep the suite quiet and deterministic on 2 cores.
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def to_np():
    """Host NumPy copy of an array of any backend (for assertions)."""
    return nnx.to_numpy


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
