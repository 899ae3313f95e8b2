"""One contiguous buffer per dtype for a network's parameters, and one for their gradients.

A small network pays per array, not per element: an optimizer that walks 2 arrays per
layer issues ~13 array operations for each, and for a bias of 128 numbers each is pure
call overhead. So :class:`~nnx.Sequential` keeps all its Dense layers' parameters in one
buffer per dtype::

    params = [ W₀ | W₁ | … | W_L | b₀ | b₁ | … | b_L ]      (1-d)
    grads  = [ dW₀ | dW₁ | … | dW_L | db₀ | … | db_L ]      (same layout)

and every ``Dense.W``, ``b``, ``dW``, ``db`` is a view into them, shaped as always
(weights first, so an L2 penalty on the weights is one slice, ``params[:n_weights]``).
``backward`` writes the gradients straight into their views; an optimizer then updates
the whole buffer with a fixed, small number of vector operations (:mod:`nnx.optim`).

Only backends whose :attr:`Ops.flat <nnx.backends.Ops.flat>` is True get buffers
(NumPy, CuPy and PyTorch fast paths). JAX, whose arrays are immutable, array-api-strict
and ``NNX_OPS=portable`` keep one array per parameter: the portable path, which the
flat one is tested against.
"""

from __future__ import annotations

from typing import Any

Array = Any

__all__ = ["FlatGroup", "FlatParameters", "flatten"]


class FlatGroup:
    """The parameters of one dtype: ``params`` and ``grads`` (P,), in the layout above.

    ``index[layer]`` is ``(W offset, b offset or None)`` into the buffers;
    ``n_weights`` the number of weight elements (``params[:n_weights]``). ``grads`` is
    the first P elements of ``grads_and_loss`` (P + 1), whose last element carries the
    loss through a data-parallel all-reduce (:mod:`nnx.distributed.buckets`).
    """

    def __init__(self, layers: list[Any], backend: Any, dtype: str) -> None:
        xp, ops = backend.xp, backend.ops
        self.backend = backend
        self.layers = layers
        self.dtype = dtype
        w_sizes = [layer.out_features * layer.in_features for layer in layers]
        b_sizes = [layer.out_features if layer.b is not None else 0 for layer in layers]
        self.n_weights = sum(w_sizes)
        self.size = self.n_weights + sum(b_sizes)
        kind = getattr(xp, dtype)
        self.params = xp.empty((self.size,), dtype=kind, device=backend.device)
        # the gradients, and one element more: a slot where data parallelism puts the loss,
        # so that one all-reduce of this very buffer sums gradients and loss together
        self.grads_and_loss = xp.zeros((self.size + 1,), dtype=kind, device=backend.device)
        self.grads = ops.view(self.grads_and_loss, 0, (self.size,))
        self.index: dict[Any, tuple[int, int | None]] = {}
        w_at, b_at = 0, self.n_weights
        for layer, nw, nb in zip(layers, w_sizes, b_sizes):
            shape = (layer.out_features, layer.in_features)
            W, dW = ops.view(self.params, w_at, shape), ops.view(self.grads, w_at, shape)
            ops.copy_into(W, layer.W)
            b = db = None
            if nb:
                b, db = ops.view(self.params, b_at, (nb,)), ops.view(self.grads, b_at, (nb,))
                ops.copy_into(b, layer.b)
            self.index[layer] = (w_at, b_at if nb else None)
            w_at, b_at = w_at + nw, b_at + nb
            layer._adopt(W, b, dW, db)

        #: every weight (no bias) and its gradient, as one slice each: an L2 penalty on the
        #: weights is one operation on these (nnx.sklearn's ``alpha``)
        self.weights = ops.view(self.params, 0, (self.n_weights,))
        self.weight_grads = ops.view(self.grads, 0, (self.n_weights,))

    def __repr__(self) -> str:
        return f"FlatGroup({len(self.layers)} layers, {self.size} {self.dtype} parameters)"


class FlatParameters:
    """A network's :class:`FlatGroup` per dtype, and whether the optimizer may use them."""

    def __init__(self, groups: list[FlatGroup]) -> None:
        self.groups = groups
        self._checks = tuple((layer, layer._gW, layer._gb) for g in groups for layer in g.layers)

    def __repr__(self) -> str:
        return f"FlatParameters({', '.join(map(repr, self.groups))})"

    def ready(self) -> bool:
        """True while every layer's parameters and gradients are this buffer's views: each
        has had a backward pass into them, none was moved into another network's buffer,
        and no gradient was replaced by an array from elsewhere."""
        for layer, gW, gb in self._checks:
            if layer.dW is not gW or layer.db is not gb or layer._gW is not gW:
                return False
        return True


def flatten(dense: list[Any]) -> FlatParameters | None:
    """Move the parameters of the Dense layers ``dense`` into one buffer per dtype (their
    values are copied; from then on each layer's arrays are views). None when the backend
    keeps one array per parameter, or there is nothing to move."""
    if not dense or not dense[0].backend.ops.flat or len(set(map(id, dense))) != len(dense):
        return None  # a layer listed twice would need two places in one buffer
    backend = dense[0].backend
    if any(layer.backend is not backend for layer in dense):
        return None  # one buffer lives on one device
    dtypes = sorted({layer.dtype for layer in dense})
    return FlatParameters([FlatGroup([d for d in dense if d.dtype == dt], backend, dt)
                           for dt in dtypes])
