"""Activation functions as layers: ``a = f(z)`` forward, ``dL/dz = dL/da ⊙ f'(z)`` backward.

The namespace is looked up once per array type, not on every call, so tiny networks
are not dominated by that lookup. Derivatives reuse the cached output where the
closed form allows (σ' = a(1 − a), tanh' = 1 − a², ReLU' = [a > 0]); those layers cache
only ``a``, so the pre-activation ``z`` can be freed after the forward pass.
"""

from __future__ import annotations

import math
from typing import Any

import array_api_compat

from . import activations as F
from . import backends as _registry
from ._namespace import ops_of
from .backend import resolve_backend
from .inputs import default_float, layer_array, real_number
from .layers import Layer

Array = Any

__all__ = [
    "ActivationLayer", "Identity", "Step", "Sigmoid", "Tanh", "ReLU", "LeakyReLU", "GELU",
    "Softmax", "make_activation", "ACTIVATION_LAYERS",
]


class ActivationLayer(Layer):
    """A parameter-free elementwise layer; subclasses define ``_f`` and either ``_df``
    (f' from z and a; z is None when ``needs_input`` is False), the whole ``_vjp``, or
    ``_fused``: the backend op that computes dL/dz from dL/da and a."""

    name = "activation"
    #: whether backward needs z itself; when False only a = f(z) is cached (z is None).
    needs_input = True

    def __init__(self) -> None:
        self._type: type | None = None
        self._dtype: Any = None           # the floating dtype last seen, with _type
        self._xp: Any = None
        self._ops: Any = None
        self._fused_vjp: Any = None
        self._z: Array | None = None
        self._a: Array | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def _admit(self, x: Array) -> Array:
        """``x`` as a real floating array (the slow path of forward, for a new array type
        or dtype): lists go to the active backend; integers and booleans become the
        library's default floating dtype; strings, complex numbers are refused."""
        if array_api_compat.is_array_api_obj(x):
            backend = _registry.backend_of(x)
        else:
            backend = resolve_backend()
        what = f"the input of {self!r}"
        x = layer_array(x, backend, None, what)
        xp = backend.xp
        if not xp.isdtype(x.dtype, "real floating"):
            if not xp.isdtype(x.dtype, ("integral", "bool")):
                raise ValueError(f"{what} must hold real, integer or boolean numbers; "
                                 f"got dtype {x.dtype}")
            x = xp.astype(x, default_float(backend))
        if type(x) is not self._type:
            self._xp = array_api_compat.array_namespace(x)
            self._ops = ops_of(x)
            self._fused_vjp = None if self._fused is None else getattr(self._ops, self._fused)
            self._type = type(x)
        self._dtype = x.dtype
        return x

    def forward(self, x: Array, *, overwrite_x: bool = False) -> Array:
        """a = f(z), caching a (and z when backward needs it). Any shape.

        Arrays of any backend are accepted (lists go to the active one); integer and
        boolean inputs are cast to the library's default floating dtype (float64 on
        NumPy, float32 on PyTorch); strings and complex numbers raise ``ValueError``.

        With ``overwrite_x=True`` a layer whose backward needs only a (ReLU, tanh) may
        write a into ``x`` itself (on NumPy), saving an array of its size: for an ``x``
        nobody else holds. :meth:`Sequential.forward` passes it for its Dense outputs.
        """
        if type(x) is not self._type or x.dtype != self._dtype:
            x = self._admit(x)
        xp = self._xp
        if overwrite_x and self._in_place:
            a = self._f_in_place(x)
        else:
            a = self._f(x, xp)
        self._z, self._a = (x if self.needs_input else None), a
        return a

    #: whether ``_f_in_place(z)`` can write a = f(z) into z (ReLU, tanh).
    _in_place = False

    def _f_in_place(self, z: Array) -> Array:  # pragma: no cover - only where _in_place
        raise NotImplementedError

    def backward(self, dy: Array, *, input_grad: bool = True,
                 overwrite_dy: bool = False) -> Array | None:
        """dL/dz = dL/da ⊙ f'(z).

        With ``overwrite_dy=True`` the result may be written into ``dy`` (the ReLU, tanh
        and sigmoid layers do so on NumPy and CuPy), saving one array of its size: for a
        ``dy`` nobody else holds. :meth:`Sequential.backward` passes it for the gradients
        its own layers made.
        """
        a = self._a
        if a is None:
            raise self._no_cache()
        if not input_grad:
            return None
        if type(dy) is not type(a) or dy.dtype != a.dtype:
            dy = layer_array(dy, _registry.backend_of(a), a.dtype,
                             f"dL/da given to {self!r}.backward")
        if dy.shape != self._a.shape:
            raise ValueError(f"{self!r}.backward expects dL/da of shape {tuple(self._a.shape)}; "
                             f"got {tuple(dy.shape)}")
        if self._fused_vjp is not None:       # one backend op, written into dy if allowed
            return self._fused_vjp(dy, self._a, out=dy if overwrite_dy else None)
        return self._vjp(dy, self._xp)

    def release_cache(self) -> None:
        self._z = self._a = None
        self._released = True

    #: the name of the ``ops`` method ``(dy, a, out=None)`` that computes this layer's
    #: vector-Jacobian product from a alone (ReLU, tanh, sigmoid); None elsewhere.
    _fused: str | None = None

    def _vjp(self, dy: Array, xp: Any) -> Array:
        return dy * self._df(self._z, self._a, xp)

    def _f(self, z: Array, xp: Any) -> Array:  # pragma: no cover - abstract
        raise NotImplementedError

    def _df(self, z: Array, a: Array, xp: Any) -> Array:  # pragma: no cover - abstract
        raise NotImplementedError


