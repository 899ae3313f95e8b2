"""The MPI job as this process sees it, and which DataParallel each ``fit`` uses.

    nnx.distributed.rank(), nnx.distributed.size(), nnx.distributed.is_root()
    nnx.distributed.local_rank()          # to pick a GPU: device=local_rank()
    with nnx.distributed.data_parallel():  # every fit in the block trains data-parallel
        model.fit(...)

In a plain process (no MPI launcher) the answers are rank 0 of 1 and MPI is never
started. :func:`resolve` is what ``fit(distributed=...)`` means; it is registered with
:mod:`nnx.extensions` when :mod:`nnx.distributed` is imported.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .mpi import DataParallel, _mpi

__all__ = ["data_parallel", "resolve", "rank", "size", "is_root", "local_rank",
           "launched_under_mpi"]

_LAUNCHER_VARS = ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "MPI_LOCALRANKID")


def launched_under_mpi() -> bool:
    """True when an MPI launcher (mpiexec, mpirun) started this process."""
    return any(v in os.environ for v in _LAUNCHER_VARS)


_world: DataParallel | None = None
_stack: list[DataParallel] = []


def _world_dp() -> DataParallel:
    global _world
    if _world is None:
        _world = DataParallel()
    return _world


def rank() -> int:
    """This process's rank in ``MPI.COMM_WORLD``; 0 when not launched by MPI."""
    if _world is None and not launched_under_mpi():
        return 0
    return _world_dp().rank


def size() -> int:
    """The number of ranks in ``MPI.COMM_WORLD``; 1 when not launched by MPI."""
    if _world is None and not launched_under_mpi():
        return 1
    return _world_dp().size


def is_root() -> bool:
    """True on rank 0 (and in a plain, non-MPI run): the process that prints and writes."""
    return rank() == 0


def local_rank() -> int:
    """This rank's index among the ranks on its own node (to pick a GPU: device=local_rank())."""
    if _world is None and not launched_under_mpi():
        return 0
    MPI = _mpi()
    node = MPI.COMM_WORLD.Split_type(MPI.COMM_TYPE_SHARED)
    try:
        return node.Get_rank()
    finally:
        node.Free()


@contextmanager
def data_parallel(comm: Any = None, *, timeout: float | None = None,
                  bucket_bytes: int | None = None, transport: str = "auto"
                  ) -> Iterator[DataParallel]:
    """Train data-parallel inside the block: every ``fit`` there uses it (``distributed=None``).

    An exception leaving the block on one rank aborts all ranks (they would otherwise
    wait for it forever); ``sys.exit(0)`` does not. Arguments as :class:`DataParallel`.
    """
    dp = DataParallel(comm, timeout=timeout, bucket_bytes=bucket_bytes, transport=transport)
    _stack.append(dp)
    try:
        yield dp
    except SystemExit as exc:
        if exc.code not in (None, 0) and dp.size > 1:
            dp.abort(f"rank {dp.rank} of {dp.size} exited with status {exc.code!r}")
        raise
    except BaseException as exc:
        if dp.size > 1:
            dp.abort(f"rank {dp.rank} of {dp.size} failed with {type(exc).__name__}: {exc}",
                     then=traceback.print_exc)
        raise
    finally:
        _stack.remove(dp)


def resolve(distributed: Any) -> DataParallel | None:
    """What ``fit(distributed=...)`` means: None → the enclosing ``data_parallel`` block, if
    any; False → one process; True → that block or ``MPI.COMM_WORLD``; a DataParallel → it."""
    if distributed is None:
        return _stack[-1] if _stack else None
    if distributed is False:
        return None
    if distributed is True:
        return _stack[-1] if _stack else _world_dp()
    if isinstance(distributed, DataParallel):
        return distributed
    raise TypeError(f"distributed must be None, True, False or an nnx.distributed.DataParallel; "
                    f"got {distributed!r}")
