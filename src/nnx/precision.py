"""Precision policy: float32 master weights, matrix products in a lower precision.

A GPU's tensor cores multiply bfloat16 or float16 matrices (accumulating in float32)
many times faster than its float32 units, and float32 matrices in TF32 several times
faster. nnx offers both, as PyTorch's autocast and ``set_float32_matmul_precision`` do:

    model = nnx.MLP([784, 4096, 4096, 10], compute_dtype="bfloat16")   # per model
    nnx.set_matmul_precision("high")                                   # TF32, globally

**A compute dtype** (``"bfloat16"`` or ``"float16"``, per Dense layer or per network):

* parameters, their gradients and the optimizer's state stay float32 (master weights);
* each Dense casts its input, ``W`` and ``b`` to the compute dtype and multiplies there,
  ``Z = X Wᵀ + b`` (the libraries accumulate low-precision products in float32); the
  activations run on the compute dtype, as autocast leaves them;
* the network's output is cast back to float32, so the loss and its reductions are
  float32; backward casts δ to the compute dtype, computes ``dW = δᵀX`` there and stores
  it in the float32 gradient; ``db = Σ_rows δ`` is summed in float32;
* float16's narrow range needs loss scaling: :func:`nnx.fit` scales dynamically, as
  ``torch.amp.GradScaler`` does, whenever a layer computes in float16.

Where each dtype exists: torch and JAX have both; CuPy has float16, and bfloat16 where
it computes with ``ml_dtypes`` (CuPy 14+); NumPy has float16 only (its products run
through float32 BLAS, rounded as tensor cores round: for correctness, not speed);
array-api-strict has only the standard's dtypes. The names resolve in ``backends/``.

**Matrix-product precision** for float32 arrays (:func:`set_matmul_precision`) is
global, like the libraries' own switches it sets: ``"highest"`` (full float32),
``"high"`` (TF32 on CUDA: 10-bit mantissa, float32 range) or ``"medium"`` (bfloat16
products). It acts on CUDA devices; CPU backends always multiply float32 in float32.
:func:`nnx.gradcheck` refuses anything below full float32.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from . import backends as _registry
from .inputs import layer_array

Array = Any

__all__ = ["COMPUTE_DTYPES", "MATMUL_PRECISIONS", "set_matmul_precision",
           "get_matmul_precision", "matmul_precision", "compute_dtype", "dense_forward",
           "dense_backward"]

#: the low-precision dtypes a Dense layer may compute in.
COMPUTE_DTYPES: tuple[str, ...] = ("bfloat16", "float16")

#: the float32 matrix-product precisions, in PyTorch's names.
MATMUL_PRECISIONS: tuple[str, ...] = _registry.MATMUL_PRECISIONS


def set_matmul_precision(precision: str) -> None:
    """How float32 matrix products run on CUDA, for every backend, from now on.

    Args:
        precision: ``"highest"`` (float32), ``"high"`` (TF32) or ``"medium"`` (bfloat16
            products), as ``torch.set_float32_matmul_precision``. It is passed to each
            library's public switch: PyTorch's ``set_float32_matmul_precision``, JAX's
            ``jax_default_matmul_precision`` (``"high"`` → ``"tensorfloat32"``), CuPy's
            cuBLAS compute type for float32 (what ``CUPY_TF32=1`` selects).

    Until it is called, each library keeps its own default (nnx's JAX backend asks for
    full float32, see :mod:`nnx.backends.jax`).
    """
    _registry.set_matmul_precision(precision)


def get_matmul_precision() -> str:
    """The precision last set with :func:`set_matmul_precision` (``"highest"`` before)."""
    return _registry.get_matmul_precision()


@contextmanager
def matmul_precision(precision: str) -> Iterator[None]:
    """``with nnx.precision.matmul_precision("high"):`` — restored afterwards, even on error."""
    before = get_matmul_precision()
    set_matmul_precision(precision)
    try:
        yield
    finally:
        set_matmul_precision(before)


def compute_dtype(name: Any, *, dtype: str, backend: Any, owner: str) -> Any:
    """The library dtype a layer of master dtype ``dtype`` computes in, for ``name``:
    None (compute in ``dtype`` itself) or one of :data:`COMPUTE_DTYPES`. A ``ValueError``
    names what was expected: a known name, float32 master weights, a backend that has it.
    """
    if name is None:
        return None
    if not isinstance(name, str) or name not in COMPUTE_DTYPES:
        raise ValueError(f"{owner}: compute_dtype must be None, 'bfloat16' or 'float16'; "
                         f"got {name!r}")
    if dtype != "float32":
        raise ValueError(f"{owner}: compute_dtype={name!r} keeps float32 master weights, so "
                         f"it needs dtype='float32'; got dtype={dtype!r}")
    try:
        return backend.dtype(name)
    except ValueError as exc:
        raise ValueError(f"{owner}: compute_dtype={name!r}: {exc}") from None


# -- a Dense layer's forward and backward in its compute dtype (nnx.layers.Dense calls these)
def _low(layer: Any, a: Array, what: str) -> Array:
    """``a`` in the layer's compute dtype: a cast for its backend's floats, else checked."""
    if isinstance(a, layer._array_type) and a.dtype == layer._dt:
        return layer._xp.astype(a, layer._cdt)
    return layer_array(a, layer.backend, layer._cdt, what)


def dense_forward(layer: Any, x: Array) -> Array:
    """Z = X Wᵀ + b with X, W, b in the compute dtype; (n, in) → (n, out) in that dtype.
    Caches X and the rounded W for backward."""
    if not isinstance(x, layer._array_type) or x.dtype != layer._cdt:
        x = _low(layer, x, f"the input of {layer!r}")
    if x.ndim != 2 or x.shape[1] != layer.in_features:
        raise ValueError(f"{layer!r} expects input of shape (n, {layer.in_features}); "
                         f"got {tuple(x.shape)}")
    xp = layer._xp
    Wc = xp.astype(layer.W, layer._cdt)                        # W rounded, once per step
    layer._x, layer._Wc = x, Wc
    z = layer._ops.matmul_low(x, Wc.T)                         # X Wᵀ in the compute dtype
    if layer.b is not None:
        z = z + xp.astype(layer.b, layer._cdt)
    return z


def dense_backward(layer: Any, x: Array, dy: Array, input_grad: bool) -> Array | None:
    """From δ (n, out): dW = δᵀX made in the compute dtype and stored float32, db = Σ_rows δ
    summed in float32; returns dL/dX = δ W (n, in) in the compute dtype."""
    if not isinstance(dy, layer._array_type) or dy.dtype != layer._cdt:
        dy = _low(layer, dy, f"dL/dZ given to {layer!r}.backward")
    if dy.shape != (x.shape[0], layer.out_features):
        raise ValueError(f"{layer!r}.backward expects dL/dZ of shape "
                         f"{(x.shape[0], layer.out_features)}; got {tuple(dy.shape)}")
    xp, ops = layer._xp, layer._ops
    dW = ops.matmul_low(dy.T, x)                               # δᵀ X, rounded to the dtype
    if layer._gW is not None:                                  # the network's flat buffer
        layer.dW = ops.copy_into(layer._gW, dW)
    else:
        layer.dW = layer._dW_own = xp.astype(dW, layer._dtype)
    if layer.b is not None:
        db = xp.sum(dy, axis=0, dtype=layer._dtype)            # Σ_rows δ in float32
        if layer._gb is not None:
            layer.db = ops.copy_into(layer._gb, db)
        else:
            layer.db = layer._db_own = db
    return ops.matmul_low(dy, layer._Wc) if input_grad else None