class Identity(ActivationLayer):
    """f(z) = z: a linear output (regression)."""

    name = "identity"
    needs_input = False

    def _f(self, z, xp):
        return z

    def _vjp(self, dy, xp):
        return dy


class Step(ActivationLayer):
    """The perceptron's hard threshold; its derivative is 0, so nothing learns through it."""

    name = "step"

    def _f(self, z, xp):
        return F.step(z, xp=xp)

    def _df(self, z, a, xp):
        return xp.zeros_like(z)


class Sigmoid(ActivationLayer):
    """σ(z) = 1/(1 + e^(−z)); σ'(z) = a(1 − a)."""

    name = "sigmoid"
    needs_input = False
    _fused = "sigmoid_backward"   # dL/da ⊙ a(1 − a): one backend op

    def _f(self, z, xp):
        return F.sigmoid(z, xp=xp)

    def _df(self, z, a, xp):
        return a * (1.0 - a)


class Tanh(ActivationLayer):
    """tanh(z); tanh'(z) = 1 − a²."""

    name = "tanh"
    needs_input = False
    _fused = "tanh_backward"   # dL/da ⊙ (1 − a²): one backend op

    def _f(self, z, xp):
        return self._ops.tanh(z)

    _in_place = True

    def _f_in_place(self, z):
        return self._ops.tanh(z, out=z)

    def _df(self, z, a, xp):
        return 1.0 - a * a


class ReLU(ActivationLayer):
    """max(0, z); derivative 1 where z > 0, else 0 (a > 0 exactly where z > 0)."""

    name = "relu"
    needs_input = False
    _fused = "relu_backward"   # dL/da ⊙ [a > 0]: one backend op

    def _f(self, z, xp):
        return self._ops.relu(z)                      # max(z, 0)

    _in_place = True

    def _f_in_place(self, z):
        return self._ops.relu(z, out=z)


class LeakyReLU(ActivationLayer):
    """z where z > 0, else αz; derivative 1 or α."""

    name = "leaky_relu"

    def __init__(self, alpha: float = 0.01) -> None:
        super().__init__()
        self.alpha = real_number("LeakyReLU", "alpha", alpha, low=-math.inf)

    def __repr__(self) -> str:
        return f"LeakyReLU(alpha={self.alpha})"

    def _f(self, z, xp):
        return F.leaky_relu(z, alpha=self.alpha, xp=xp)

    def _df(self, z, a, xp):
        return F.leaky_relu_derivative(z, alpha=self.alpha, xp=xp)


class GELU(ActivationLayer):
    """z Φ(z) (exact, through erf) or its tanh approximation."""

    name = "gelu"

    def __init__(self, approximate: str = "none") -> None:
        F._check_approximate(approximate)
        super().__init__()
        self.approximate = approximate

    def __repr__(self) -> str:
        return f"GELU(approximate={self.approximate!r})"

    def _f(self, z, xp):
        return F.gelu(z, approximate=self.approximate, xp=xp)

    def _df(self, z, a, xp):
        return F.gelu_derivative(z, approximate=self.approximate, xp=xp)


class Softmax(ActivationLayer):
    """Softmax over the last axis; for a classification head only (chapter 10.4).

    Backward is the Jacobian-vector product ``a ⊙ (dy − Σ_j dy_j a_j)``, never the
    k×k Jacobian itself.
    """

    name = "softmax"
    needs_input = False

    def _f(self, z, xp):
        return F.softmax(z, xp=xp)

    def _vjp(self, dy, xp):
        a = self._a
        return a * (dy - xp.sum(dy * a, axis=-1, keepdims=True))


ACTIVATION_LAYERS: dict[str, type[ActivationLayer]] = {
    cls.name: cls for cls in (Identity, Step, Sigmoid, Tanh, ReLU, LeakyReLU, GELU, Softmax)
}


def make_activation(spec: str | Layer | None) -> Layer:
    """A layer from a name (``"relu"``, ``"gelu"``, ...), a Layer instance, or None (identity)."""
    if spec is None:
        return Identity()
    if isinstance(spec, Layer):
        return spec
    if spec == "gelu_tanh":
        return GELU(approximate="tanh")
    try:
        return ACTIVATION_LAYERS[spec]()
    except (KeyError, TypeError):
        names = ", ".join([*ACTIVATION_LAYERS, "gelu_tanh"])
        raise ValueError(f"unknown activation {spec!r}; valid names: {names}") from None
