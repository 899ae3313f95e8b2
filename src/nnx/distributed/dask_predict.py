"""Out-of-core prediction: ``model.predict`` on a dask array, chunk by chunk.

    import dask.array as da
    X = da.from_zarr("features.zarr")            # (n, in), chunked along the samples
    scores = model.predict(X)                     # a lazy dask array (n, out)
    scores.to_zarr("scores.zarr")                 # computed one chunk at a time

The weights are captured once, when ``predict`` is called: later training does not
change a graph already built, and the graph holds one scorer object shared by every
chunk's task (for a multi-process or distributed scheduler it pickles as the
architecture plus the raw weight bytes, and is rebuilt once per worker process, on
that worker's default device of the same backend). Chunks split along the feature
axis are first joined into one column chunk. Each chunk's output is an array of the
chunk's own library (NumPy chunks give NumPy scores, CuPy chunks CuPy scores).

dask is imported only here, and only when a dask array is passed: nnx works without it.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from .. import architecture as _architecture
from .. import backends as _registry
from ..backend import resolve_backend
from ..training import predict as _predict_arrays

Array = Any

__all__ = ["is_dask_array", "predict"]


def is_dask_array(x: Any) -> bool:
    """True for a ``dask.array.Array`` (without importing dask when it is not loaded)."""
    da = sys.modules.get("dask.array")
    return da is not None and isinstance(x, da.Array)


class _ChunkScorer:
    """A frozen copy of a model that scores one (rows, in) chunk at a time."""

    def __init__(self, arch: dict[str, Any], tensors: dict[str, tuple[str, tuple[int, ...], bytes]],
                 backend_name: str, batch_size: int | None, model: Any = None) -> None:
        self.arch, self.tensors, self.backend_name = arch, tensors, backend_name
        self.batch_size = batch_size
        self._model = model
        self._lock = threading.Lock()

    @classmethod
    def capture(cls, model: Any, batch_size: int | None) -> _ChunkScorer:
        """Snapshot ``model``'s architecture and weights (one host copy of each array)."""
        arch = _architecture.describe(model)
        tensors = {name: _registry.backend_of(p).to_bytes(p)
                   for name, p in model.parameters().items()}
        backend = model.dense_layers[0].backend
        scorer = cls(arch, tensors, backend.name, batch_size)
        scorer._model = scorer._build(backend)
        return scorer

    def _build(self, backend: Any) -> Any:
        model = _architecture.build(self.arch, backend)
        params = dict(model.parameters())
        for key, (code, shape, data) in self.tensors.items():
            index, name = key.rsplit(".", 1)
            layer = model
            for part in index.split("."):
                layer = layer.layers[int(part)]
            setattr(layer, name, backend.from_bytes(data, code, shape))
        assert set(params) == set(self.tensors), "architecture and weights disagree"
        return model

    def __reduce__(self) -> Any:  # ship the recipe, not the device arrays
        return (type(self), (self.arch, self.tensors, self.backend_name, self.batch_size))

    def __call__(self, block: Any) -> Any:
        model = self._model
        if model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._build(resolve_backend(self.backend_name))
                model = self._model
        out = _predict_arrays(model, block, batch_size=self.batch_size)
        if _registry.name_of_array(block) == model.dense_layers[0].backend.name:
            return out
        target = _registry.backend_of(block)   # back to the chunk's own library
        return target.from_numpy(model.dense_layers[0].backend.to_numpy(out))


def predict(model: Any, X: Any, batch_size: int | None = None) -> Any:
    """``model``'s output for a dask array ``X`` (n, in) as a lazy dask array (n, out).

    Rows keep ``X``'s chunks; ``batch_size`` further bounds the rows pushed through the
    model at once inside a chunk.
    """
    import dask.array as da

    dense = model.dense_layers
    n_in, n_out = dense[0].in_features, dense[-1].out_features
    if X.ndim != 2 or X.shape[1] != n_in:
        raise ValueError(f"predict: X must have shape (n, {n_in}); got a dask array of shape "
                         f"{tuple(X.shape)}")
    if X.numblocks[1] > 1:  # each task needs whole rows
        X = X.rechunk({1: -1})
    scorer = _ChunkScorer.capture(model, batch_size)
    dtype = dense[-1].dtype
    meta = da.utils.meta_from_array(X, ndim=2, dtype=dtype)
    return da.map_blocks(scorer, X, dtype=dtype, chunks=(X.chunks[0], (n_out,)), meta=meta,
                         token="nnx-predict")
