"""Resolving the array namespace once, at an entry point (array-api-extra style)."""

from __future__ import annotations

from typing import Any

from . import backends as _registry

#: array type → its namespace / its backend's hot operations, filled on first sight: the
#: full lookup costs microseconds, as much as a whole layer of a tiny network.
_NAMESPACE_OF_TYPE: dict[type, Any] = {}
_OPS_OF_TYPE: dict[type, Any] = {}


def namespace_of(*arrays: Any, xp: Any = None) -> Any:
    """``xp`` if given, else the namespace shared by ``arrays`` (mixing libraries is an error)."""
    if xp is not None:
        return xp
    kind = type(arrays[0]) if arrays else None
    if len(arrays) == 1 or all(type(a) is kind for a in arrays):
        found = _NAMESPACE_OF_TYPE.get(kind)
        if found is None:
            found = _NAMESPACE_OF_TYPE[kind] = _registry.backend_of(*arrays).xp
        return found
    return _registry.backend_of(*arrays).xp


def ops_of(x: Any) -> Any:
    """The hot operations of ``x``'s library (:class:`nnx.backends.Ops`: its fast paths)."""
    found = _OPS_OF_TYPE.get(type(x))
    if found is None:
        found = _OPS_OF_TYPE[type(x)] = _registry.backend_of(x).ops
    return found


def erf(x: Any) -> Any:
    """The error function, through the adapter of ``x``'s library (the standard has none)."""
    return _registry.backend_of(x).erf(x)
