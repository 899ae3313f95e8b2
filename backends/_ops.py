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
    #: whether a network's parameters and gradients may live in one flat buffer: every
    #: ``*_into`` method writes into its ``out`` (views of that buffer) and the flat
    #: optimizer kernels update in place. False here: the portable path keeps one array per
    #: parameter (today's reference, and the only way on JAX, whose arrays are immutable).
    flat = False

    def __init__(self, xp: Any) -> None:
        self.xp = xp

    def __repr__(self) -> str:
        return f"{type(self).__name__}({getattr(self.xp, '__name__', self.xp)})"

    def matmul(self, a: Array, b: Array, out: Array | None = None) -> Array:
        """a @ b, (n, k) @ (k, m) → (n, m)."""
        return a @ b

    def matmul_low(self, a: Array, b: Array) -> Array:
        """a @ b of two 16-bit float matrices (a compute dtype, :mod:`nnx.precision`), in
        their dtype. The libraries multiply them as tensor cores do: products and sums in
        float32, the result rounded once."""
        return a @ b

    def sum(self, x: Array) -> Array:
        """Σ of all elements (a loss's reduction), as a 0-d array."""
        return self.xp.sum(x)

    def mean(self, x: Array) -> Array:
        """The mean of all elements, as a 0-d array of x's dtype: an elementwise loss's
        reduction. The libraries' ``mean`` accumulates float16 in float32, so a float16
        loss whose mean is representable never overflows in its sum (as PyTorch's)."""
        return self.xp.mean(x)

    def sum_rows(self, x: Array, out: Array | None = None) -> Array:
        """Σ over axis 0, (n, m) → (m,): the bias gradient db = Σ_rows δ."""
        return self.xp.sum(x, axis=0)

    def relu(self, z: Array, out: Array | None = None) -> Array:
        """a = max(z, 0), elementwise (NaN stays NaN). ``out`` may be z itself."""
        return self.xp.maximum(z, 0.0)

    def tanh(self, z: Array, out: Array | None = None) -> Array:
        """a = tanh(z), elementwise. ``out`` may be z itself."""
        return self.xp.tanh(z)

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
        loss = self.mean(z - m - z * y + xp.log1p(e))
        sigma = xp.exp(m) / (1.0 + e)                # σ(z) = e^min(z,0) / (1 + e^(−|z|))
        return loss, (sigma - y) / n

    def clip_min(self, x: Array, low: float) -> Array:
        """``clip(x, min=low)`` for a Python number ``low``: max(x, low) elementwise, NaN
        staying NaN (binary cross-entropy's clamps)."""
        return self.xp.clip(x, min=low)

    def sub_scaled(self, p: Array, g: Array, alpha: float) -> Array:
        """p ← p − α g, in place on ``p`` where the library allows (JAX rebinds)."""
        p -= alpha * g
        return p

    def softmax_xent(self, z: Array, y: Array) -> tuple[Array, Array]:
        """Cross-entropy of softmax(z) against rows ``y`` (one-hot or probabilities, z's
        shape and dtype), averaged over the n rows, and its gradient (softmax(z) − y)/n.

        log softmax(z) = (z − max z) − log Σ e^(z − max z), per row: stable for any z.
        """
        xp = self.xp
        n = z.shape[0]
        shifted = z - xp.max(z, axis=1, keepdims=True)
        log_p = shifted - xp.log(xp.sum(xp.exp(shifted), axis=1, keepdims=True))
        # where y is 0 the term is 0, even where log p is −inf (logits ±1.7e308): as torch
        loss = -self.sum(xp.where(y == 0, 0.0, y * log_p)) / n
        return loss, (xp.exp(log_p) - y) / n

    # -- the flat-buffer path (used only where ``flat`` is True) ------------------------
    # Each is the per-array path's expression sequence, so that a fast path doing the same
    # operations in the same order into scratch memory gives the same numbers.
    def view(self, buffer: Array, start: int, shape: tuple[int, ...]) -> Array:
        """The elements ``buffer[start:start + prod(shape)]`` of a 1-d buffer as an array of
        ``shape`` that shares their memory (a view: writes go through to the buffer)."""
        size = 1
        for d in shape:
            size *= d
        return self.xp.reshape(buffer[start:start + size], shape)

    def copy_into(self, out: Array, x: Array) -> Array:
        """out[...] = x (same shape), in place."""
        out[...] = x
        return out

    def matmul_into(self, a: Array, b: Array, out: Array) -> Array:
        """out[...] = a @ b, in place."""
        return self.copy_into(out, a @ b)

    def sum_rows_into(self, x: Array, out: Array) -> Array:
        """out[...] = Σ over axis 0 of x, in place."""
        return self.copy_into(out, self.xp.sum(x, axis=0))

    def sgd_step(self, p: Array, g: Array, buf: Array | None, *, lr: float,
                 momentum: float, nesterov: bool, weight_decay: float, first: bool) -> None:
        """One ``torch.optim.SGD`` step on flat ``p`` in place (see :class:`nnx.optim.SGD`).

        ``buf`` is the momentum buffer (None without momentum), set to g when ``first``.
        A fast path keeps its temporaries in scratch memory of its own, never p-sized
        fresh arrays.
        """
        g = self._sgd_direction(p, g, buf, momentum=momentum, nesterov=nesterov,
                                weight_decay=weight_decay, first=first)
        self.sub_scaled(p, g, lr)

    def _sgd_direction(self, p: Array, g: Array, buf: Array | None, *, momentum: float,
                       nesterov: bool, weight_decay: float, first: bool) -> Array:
        """SGD's step direction (momentum buffer updated in place), before the rate."""
        if weight_decay:
            g = g + weight_decay * p
        if momentum:
            if first:
                self.copy_into(buf, g)
            else:
                buf *= momentum
                buf += g
            g = g + momentum * buf if nesterov else buf
        return g

    def adam_step(self, p: Array, g: Array, m: Array, v: Array, *,
                  step_size: float, b1: float, b2: float, sqrt_bc2: float, eps: float,
                  weight_decay: float) -> None:
        """One ``torch.optim.Adam`` step on flat ``p``, ``m``, ``v`` in place:
        m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g², p ← p − step · m / (√v / √(1−β₂ᵗ) + ε)."""
        denom = self._adam_denominator(p, g, m, v, b1=b1, b2=b2, sqrt_bc2=sqrt_bc2, eps=eps,
                                       weight_decay=weight_decay)
        self.sub_scaled(p, m / denom, step_size)

    def _adam_denominator(self, p: Array, g: Array, m: Array, v: Array, *, b1: float,
                          b2: float, sqrt_bc2: Any, eps: float, weight_decay: float) -> Array:
        """Adam's moments updated in place; returns √v / √(1 − β₂ᵗ) + ε."""
        if weight_decay:
            g = g + weight_decay * p
        m *= b1
        m += (1.0 - b1) * g
        v *= b2
        v += (1.0 - b2) * (g * g)
        denom = self.xp.sqrt(v)
        denom /= sqrt_bc2
        denom += eps
        return denom

    # -- a captured step (nnx.capture): every number that changes between steps is read
    # from a small device array, so that a CUDA graph recorded once stays right -------------
    def take_rows_into(self, x: Array, idx: Array, out: Array) -> Array:
        """out[...] = the rows ``idx`` (int64, (r,)) of ``x`` ((n, ...) → (r, ...)), in place:
        the minibatch gathered into a static buffer."""
        return self.copy_into(out, self.xp.take(x, idx, axis=0))

    def gather_rows_into(self, perm: Array, offset: Array, at: Array,
                         pairs: tuple[tuple[Array, Array], ...]) -> None:
        """For each ``(x, out)``: out[i] = x[perm[offset + i]], in place, for the rows i of
        ``out`` (r = len(at)); ``perm`` (n,) and ``offset`` (1,) int64 on the device,
        ``at`` = arange(r): a minibatch gathered at a position the host never reads."""
        idx = self.xp.take(perm, at + offset, axis=0)
        for x, out in pairs:
            self.take_rows_into(x, idx, out)

    def fill(self, out: Array, value: float) -> Array:
        """out[...] = value, in place (a host number written into a device array without a
        read back: a learning rate changed by a schedule, a counter reset)."""
        out[...] = value
        return out

    def accumulate(self, total: Array, value: Array, weight: float) -> Array:
        """total ← total + value · weight, in place (0-d arrays): an epoch's loss summed on
        the device, step by step."""
        total += value * weight
        return total

    def sgd_step_capturable(self, p: Array, g: Array, buf: Array | None, lr: Array, *,
                            momentum: float, nesterov: bool, weight_decay: float,
                            first: bool) -> None:
        """:meth:`sgd_step` with the learning rate read from ``lr``, a float64 array (1,) on
        the device (PyTorch's ``capturable=True``): the same operations in the same order,
        with η rounded to p's dtype once, as ``lr * g`` rounds a Python float."""
        rate = self.xp.astype(lr, p.dtype)
        g = self._sgd_direction(p, g, buf, momentum=momentum, nesterov=nesterov,
                                weight_decay=weight_decay, first=first)
        p -= rate * g

    def adam_step_capturable(self, p: Array, g: Array, m: Array, v: Array, t: Array,
                             lr: Array, *, b1: float, b2: float, eps: float,
                             weight_decay: float) -> None:
        """:meth:`adam_step` with the step count ``t`` and the learning rate ``lr`` in float64
        arrays (1,) on the device: t ← t + 1 first, then the bias corrections
        lr / (1 − β₁ᵗ) and √(1 − β₂ᵗ) in float64 on the device (where :class:`nnx.optim.Adam`
        computes them on the host) and the same update, rounded as it rounds them."""
        xp = self.xp
        t += 1.0
        step = xp.astype(lr / (1.0 - b1 ** t), p.dtype)          # lr / (1 − β₁ᵗ)
        sqrt_bc2 = xp.astype(xp.sqrt(1.0 - b2 ** t), p.dtype)     # √(1 − β₂ᵗ)
        denom = self._adam_denominator(p, g, m, v, b1=b1, b2=b2, sqrt_bc2=sqrt_bc2, eps=eps,
                                       weight_decay=weight_decay)
        p -= step * (m / denom)


def _size(x: Array) -> int:
    n = 1
    for d in x.shape:
        n *= int(d)
    return n
