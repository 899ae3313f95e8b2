"""Gradients of every layer packed into a few contiguous buffers, for one all-reduce each.

Data-parallel training sums every rank's gradients after each backward pass. One
collective call per parameter array would pay the network latency once per array
(2 per Dense layer); packing them into one flat buffer — or a few buckets of bounded
size — pays it once per bucket::

    layout = GradientBuckets(model)                  # offsets computed once per fit
    for k in range(len(layout.buckets)):
        buf = layout.pack(k, weight=n_r / n, loss=value)   # (size,) = weight · [dW₀, db₀, …, loss]
        buf = all_reduce_sum(buf)
        loss = layout.unpack(k, buf)                 # dW, db become views of buf (no copy)

The loss value rides in the last bucket's final slot, so reducing it costs no extra
message. Everything here is Array API standard code (``concat``, ``reshape``, 1-d
slices); it runs on every backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Array = Any

__all__ = ["Slot", "Bucket", "GradientBuckets", "FlatGradientBuckets", "layout_for"]


@dataclass(frozen=True)
class Slot:
    """Where one parameter's gradient lives in its bucket.

    ``layer.<grad>`` (shape ``shape``, ``size`` elements) occupies
    ``buffer[offset : offset + size]`` of bucket ``bucket``.
    """

    layer: Any
    name: str          # the parameter, "W" or "b"
    grad: str          # its gradient attribute, "dW" or "db"
    shape: tuple[int, ...]
    size: int
    bucket: int
    offset: int


@dataclass(frozen=True)
class Bucket:
    """Consecutive slots sent as one buffer of ``size`` elements (plus the loss, if last)."""

    slots: tuple[Slot, ...]
    size: int
    has_loss: bool


def _check_bucket_bytes(owner: str, bucket_bytes: Any) -> None:
    if bucket_bytes is not None and (isinstance(bucket_bytes, bool)
                                     or not isinstance(bucket_bytes, int) or bucket_bytes < 1):
        raise ValueError(f"{owner}: bucket_bytes must be a positive int or None; "
                         f"got {bucket_bytes!r}")


def _loss_slot(loss: Array | float | None, backend: Any, dtype: Any) -> Array:
    """The loss as a 1-element array of ``dtype`` on ``backend`` (0 when None)."""
    xp = backend.xp
    if loss is None:
        loss = 0.0
    if not backend.owns(loss):
        return xp.asarray([float(loss)], dtype=dtype, device=backend.device)
    if loss.dtype != dtype:
        loss = xp.astype(loss, dtype)
    return xp.reshape(loss, (1,))


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


class GradientBuckets:
    """The bucket layout of a model's gradients, and packing to and from flat buffers.

    Args:
        model: a Sequential (its ``dense_layers``) or a list of layers with parameters.
        bucket_bytes: upper bound on one bucket's bytes; parameters are taken in layer
            order and a new bucket starts when the next one would overflow it (a single
            parameter larger than the bound gets a bucket of its own). None: one bucket.
        with_loss: reserve the final element of the last bucket for the loss value.
    """

    def __init__(self, model: Any, *, bucket_bytes: int | None = None,
                 with_loss: bool = True) -> None:
        layers = getattr(model, "dense_layers", None)
        layers = list(model) if layers is None else layers
        if not layers:
            raise ValueError("GradientBuckets: the model has no layer with parameters")
        _check_bucket_bytes("GradientBuckets", bucket_bytes)
        first = layers[0]
        self.backend = first.backend
        self.xp = xp = first.backend.xp
        self.dtype = getattr(xp, first.dtype)
        itemsize = 8 if first.dtype == "float64" else 4
        for layer in layers:
            if layer.backend is not self.backend or layer.dtype != first.dtype:
                raise ValueError(f"GradientBuckets: all layers must share one backend and "
                                 f"dtype to share a buffer; {layer!r} differs from {first!r}")
        limit = None if bucket_bytes is None else max(1, bucket_bytes // itemsize)
        groups: list[list[tuple[Any, str, tuple[int, ...], int]]] = [[]]
        used = 0
        for layer in layers:
            for name in layer.param_names:
                p = getattr(layer, name)
                if p is None:
                    continue
                shape = tuple(int(d) for d in p.shape)
                size = _numel(shape)
                if limit is not None and groups[-1] and used + size > limit:
                    groups.append([])
                    used = 0
                groups[-1].append((layer, name, shape, size))
                used += size
        buckets = []
        for k, group in enumerate(groups):
            slots, offset = [], 0
            for layer, name, shape, size in group:
                slots.append(Slot(layer, name, "d" + name, shape, size, k, offset))
                offset += size
            last = k == len(groups) - 1
            buckets.append(Bucket(tuple(slots), offset + (1 if with_loss and last else 0),
                                  with_loss and last))
        self.buckets: tuple[Bucket, ...] = tuple(buckets)
        self.with_loss = with_loss

    @property
    def slots(self) -> list[Slot]:
        """Every slot, in layer order."""
        return [s for b in self.buckets for s in b.slots]

    @property
    def num_elements(self) -> int:
        """Elements sent per step, over all buckets (the loss included)."""
        return sum(b.size for b in self.buckets)

    def __repr__(self) -> str:
        sizes = ", ".join(str(b.size) for b in self.buckets)
        return f"GradientBuckets({len(self.buckets)} bucket(s) of [{sizes}] elements)"

    def pack(self, k: int, *, weight: float = 1.0, loss: Array | float | None = None) -> Array:
        """Bucket ``k`` as a new flat array (size,): ``weight · [grads…, loss]``.

        ``weight == 0`` (a rank whose share of the batch is empty) sends zeros without
        reading the gradients, which may be missing or stale. The loss slot holds
        ``loss`` (0 when None).
        """
        bucket = self.buckets[k]
        xp = self.xp
        if weight == 0:
            return xp.zeros((bucket.size,), dtype=self.dtype, device=self.backend.device)
        parts = []
        for s in bucket.slots:
            g = getattr(s.layer, s.grad)
            if g is None:
                raise RuntimeError(f"{s.layer!r} has no gradient {s.grad}: run backward() "
                                   "before reducing the gradients")
            parts.append(xp.reshape(g, (s.size,)))
        if bucket.has_loss:
            parts.append(self._loss_slot(loss))
        buf = xp.concat(parts) if len(parts) > 1 else xp.asarray(parts[0], copy=True)
        if weight != 1:
            buf *= weight
        return buf

    def _loss_slot(self, loss: Array | float | None) -> Array:
        return _loss_slot(loss, self.backend, self.dtype)

    def unpack(self, k: int, buf: Array) -> Array | None:
        """Point every gradient of bucket ``k`` at its slice of ``buf``; return the loss slot.

        The gradients become views of ``buf`` where the library has views (NumPy, CuPy,
        PyTorch) — no copy. Returns a 0-d array (the loss), or None without a loss slot.
        """
        bucket = self.buckets[k]
        if tuple(buf.shape) != (bucket.size,):
            raise ValueError(f"bucket {k} holds {bucket.size} elements; got a buffer of shape "
                             f"{tuple(buf.shape)}")
        xp = self.xp
        for s in bucket.slots:
            setattr(s.layer, s.grad, xp.reshape(buf[s.offset:s.offset + s.size], s.shape))
        return buf[bucket.size - 1] if bucket.has_loss else None


class FlatGradientBuckets:
    """The all-reduce buffers of a network with a flat gradient buffer (:mod:`nnx.flat`):
    slices of that buffer itself, the loss in its extra last element. Nothing is packed.

    Same interface as :class:`GradientBuckets`: ``pack(k)`` scales bucket ``k`` in place
    and returns it (a view of the gradients), ``unpack(k, buf)`` leaves the summed values
    there (copying only if the transport answered with another array) and, for the last
    bucket, returns the summed loss.
    """

    def __init__(self, model: Any, *, bucket_bytes: int | None = None) -> None:
        (group,) = model.flat.groups
        _check_bucket_bytes("FlatGradientBuckets", bucket_bytes)
        self.group = group
        self.backend = group.backend
        self.xp = group.backend.xp
        self.dtype = group.grads.dtype
        total = group.size + 1
        itemsize = 8 if group.dtype == "float64" else 4
        step = total if bucket_bytes is None else max(1, bucket_bytes // itemsize)
        self.bounds = [(a, min(a + step, total)) for a in range(0, total, step)]
        self.buckets: tuple[Bucket, ...] = tuple(
            Bucket((), b - a, b == total) for a, b in self.bounds)
        self._views = [group.grads_and_loss[a:b] for a, b in self.bounds]
        self._grads = [(layer, layer._gW, layer._gb) for layer in group.layers]

    @property
    def num_elements(self) -> int:
        return self.group.size + 1

    def __repr__(self) -> str:
        sizes = ", ".join(str(b.size) for b in self.buckets)
        return f"FlatGradientBuckets({len(self.buckets)} slice(s) of [{sizes}] elements)"

    def pack(self, k: int, *, weight: float = 1.0, loss: Array | float | None = None) -> Array:
        """Bucket ``k``, a view of the gradient buffer, scaled by ``weight`` in place."""
        view, ops = self._views[k], self.backend.ops
        if weight == 0:       # an empty shard: zeros, whatever stale values the buffer holds
            ops.copy_into(view, self.xp.zeros_like(view))
        elif weight != 1:
            view *= weight
        if self.buckets[k].has_loss:
            slot = ops.view(view, view.shape[0] - 1, (1,))
            value = _loss_slot(None if weight == 0 else loss, self.backend, self.dtype)
            ops.copy_into(slot, value if weight in (0, 1) else value * weight)
        return view

    def unpack(self, k: int, buf: Array) -> Array | None:
        """The summed bucket ``k`` in the gradient buffer; the summed loss for the last."""
        view = self._views[k]
        if tuple(buf.shape) != tuple(view.shape):
            raise ValueError(f"bucket {k} holds {view.shape[0]} elements; got a buffer of "
                             f"shape {tuple(buf.shape)}")
        if buf is not view:
            self.backend.ops.copy_into(view, buf)
        if not self.buckets[k].has_loss:
            return None
        for layer, gW, gb in self._grads:   # every gradient is its view again (empty shards)
            layer.dW, layer.db = gW, gb
        return self.xp.asarray(view[view.shape[0] - 1], copy=True)   # the next step reuses it


def layout_for(model: Any, *, bucket_bytes: int | None = None) -> Any:
    """The flat buffer itself where the model has one (one dtype), else packed buckets."""
    flat = getattr(model, "flat", None)
    if flat is not None and len(flat.groups) == 1:
        return FlatGradientBuckets(model, bucket_bytes=bucket_bytes)
    return GradientBuckets(model, bucket_bytes=bucket_bytes)
