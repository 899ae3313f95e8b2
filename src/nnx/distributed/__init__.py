"""Scale-out: data-parallel training over MPI and out-of-core prediction on Dask.

    history = model.fit(X, y, ..., distributed=True)    # run with: mpiexec -n 4 python train.py
    if nnx.distributed.is_root():
        nnx.save(model, "model.safetensors")
    scores = model.predict(dask_array)                   # lazy, one row chunk at a time

* :mod:`.mpi` — ``DataParallel``: each rank trains on its shard of every global batch,
  and one all-reduce sums the gradients;
* :mod:`.job` — the ranks (``rank()``, ``size()``, ``is_root()``, ``local_rank()``), the
  ``data_parallel()`` block, and what ``fit(distributed=...)`` means;
* :mod:`.buckets` — every layer's gradient (and the loss) packed into a few flat buffers;
* :mod:`.failsafe` — the watchdog and the exception hook that stop all ranks when one fails;
* :mod:`.dask_predict` — ``model.predict`` on a dask array, chunk by chunk.

This package sits above the core: it imports nnx's modules, and they never import it.
Importing it plugs it into ``fit`` and ``predict`` through :mod:`nnx.extensions`
(``import nnx`` does so). mpi4py and dask are imported only when first used.
"""

from __future__ import annotations

from .. import extensions as _extensions
from . import dask_predict
from .job import data_parallel, is_root, launched_under_mpi, local_rank, rank, resolve, size
from .mpi import DEFAULT_TIMEOUT, DataParallel

__all__ = ["DataParallel", "data_parallel", "resolve", "rank", "size", "is_root",
           "local_rank", "launched_under_mpi", "DEFAULT_TIMEOUT", "dask_predict"]

_extensions.register_data_parallel(resolve)
_extensions.register_predictor(dask_predict.is_dask_array, dask_predict.predict)
