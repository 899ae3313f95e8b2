"""Activation functions f(z) and their derivatives f'(z), as plain functions (chapter 10.4).

Each function works elementwise on an array of any backend (softmax works along
``axis``) and keeps its dtype and shape: ``z`` of any shape — a batch of
pre-activations is (n, width) — gives f(z) and f'(z) of that shape. Integer and boolean
arrays become the library's default floating dtype (float64 on NumPy), complex ones and
non-arrays are refused. Pass ``xp`` to skip the namespace lookup and these checks (nnx's
layers do, having checked).

    nnx.activations.sigmoid(z)               # σ(z) = 1 / (1 + e^(−z))
    nnx.activations.sigmoid_derivative(z)    # σ'(z) = σ(z)(1 − σ(z))

``ACTIVATIONS`` maps each name to its ``(f, f')`` pair.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import array_api_compat

from . import backends as _registry
from ._namespace import erf as _erf
from ._namespace import namespace_of
from .inputs import default_float

Array = Any

__all__ = [
    "identity", "identity_derivative", "step", "step_derivative",
    "sigmoid", "sigmoid_derivative", "tanh", "tanh_derivative",
    "relu", "relu_derivative", "leaky_relu", "leaky_relu_derivative",
    "gelu", "gelu_derivative", "softmax", "softmax_derivative", "log_softmax",
    "ACTIVATIONS", "get",
]

_SQRT_2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_C = math.sqrt(2.0 / math.pi)  # tanh approximation: 0.5 z (1 + tanh(c (z + 0.044715 z³)))
_GELU_K = 0.044715


def _real(z: Array, xp: Any) -> tuple[Array, Any]:
    """``(z, xp)``: with ``xp`` given (nnx's own layers) as they are; otherwise ``z`` is
    checked to be an array of real numbers, integers and booleans cast to the library's
    default floating dtype, complex numbers refused."""
    if xp is not None:
        return z, xp
    if not array_api_compat.is_array_api_obj(z):
        raise TypeError(f"an activation takes an array (of any backend); got "
                        f"{type(z).__name__}")
    xp = namespace_of(z)
    if not xp.isdtype(z.dtype, "real floating"):
        if not xp.isdtype(z.dtype, ("integral", "bool")):
            raise ValueError(f"an activation takes real, integer or boolean numbers; got "
                             f"dtype {z.dtype}")
        z = xp.astype(z, default_float(_registry.backend_of(z)))
    return z, xp


def identity(z: Array, /, *, xp: Any = None) -> Array:
    """f(z) = z."""
    return _real(z, xp)[0]


def identity_derivative(z: Array, /, *, xp: Any = None) -> Array:
    """f'(z) = 1."""
    z, xp = _real(z, xp)
    return xp.ones_like(z)


def step(z: Array, /, *, xp: Any = None) -> Array:
    """The perceptron's step: 1 where z > 0, else 0."""
    z, xp = _real(z, xp)
    return xp.astype(z > 0, z.dtype)


def step_derivative(z: Array, /, *, xp: Any = None) -> Array:
    """0 everywhere (taken as 0 at z = 0 too): no gradient to follow."""
    z, xp = _real(z, xp)
    return xp.zeros_like(z)


def sigmoid(z: Array, /, *, xp: Any = None) -> Array:
    """σ(z) = 1 / (1 + e^(−z)), computed without overflow for any z."""
    z, xp = _real(z, xp)
    e = xp.exp(-xp.abs(z))  # in (0, 1]: never overflows
    r = 1.0 / (1.0 + e)
    return xp.where(z >= 0, r, e * r)


def sigmoid_derivative(z: Array, /, *, xp: Any = None) -> Array:
    """σ'(z) = σ(z) (1 − σ(z))."""
    s = sigmoid(z, xp=xp)
    return s * (1.0 - s)


def tanh(z: Array, /, *, xp: Any = None) -> Array:
    """tanh(z) = (e^z − e^(−z)) / (e^z + e^(−z))."""
    z, xp = _real(z, xp)
    return xp.tanh(z)


def tanh_derivative(z: Array, /, *, xp: Any = None) -> Array:
    """tanh'(z) = 1 − tanh²(z)."""
    t = tanh(z, xp=xp)
    return 1.0 - t * t


def relu(z: Array, /, *, xp: Any = None) -> Array:
    """ReLU(z) = max(0, z)."""
    z, xp = _real(z, xp)
    return xp.maximum(z, 0.0)


def relu_derivative(z: Array, /, *, xp: Any = None) -> Array:
    """1 where z > 0, else 0 (0 at the kink, as in PyTorch)."""
    z, xp = _real(z, xp)
    return xp.astype(z > 0, z.dtype)


def leaky_relu(z: Array, /, *, alpha: float = 0.01, xp: Any = None) -> Array:
    """max(αz, z) for 0 ≤ α ≤ 1; in general z where z > 0, else αz."""
    z, xp = _real(z, xp)
    return xp.where(z > 0, z, alpha * z)


def leaky_relu_derivative(z: Array, /, *, alpha: float = 0.01, xp: Any = None) -> Array:
    """1 where z > 0, else α."""
    z, xp = _real(z, xp)
    return xp.where(z > 0, xp.ones_like(z), xp.full_like(z, alpha))


def _check_approximate(approximate: str) -> None:
    if approximate not in ("none", "tanh"):
        raise ValueError(f"GELU approximate must be 'none' or 'tanh'; got {approximate!r}")


def gelu(z: Array, /, *, approximate: str = "none", xp: Any = None) -> Array:
    """GELU(z) = z Φ(z), Φ the standard normal CDF; ``approximate="tanh"`` for the tanh form."""
    _check_approximate(approximate)
    z, xp = _real(z, xp)
    if approximate == "tanh":
        return 0.5 * z * (1.0 + xp.tanh(_GELU_C * (z + _GELU_K * z * z * z)))
    return 0.5 * z * (1.0 + _erf(z / _SQRT_2))


def gelu_derivative(z: Array, /, *, approximate: str = "none", xp: Any = None) -> Array:
    """GELU'(z) = Φ(z) + z φ(z) (or the derivative of the tanh form)."""
    _check_approximate(approximate)
    z, xp = _real(z, xp)
    if approximate == "tanh":
        t = xp.tanh(_GELU_C * (z + _GELU_K * z * z * z))
        return 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * _GELU_C * (1.0 + 3 * _GELU_K * z * z)
    cdf = 0.5 * (1.0 + _erf(z / _SQRT_2))
    pdf = _INV_SQRT_2PI * xp.exp(-0.5 * z * z)
    return cdf + z * pdf


def softmax(z: Array, /, *, axis: int = -1, xp: Any = None) -> Array:
    """softmax(z)_i = e^(z_i) / Σ_j e^(z_j) along ``axis``; shifted by max(z): no overflow."""
    z, xp = _real(z, xp)
    e = xp.exp(z - xp.max(z, axis=axis, keepdims=True))
    return e / xp.sum(e, axis=axis, keepdims=True)


def log_softmax(z: Array, /, *, axis: int = -1, xp: Any = None) -> Array:
    """log softmax(z) = z − max − log Σ e^(z − max): finite for any finite z."""
    z, xp = _real(z, xp)
    shifted = z - xp.max(z, axis=axis, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))


