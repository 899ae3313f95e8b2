"""The few hot operations that have faster forms than the standard can spell.

:class:`Ops` is the portable reference: each method is the plain Array API expression
the core would otherwise write inline. An adapter may subclass it with a fast path
(NumPy's ``out=`` arguments, a fused CuPy kernel) that must give the same numbers; the
tests compare every fast path against these methods, which stay the definition.

Every method returns its result. ``out`` is a hint: an array nnx owns, of the result's
shape and dtype, that a fast path may overwrite instead of allocating; the portable
path ignores it (JAX arrays cannot be written into at all).
"""

from __future__ import annotations

from typing import Any

Array = Any

__all__ = ["Ops"]


class Ops:
    """Portable reference implementations, written against the namespace ``xp``."""

    #: a short label for reports ("portable", "numpy", "cupy", ...).
    kind = "portable"

    def __init__(self, xp: Any) -> None:
        self.xp = xp

    def __repr__(self) -> str:
        return f"{type(self).__name__}({getattr(self.xp, '__name__', self.xp)})"

    def matmul(self, a: Array, b: Array, out: Array | None = None) -> Array:
        """a @ b, (n, k) @ (k, m) → (n, m)."""
        return a @ b

    def sum(self, x: Array) -> Array:
        """Σ of all elements (a loss's reduction), as a 0-d array."""
        return self.xp.sum(x)

    def sum_rows(self, x: Array, out: Array | None = None) -> Array:
        """Σ over axis 0, (n, m) → (m,): the bias gradient db = Σ_rows δ."""
        return self.xp.sum(x, axis=0)

    def relu(self, z: Array) -> Array:
        """a = max(z, 0), elementwise (NaN stays NaN)."""
        return self.xp.maximum(z, 0.0)

    def relu_backward(self, dy: Array, a: Array, out: Array | None = None) -> Array:
        """dL/dz = dL/da ⊙ [a > 0] for a = max(z, 0) (a > 0 exactly where z > 0)."""
        return dy * self.xp.astype(a > 0, dy.dtype)

    def tanh_backward(self, dy: Array, a: Array, out: Array | None = None) -> Array:
        """dL/dz = dL/da ⊙ (1 − a²) for a = tanh(z)."""
        return dy * (1.0 - a * a)

    def sigmoid_backward(self, dy: Array, a: Array, out: Array | None = None) -> Array:
        """dL/dz = dL/da ⊙ a(1 − a) for a = σ(z)."""
        return dy * (a * (1.0 - a))

    def sigmoid_bce(self, z: Array, y: Array) -> tuple[Array, Array]:
        """Binary cross-entropy of σ(z) against y, averaged over the N elements, and its
        gradient: L = mean(max(z, 0) − z y + log(1 + e^(−|z|))), dL/dz = (σ(z) − y)/N.

        ``y`` has z's shape and dtype. Stable for any z: e^(−|z|) never overflows.
        """
        xp = self.xp
        e = xp.exp(-xp.abs(z))                       # e^(−|z|) ∈ (0, 1]
        m = xp.minimum(z, 0.0)                       # so max(z, 0) = z − m
        n = _size(z)
        loss = self.sum(z - m - z * y + xp.log1p(e)) / n
        sigma = xp.exp(m) / (1.0 + e)                # σ(z) = e^min(z,0) / (1 + e^(−|z|))
        return loss, (sigma - y) / n

    def sub_scaled(self, p: Array, g: Array, alpha: float) -> Array:
        """p ← p − α g, in place on ``p`` where the library allows (JAX rebinds)."""
        p -= alpha * g
        return p


def _size(x: Array) -> int:
    n = 1
    for d in x.shape:
        n *= int(d)
    return n
