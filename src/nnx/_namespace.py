"""Resolving the array namespace once, at an entry point (array-api-extra style)."""

from __future__ import annotations

from typing import Any

from . import backends as _registry


def namespace_of(*arrays: Any, xp: Any = None) -> Any:
    """``xp`` if given, else the namespace shared by ``arrays`` (mixing libraries is an error)."""
    if xp is not None:
        return xp
    return _registry.backend_of(*arrays).xp


def erf(x: Any) -> Any:
    """The error function, through the adapter of ``x``'s library (the standard has none)."""
    return _registry.backend_of(x).erf(x)
