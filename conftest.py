"""Shared by tests/ and bench/: one fixture runs a case on every backend installed here.

cupy appears only where a CUDA device answers; elsewhere its cases are skipped with
the reason, never failed.
"""

from __future__ import annotations

import pytest

import nnx
from nnx import backends as registry


def _params():
    out = []
    for name in registry.NAMES:
        reason = registry.why_unavailable(name)
        marks = [pytest.mark.skip(reason=reason)] if reason else []
        out.append(pytest.param(name, id=name, marks=marks))
    return out


@pytest.fixture(params=_params())
def backend(request):
    """A usable :class:`nnx.Backend`, made active for the duration of the case."""
    with nnx.use_backend(request.param) as b:
        yield b