def softmax_derivative(z: Array, /, *, xp: Any = None) -> Array:
    """The Jacobian ∂s_i/∂z_j = s_i (δ_ij − s_j) over the last axis: shape ``(..., k, k)``.

    Softmax couples its outputs, so unlike the others its derivative is a matrix per row.
    """
    z, xp = _real(z, xp)
    s = softmax(z, xp=xp)
    k = z.shape[-1]
    eye = xp.eye(k, dtype=z.dtype, device=array_api_compat.device(z))
    return s[..., :, None] * (eye - s[..., None, :])


class Activation(NamedTuple):
    f: Callable[..., Array]
    derivative: Callable[..., Array]


ACTIVATIONS: dict[str, Activation] = {
    "identity": Activation(identity, identity_derivative),
    "step": Activation(step, step_derivative),
    "sigmoid": Activation(sigmoid, sigmoid_derivative),
    "tanh": Activation(tanh, tanh_derivative),
    "relu": Activation(relu, relu_derivative),
    "leaky_relu": Activation(leaky_relu, leaky_relu_derivative),
    "gelu": Activation(gelu, gelu_derivative),
    "softmax": Activation(softmax, softmax_derivative),
}


def get(name: str) -> Activation:
    """The ``(f, f')`` pair named ``name``; a ``ValueError`` lists the valid names."""
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown activation {name!r}; valid names: {', '.join(sorted(ACTIVATIONS))}"
        ) from None
