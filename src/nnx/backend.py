"""Choosing the array library nnx computes with.

The active backend decides where new parameters are created. Functions that receive
arrays (losses, activations) work in those arrays' own namespace instead.

    nnx.set_backend("torch")
    with nnx.use_backend("jax"):
        model = nnx.MLP([2, 4, 1], seed=0)    # parameters are JAX arrays

``NNX_BACKEND`` in the environment picks the default at import; without it, numpy.
A value that cannot be used (unknown, or its library missing) is reported once, as a
``RuntimeWarning`` naming the fix, and numpy is used: ``import nnx`` never fails on it.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import array_api_compat

from . import backends as _registry
from .backends import Backend

__all__ = [
    "Backend",
    "available_backends",
    "get_backend",
    "set_backend",
    "use_backend",
    "asarray",
    "to_numpy",
    "resolve_backend",
]


def available_backends() -> list[str]:
    """Names of the backends usable here, from numpy, cupy, torch, jax, array_api_strict.

    Asks only whether each library is installed, without importing it (cupy excepted:
    it is listed only where a CUDA device answers). A library is imported when its
    backend is first used; one that is installed but fails to import then raises a
    ``ValueError`` saying why.
    """
    return _registry.available()


def _initial_backend() -> Backend:
    name = os.environ.get("NNX_BACKEND", "").strip() or "numpy"
    try:
        return _registry.load(name)
    except ValueError as exc:
        reason = _registry.why_unavailable(name) or str(exc)
        usable = ", ".join(_registry.available())
        # attributed to the environment, not to a line of nnx: it is the user's setting
        warnings.warn_explicit(
            f"NNX_BACKEND={name!r} in the environment cannot be used ({reason}); nnx uses "
            f"numpy instead. To fix it, set NNX_BACKEND to one of {usable}, or unset it.",
            RuntimeWarning, filename="<environment>", lineno=0, module="nnx")
        return _registry.load("numpy")


_active: Backend = _initial_backend()


def get_backend() -> Backend:
    """The active :class:`Backend` (with ``.name``, ``.xp`` and ``.device``)."""
    return _active


def set_backend(name: str | Backend, device: Any = None) -> Backend:
    """Make ``name`` the active backend for new parameters and return it.

    Args:
        name: ``"numpy"``, ``"cupy"``, ``"torch"``, ``"jax"`` or ``"array_api_strict"``
            (or a :class:`Backend`).
        device: a device of that library (``"cuda:1"``, ``"cpu"``); its default if None.

    Raises:
        ValueError: unknown name, library not installed (the message names the pip
            extra), or no CUDA device for cupy. The message lists the usable backends.
    """
    global _active
    _active = resolve_backend(name, device)
    return _active


@contextmanager
def use_backend(name: str | Backend, device: Any = None) -> Iterator[Backend]:
    """Use ``name`` inside a ``with`` block; the previous backend returns even on error."""
    global _active
    previous = _active
    _active = resolve_backend(name, device)
    try:
        yield _active
    finally:
        _active = previous


def resolve_backend(backend: str | Backend | None = None, device: Any = None) -> Backend:
    """``backend`` as a :class:`Backend`: a name, a Backend, or None for the active one."""
    if backend is None:
        return _active
    if isinstance(backend, Backend):
        return backend
    if not isinstance(backend, str):
        raise TypeError(f"backend must be a name such as 'numpy' or a Backend; got {backend!r}")
    return _registry.load(backend, device)


def asarray(x: Any, *, backend: str | Backend | None = None, dtype: str | None = None) -> Any:
    """Convert ``x`` (a list, or an array of any backend) into an array of ``backend``.

    The shape is kept (nested lists of n rows of d numbers give (n, d)); ``dtype`` such
    as ``"float32"`` casts, None keeps an array's dtype (lists: the library's default).

    Unlike the checks inside layers, this crosses libraries on purpose: an array of
    another library is copied through host memory.
    """
    target = resolve_backend(backend)
    xp = target.xp
    dt = None if dtype is None else getattr(xp, dtype)
    if not target.owns(x) and array_api_compat.is_array_api_obj(x):
        x = target.from_numpy(_registry.backend_of(x).to_numpy(x))
    return target.asarray(x, dtype=dt)


def to_numpy(x: Any) -> Any:
    """A host NumPy copy of an array of any backend, of the same shape and dtype."""
    return _registry.backend_of(x).to_numpy(x)

