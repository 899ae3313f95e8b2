"""The layer protocol and the fully-connected layer (chapter 10.3, 10.6).

A layer's ``forward(x)`` caches exactly what its ``backward`` needs; ``backward(dy)``
receives dL/d(output), fills the layer's parameter gradients and returns dL/d(input).
"""

from __future__ import annotations

from typing import Any

from . import init as _init
from . import precision as _precision
from .backend import Backend, resolve_backend
from .inputs import layer_array, positive_int, show

Array = Any

__all__ = ["Layer", "Dense"]


class Layer:
    """Base class: a differentiable map with a cached forward and a backward pass."""

    #: names of the trainable parameters; their gradients are ``"d" + name``.
    param_names: tuple[str, ...] = ()

    def forward(self, x: Array) -> Array:  # pragma: no cover - abstract
        """The output for ``x`` (n, in): (n, out); caches what ``backward`` needs."""
        raise NotImplementedError

    def backward(self, dy: Array, *, input_grad: bool = True) -> Array | None:  # pragma: no cover
        """From dL/d(output) (n, out): fill the parameter gradients; return dL/dx (n, in)
        (None when ``input_grad`` is False)."""
        raise NotImplementedError

    def __call__(self, x: Array) -> Array:
        return self.forward(x)

    def release_cache(self) -> None:
        """Drop what ``forward`` cached; ``backward`` needs a new ``forward`` after this.
        :meth:`Sequential.backward` calls it on each layer once that layer is done."""

    def parameters(self) -> dict[str, Array]:
        """The trainable arrays by name (``{}`` for parameter-free layers)."""
        return {name: getattr(self, name) for name in self.param_names
                if getattr(self, name) is not None}

    @property
    def num_params(self) -> int:
        """How many scalars the layer learns."""
        return sum(_size(p) for p in self.parameters().values())

    #: set by :meth:`release_cache`: a backward without a forward since then comes after
    #: another backward (which consumed the cache), not before any forward.
    _released = False

    def _no_cache(self) -> RuntimeError:
        if self._released:
            return RuntimeError(
                f"{self!r}: backward() was called twice for one forward(): the first "
                "backward consumed (released) what forward cached. Call forward() again "
                "before each backward(), or pass retain_cache=True to Sequential.backward "
                "to backpropagate more than once")
        return RuntimeError(
            f"{self!r}: backward() was called before forward(); run the forward pass "
            "first so the layer can cache what backpropagation needs"
        )


def _size(x: Array) -> int:
    n = 1
    for d in x.shape:
        n *= int(d)
    return n


