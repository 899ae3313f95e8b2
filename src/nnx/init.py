"""Weight initialization (chapter 10.7).

Every initializer takes a weight shape ``(out, in)`` — so fan_in = in, fan_out = out —
and returns an array of the chosen backend. Draws happen on the host from the given
seed and are then copied to the device, so one seed gives bitwise-identical weights
on every backend. Biases start at zero.

=================  ==========================================
name               distribution
=================  ==========================================
``zeros``          0 (breaks nothing, learns nothing: symmetry)
``normal``         N(0, std²), std = 0.01 by default
``xavier_uniform`` U(−a, a), a = √(6 / (fan_in + fan_out))
``xavier_normal``  N(0, 2 / (fan_in + fan_out))
``he_uniform``     U(−a, a), a = √(6 / fan_in)
``he_normal``      N(0, 2 / fan_in)
=================  ==========================================
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .backend import Backend, resolve_backend
from .inputs import positive_int, real_number, show

__all__ = [
    "zeros", "normal", "xavier_uniform", "xavier_normal", "he_uniform", "he_normal",
    "INITIALIZERS", "get", "fans",
]

Shape = tuple[int, ...]


def _shape(shape: Any) -> Shape:
    """``shape`` as a tuple of ints ≥ 1 (a weight's), or a ValueError saying what came."""
    try:
        dims = tuple(shape)
    except TypeError:
        raise ValueError(f"a weight shape is a tuple such as (out, in); got {show(shape)}") \
            from None
    for d in dims:
        if positive_int("each dimension of the shape", d, "init") > _LARGEST:
            raise ValueError(f"init: a dimension above {_LARGEST} cannot be allocated; got "
                             f"{show(d)}")
    return tuple(int(d) for d in dims)


_LARGEST = 2**62


def _dtype(dtype: Any) -> str:
    if dtype not in ("float32", "float64"):
        raise ValueError(f"init: dtype must be 'float32' or 'float64'; got {show(dtype)}")
    return dtype


def fans(shape: Shape) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of shape ``(out, in)``."""
    shape = _shape(shape)
    if len(shape) != 2:
        raise ValueError(f"a weight shape is (out, in) with both ≥ 1; got {shape}")
    fan_out, fan_in = shape
    return fan_in, fan_out


def zeros(shape: Shape, *, seed: Any = None, dtype: str = "float32",
          backend: str | Backend | None = None) -> Any:
    """All zeros (``seed`` is accepted for a uniform signature and ignored)."""
    b = resolve_backend(backend)
    return b.xp.zeros(_shape(shape), dtype=getattr(b.xp, _dtype(dtype)), device=b.device)


def normal(shape: Shape, *, std: float = 0.01, seed: Any = None, dtype: str = "float32",
           backend: str | Backend | None = None) -> Any:
    """N(0, std²): the classic "small random numbers"."""
    std = real_number("init.normal", "std", std, low=0.0)
    return resolve_backend(backend).normal(_shape(shape), std=std, seed=seed,
                                           dtype=_dtype(dtype))


def xavier_uniform(shape: Shape, *, seed: Any = None, dtype: str = "float32",
                   backend: str | Backend | None = None) -> Any:
    """Glorot: U(−a, a) with a = √(6/(fan_in+fan_out)), so Var(w) = 2/(fan_in+fan_out)."""
    fan_in, fan_out = fans(shape)
    a = math.sqrt(6.0 / (fan_in + fan_out))
    return resolve_backend(backend).uniform(tuple(shape), low=-a, high=a, seed=seed,
                                            dtype=_dtype(dtype))


def xavier_normal(shape: Shape, *, seed: Any = None, dtype: str = "float32",
                  backend: str | Backend | None = None) -> Any:
    """Glorot: N(0, 2/(fan_in+fan_out)); for sigmoid and tanh."""
    fan_in, fan_out = fans(shape)
    std = math.sqrt(2.0 / (fan_in + fan_out))
    return resolve_backend(backend).normal(tuple(shape), std=std, seed=seed,
                                           dtype=_dtype(dtype))


def he_uniform(shape: Shape, *, seed: Any = None, dtype: str = "float32",
               backend: str | Backend | None = None) -> Any:
    """He: U(−a, a) with a = √(6/fan_in), so Var(w) = 2/fan_in."""
    fan_in, _ = fans(shape)
    a = math.sqrt(6.0 / fan_in)
    return resolve_backend(backend).uniform(tuple(shape), low=-a, high=a, seed=seed,
                                            dtype=_dtype(dtype))


def he_normal(shape: Shape, *, seed: Any = None, dtype: str = "float32",
              backend: str | Backend | None = None) -> Any:
    """He: N(0, 2/fan_in); ReLU halves the variance, so twice Xavier's scale."""
    fan_in, _ = fans(shape)
    std = math.sqrt(2.0 / fan_in)
    return resolve_backend(backend).normal(tuple(shape), std=std, seed=seed,
                                           dtype=_dtype(dtype))


INITIALIZERS: dict[str, Callable[..., Any]] = {
    "zeros": zeros,
    "normal": normal,
    "xavier_uniform": xavier_uniform,
    "xavier_normal": xavier_normal,
    "he_uniform": he_uniform,
    "he_normal": he_normal,
}


def get(name: str | Callable[..., Any]) -> Callable[..., Any]:
    """The initializer named ``name`` (callables pass through); ``ValueError`` lists the names."""
    if callable(name):
        return name
    try:
        return INITIALIZERS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown init {name!r}; valid names: {', '.join(INITIALIZERS)}"
        ) from None
