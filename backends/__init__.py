"""Adapters for the array libraries nnx runs on, and the one place that tells them apart.

Each adapter is a small module with the same functions::

    available() -> str | None      # None when usable here, else the reason it is not
    namespace() -> module          # the Array API namespace
    array_type() -> type
    default_device(device) -> Any
    from_numpy(a, device) / to_numpy(x)
    erf(x) / synchronize(device)

Nothing outside this package imports numpy, cupy, torch or jax by name.

Listing the usable backends asks only whether each library is installed
(``importlib.util.find_spec``), which costs microseconds; a library is imported when its
backend is first used. cupy is the exception: whether a CUDA device answers is known only
by asking cupy, so listing it imports cupy where it is installed.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

import array_api_compat

from ._base import Backend, name_of_array, spawn_seeds
from ._ops import Ops

__all__ = ["NAMES", "DISTRIBUTION", "Backend", "Ops", "spawn_seeds", "available", "load",
           "name_of_array", "backend_of", "install_hint", "MATMUL_PRECISIONS",
           "set_matmul_precision", "get_matmul_precision"]

#: Every backend nnx knows, in order of preference.
NAMES: tuple[str, ...] = ("numpy", "cupy", "torch", "jax", "array_api_strict")

#: nnx's name on the package index (``import nnx`` is unrelated to the index's ``nnx``).
DISTRIBUTION = "nnx-fundamentals"

#: The module each backend's library installs, asked for with ``find_spec`` before import.
LIBRARY: dict[str, str] = {
    "numpy": "numpy",
    "cupy": "cupy",
    "torch": "torch",
    "jax": "jax",
    "array_api_strict": "array_api_strict",
}

#: The pip extra of nnx that installs each backend's library.
PIP_EXTRA: dict[str, str] = {
    "cupy": "cupy",
    "torch": "torch",
    "jax": "jax",
    "array_api_strict": "strict",
}

_cache: dict[tuple[str, str], Backend] = {}

#: How float32 matrix products may run: "highest" (float32), "high" (TF32 on CUDA),
#: "medium" (bfloat16 products). None until nnx is asked: the libraries' defaults apply.
MATMUL_PRECISIONS: tuple[str, ...] = ("highest", "high", "medium")
_matmul_precision: str | None = None


def set_matmul_precision(precision: str) -> None:
    """Apply ``precision`` to every backend loaded now, and to those loaded later."""
    global _matmul_precision
    if precision not in MATMUL_PRECISIONS:
        names = ", ".join(map(repr, MATMUL_PRECISIONS))
        raise ValueError(f"matmul precision must be one of {names}; got {precision!r}")
    _matmul_precision = precision
    for adapter in {id(b.adapter): b.adapter for b in _cache.values()}.values():
        adapter.set_matmul_precision(precision)


def get_matmul_precision() -> str:
    """The precision last set with :func:`set_matmul_precision` ("highest" before any)."""
    return _matmul_precision or "highest"


def install_hint(extra: str) -> str:
    """The pip commands that install nnx's ``extra``: from the package index, from a checkout."""
    if not extra:
        return f"pip install {DISTRIBUTION} (from a checkout of nnx: pip install -e .)"
    return (f"pip install '{DISTRIBUTION}[{extra}]' "
            f"(from a checkout of nnx: pip install -e '.[{extra}]')")


def _adapter(name: str):
    return importlib.import_module(f"{__name__}.{name}")


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken parent package, a module without a spec
        return False


def why_unavailable(name: str) -> str | None:
    """None when backend ``name`` is usable here, otherwise a sentence saying why not.

    Imports nothing but cupy (to ask for a CUDA device): a library that is installed
    counts as usable, and :func:`load` says why if it then fails to import.
    """
    if name not in NAMES:
        return f"{name!r} is not a backend nnx knows; the known ones are {', '.join(NAMES)}"
    if not _installed(LIBRARY[name]):
        return (f"the {name} library is not installed; "
                f"install it with: {install_hint(PIP_EXTRA.get(name, ''))}")
    if name == "cupy":
        try:
            return _adapter(name).available()
        except Exception as exc:  # noqa: BLE001  (an installed cupy that cannot load)
            return f"cupy is installed but failed to import ({type(exc).__name__}: {exc})"
    return None


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
    try:
        adapter = _adapter(name)
    except Exception as exc:  # installed, yet broken: say so instead of a bare traceback
        raise ValueError(
            f"backend {name!r} is installed but failed to import "
            f"({type(exc).__name__}: {exc}); reinstall it with: "
            f"{install_hint(PIP_EXTRA.get(name, ''))}"
        ) from exc
    reason = adapter.available()
    if reason is not None:
        raise ValueError(f"backend {name!r} cannot be used: {reason}. "
                         f"Usable here: {', '.join(available())}.")
    backend = Backend(
        name=name,
        xp=adapter.namespace(),
        device=adapter.default_device(device),
        array_type=adapter.array_type(),
        adapter=adapter,
    )
    if _matmul_precision is not None:
        adapter.set_matmul_precision(_matmul_precision)
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