class Dense(Layer):
    """A fully-connected layer: ``Z = X @ W.T + b`` (one row of W per neuron).

    Args:
        in_features: n, the width of each input row.
        out_features: m, the number of neurons.
        init: an initializer name from :mod:`nnx.init` (or a callable ``(shape, *,
            seed, dtype, backend) -> array``) for ``W``; ``b`` starts at zero.
        bias: learn a bias ``b`` (else ``Z = X @ W.T``).
        dtype: ``"float32"`` or ``"float64"``: the parameters and their gradients.
        seed: seed for the weight draw (same seed → same weights on every backend).
        backend: where the parameters live; the active backend when None.
        compute_dtype: None, or ``"bfloat16"``/``"float16"`` (needs ``dtype="float32"``):
            multiply in that dtype with float32 master weights (:mod:`nnx.precision`).
            forward casts x, W and b to it and returns it; backward casts δ to it, stores
            ``dW`` (made in it) and ``db`` (summed in float32) as float32, and returns
            dL/dX in it.

    Shapes: ``W`` (out, in), ``b`` (out,), input (n, in), output (n, out).
    Inputs of another real dtype, integers and booleans are cast to ``dtype`` (lists are
    converted first); arrays of another backend, 1-d inputs, strings and complex inputs
    are refused with a ``ValueError``. ``backward``'s dL/dZ is converted and cast the same
    way. A batch of zero rows gives zero rows (and zero gradients).
    """

    param_names = ("W", "b")

    def __init__(self, in_features: int, out_features: int, *, init: Any = "he_normal",
                 bias: bool = True, dtype: str = "float32", seed: Any = None,
                 backend: str | Backend | None = None, compute_dtype: str | None = None) -> None:
        in_features = positive_int("in_features", in_features, "Dense")
        out_features = positive_int("out_features", out_features, "Dense")
        if dtype not in ("float32", "float64"):
            raise ValueError(f"Dense: dtype must be 'float32' or 'float64'; got {dtype!r}")
        if not isinstance(bias, bool):
            raise ValueError(f"Dense: bias must be True or False; got {bias!r}")
        self.in_features = in_features
        self.out_features = out_features
        self.backend = resolve_backend(backend)
        self.dtype = dtype
        self._xp = self.backend.xp
        self._dtype = getattr(self._xp, dtype)
        self._compute_dtype: str | None = None
        self._cdt: Any = None          # the compute dtype's object (None: compute in dtype)
        self.compute_dtype = compute_dtype
        self._array_type = self.backend.array_type
        self.init = init
        self._W = self._initial_weights(init, seed)
        self._b = _init.zeros((out_features,), dtype=dtype, backend=self.backend) if bias else None
        self._dt = self._W.dtype    # the dtype object arrays carry: the cheapest comparison
        self._ops = self.backend.ops
        self.dW: Array | None = None
        self.db: Array | None = None
        # the gradient arrays this layer made: the next backward may write into them
        self._dW_own: Array | None = None
        self._db_own: Array | None = None
        # views of a network's flat gradient buffer (nnx.flat), once one adopts the layer
        self._gW: Array | None = None
        self._gb: Array | None = None
        self._x: Array | None = None
        self._Wc: Array | None = None  # W in the compute dtype, from forward to backward

    def __repr__(self) -> str:
        low = "" if self._cdt is None else f", compute_dtype={self._compute_dtype!r}"
        return (f"Dense({self.in_features}, {self.out_features}, bias={self._b is not None}, "
                f"dtype={self.dtype!r}{low}, backend={self.backend.name!r})")

    @property
    def compute_dtype(self) -> str | None:
        """The dtype the products run in (``"bfloat16"``, ``"float16"``), or None: ``dtype``."""
        return self._compute_dtype

    @compute_dtype.setter
    def compute_dtype(self, name: str | None) -> None:
        owner = f"Dense({self.in_features}, {self.out_features})"
        self._cdt = _precision.compute_dtype(name, dtype=self.dtype, backend=self.backend,
                                             owner=owner)
        self._compute_dtype = name
        self._x = self._Wc = None      # a cache made in the other dtype is no use

    def _initial_weights(self, init: Any, seed: Any) -> Array:
        """W drawn by ``init``, checked: a custom callable must return real finite numbers
        of shape (out, in) (cast to the layer's dtype)."""
        shape = (self.out_features, self.in_features)
        W = _init.get(init)(shape, seed=seed, dtype=self.dtype, backend=self.backend)
        if isinstance(init, str) or any(init is f for f in _init.INITIALIZERS.values()):
            return W
        W = layer_array(W, self.backend, self._dtype, f"Dense: what init={show(init)} returned")
        if tuple(W.shape) != shape:
            raise ValueError(f"Dense: init={show(init)} returned shape {tuple(W.shape)}; a weight "
                             f"of this layer has shape (out, in) = {shape}")
        if not bool(self._xp.all(self._xp.isfinite(W))):
            raise ValueError(f"Dense: init={show(init)} returned NaN or infinite weights")
        return W

    # -- parameters ------------------------------------------------------------------
    @property
    def W(self) -> Array:
        """The weights, shape ``(out_features, in_features)``."""
        return self._W

    @W.setter
    def W(self, value: Array) -> None:
        if value is self._W:  # `layer.W -= step` hands back the same array: keep it
            return
        if self._gW is not None:  # a view of the network's buffer: copy the values in
            self._ops.copy_into(self._W, self._checked(value, self._W.shape, "W"))
            return
        self._W = self._own(value, (self.out_features, self.in_features), "W")

    @property
    def b(self) -> Array | None:
        """The biases, shape ``(out_features,)``; None for ``bias=False``."""
        return self._b

    @b.setter
    def b(self, value: Array | None) -> None:
        if value is None or self._b is None:
            if value is None and self._b is None:
                return
            raise ValueError(f"{self!r}: a layer built with bias={self._b is not None} "
                             "cannot switch its bias on or off")
        if value is self._b:
            return
        if self._gb is not None:
            self._ops.copy_into(self._b, self._checked(value, self._b.shape, "b"))
            return
        self._b = self._own(value, (self.out_features,), "b")

    def _checked(self, value: Array, shape: tuple[int, ...], name: str) -> Array:
        """``value`` as an array of this layer's backend, checked to have ``shape``."""
        arr = self.backend.asarray(value, what=f"{self!r}.{name}")
        if tuple(arr.shape) != tuple(shape):
            raise ValueError(f"{self!r}: {name} must have shape {tuple(shape)}; got "
                             f"{tuple(arr.shape)}")
        return arr

    def _own(self, value: Array, shape: tuple[int, ...], name: str) -> Array:
        """``value`` in this layer's backend and dtype, shape-checked, as an array nnx owns:
        a private copy, unless the library's arrays are immutable (JAX) and copying is moot."""
        arr = self._checked(value, shape, name)
        return self._xp.astype(arr, self._dtype, copy=not self.backend.immutable_arrays)

    def _adopt(self, W: Array, b: Array | None, dW: Array, db: Array | None) -> None:
        """Live in a network's flat buffers (:mod:`nnx.flat`): ``W``/``b`` are views already
        holding this layer's values, ``dW``/``db`` the views its gradients go to."""
        if self.dW is not None:       # keep a gradient computed before the move
            self._ops.copy_into(dW, self.dW)
            self.dW = dW
        if self.db is not None and db is not None:
            self._ops.copy_into(db, self.db)
            self.db = db
        self._W, self._b, self._gW, self._gb = W, b, dW, db

    # -- forward and backward ----------------------------------------------------------
    def _check_input(self, x: Array) -> Array:
        if not isinstance(x, self._array_type) or x.dtype != self._dt:
            x = layer_array(x, self.backend, self._dtype, f"the input of {self!r}")
        if x.ndim != 2 or x.shape[1] != self.in_features:
            hint = " (a single sample needs shape (1, n): reshape it)" if x.ndim == 1 else ""
            raise ValueError(f"{self!r} expects input of shape (n, {self.in_features}); "
                             f"got {tuple(x.shape)}{hint}")
        return x

    def forward(self, x: Array) -> Array:
        """Z = X W^T + b, caching X for the backward pass. ``x``: (n, in) → (n, out)."""
        if self._cdt is not None:
            return _precision.dense_forward(self, x)
        x = self._check_input(x)
        self._x = x
        z = self._ops.matmul(x, self._W.T)                        # X Wᵀ         (n, out)
        if self._b is not None:
            z += self._b
        return z

    def backward(self, dy: Array, *, input_grad: bool = True) -> Array | None:
        """Given δ = dL/dZ of shape (n, out): set ``dW`` and ``db``; return dL/dX (n, in).

        With ``input_grad=False`` the product for dL/dX is skipped and None returned.
        Where the backend can write in place (NumPy, CuPy), ``dW`` and ``db`` may be
        overwritten in the arrays of the previous backward (large ones are), as PyTorch
        reuses ``.grad``: copy them to keep them across steps.
        """
        x = self._x
        if x is None:
            raise self._no_cache()
        if self._cdt is not None:
            return _precision.dense_backward(self, x, dy, input_grad)
        if not isinstance(dy, self._array_type) or dy.dtype != self._dt:
            dy = layer_array(dy, self.backend, self._dtype, f"dL/dZ given to {self!r}.backward")
        if dy.shape != (x.shape[0], self.out_features):
            raise ValueError(f"{self!r}.backward expects dL/dZ of shape "
                             f"{(x.shape[0], self.out_features)}; got {tuple(dy.shape)}")
        ops = self._ops
        gW = self._gW
        if gW is not None:   # the network's flat gradient buffer: write into its views
            self.dW = ops.matmul_into(dy.T, x, gW)                 # dL/dW = δᵀ X      (out, in)
            if self._b is not None:
                self.db = ops.sum_rows_into(dy, self._gb)          # dL/db = Σ_rows δ  (out,)
            return ops.matmul(dy, self._W) if input_grad else None
        # Reuse only gradient arrays this layer made, never one assigned from outside.
        out_W = self.dW if self.dW is self._dW_own else None
        out_b = self.db if self.db is self._db_own else None
        self.dW = self._dW_own = ops.matmul(dy.T, x, out=out_W)   # dL/dW = δᵀ X      (out, in)
        if self._b is not None:
            self.db = self._db_own = ops.sum_rows(dy, out=out_b)  # dL/db = Σ_rows δ  (out,)
        return ops.matmul(dy, self._W) if input_grad else None    # dL/dX = δ W       (n, in)

    def release_cache(self) -> None:
        self._x = self._Wc = None
        self._released = True
