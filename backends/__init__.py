"""Adapters for the array libraries nnx runs on, and the one place that tells them apart.

Each adapter is a small module with the same functions::

    available() -> str | None      # None when usable here, else the reason it is not
    namespace() -> module          # the Array API namespace
    array_type() -> type
    default_device(device) -> Any
    from_numpy(a, device) / to_numpy(x)
    erf(x) / synchronize(device)

Nothing outside this package imports numpy, cupy, torch or jax by name.
"""

from __future__ import annotations

import importlib
from typing import Any

import array_api_compat

from ._base import Backend, name_of_array, spawn_seeds
from ._ops import Ops

__all__ = ["NAMES", "Backend", "Ops", "spawn_seeds", "available", "load", "name_of_array",
           "backend_of"]

#: Every backend nnx knows, in order of preference.
NAMES: tuple[str, ...] = ("numpy", "cupy", "torch", "jax", "array_api_strict")

#: The pip extra that installs each backend's library.
PIP_EXTRA: dict[str, str] = {
    "numpy": "nnx",
    "cupy": "nnx[cupy]",
    "torch": "nnx[torch]",
    "jax": "nnx[jax]",
    "array_api_strict": "nnx[test]",
}

_cache: dict[tuple[str, str], Backend] = {}


def _adapter(name: str):
    return importlib.import_module(f"{__name__}.{name}")


def why_unavailable(name: str) -> str | None:
    """None when backend ``name`` is usable here, otherwise a sentence saying why not."""
    if name not in NAMES:
        return f"{name!r} is not a backend nnx knows; the known ones are {', '.join(NAMES)}"
    try:
        adapter = _adapter(name)
    except ImportError as exc:
        return (f"the {name} library is not installed ({exc}); "
                f"install it with: pip install '{PIP_EXTRA[name]}'")
    return adapter.available()


def available() -> list[str]:
    """The backend names usable on this machine (cupy only where a CUDA device answers)."""
    return [name for name in NAMES if why_unavailable(name) is None]


def load(name: str, device: Any = None) -> Backend:
    """The :class:`Backend` for library ``name`` on ``device`` (its default when None).

    Raises ``ValueError`` naming the usable backends, and the pip extra that installs
    the requested one, when ``name`` is unknown or cannot run here.
    """
    key = (name, str(device))
    if key in _cache:
        return _cache[key]
    reason = why_unavailable(name)
    if reason is not None:
        raise ValueError(
            f"backend {name!r} cannot be used: {reason}. "
            f"Usable here: {', '.join(available())}."
        )
    adapter = _adapter(name)
    backend = Backend(
        name=name,
        xp=adapter.namespace(),
        device=adapter.default_device(device),
        array_type=adapter.array_type(),
        adapter=adapter,
    )
    _cache[key] = backend
    return backend


def backend_of(*arrays: Any) -> Backend:
    """The Backend all ``arrays`` belong to; a clear ``ValueError`` if they mix libraries.

    ``None`` entries and Python scalars are ignored.
    """
    found: dict[str, Any] = {}
    for x in arrays:
        if x is not None and array_api_compat.is_array_api_obj(x):
            found.setdefault(name_of_array(x), x)
    if not found:
        raise TypeError("expected at least one array; got only Python scalars or None")
    if len(found) > 1:
        raise ValueError(
            "arrays of different backends were passed to one call: "
            f"{', '.join(sorted(found))}. Convert them to one backend with nnx.asarray."
        )
    (name, x), = found.items()
    device = array_api_compat.device(x)
    return load(name, device if name in ("torch", "jax", "cupy") else None)
