"""Summing a flat device buffer over MPI ranks: the one place that knows where buffers live.

mpi4py moves bytes; where those bytes are is the array library's business, so the
choice of transport lives here, beside the adapters::

    reducer = all_reducer(backend, comm, transport="auto")
    buf = reducer(buf)          # the element-wise sum over every rank of comm

Transports:

``"mpi"``       host arrays handed to ``MPI_Allreduce`` in place, no copy: NumPy, and
                PyTorch CPU tensors (through their shared-memory ``.numpy()`` view).
``"nccl"``      CuPy: NCCL's all-reduce on the device, on the current stream, no host
                copy (``cupy.cuda.nccl``; one communicator per job, its id broadcast
                once over MPI). The call waits for the stream so a hang is seen here.
``"cuda-mpi"``  CuPy or CUDA PyTorch: the device pointer handed to a CUDA-aware MPI
                (``__cuda_array_interface__`` / DLPack). Only when the MPI library is
                built with CUDA support — the PyPI ``mpich`` wheel is not — so never
                chosen by ``"auto"`` unless ``NNX_CUDA_AWARE_MPI=1``.
``"host"``      any backend: copy to the host, all-reduce there, copy back (JAX, whose
                arrays are immutable; array-api-strict). The reference path.

``"auto"`` picks the first that applies: mpi, nccl, cuda-mpi (if declared), host.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["TRANSPORTS", "choose_transport", "all_reducer"]

TRANSPORTS = ("auto", "mpi", "nccl", "cuda-mpi", "host")


def _cuda_aware_declared() -> bool:
    return os.environ.get("NNX_CUDA_AWARE_MPI", "").strip().lower() in ("1", "true", "yes")


def _torch_on_cuda(backend: Any) -> bool:
    return backend.name == "torch" and getattr(backend.device, "type", "cpu") == "cuda"


def nccl_module() -> Any | None:
    """``cupy.cuda.nccl`` when CuPy was built with NCCL and can load it, else None."""
    try:
        from cupy.cuda import nccl
    except Exception:  # ImportError, or a missing libnccl
        return None
    return nccl if getattr(nccl, "available", True) else None


def choose_transport(backend: Any, transport: str = "auto") -> str:
    """The transport :func:`all_reducer` uses for ``backend`` (see the module docstring).

    Raises ValueError for an unknown name or one that cannot carry this backend's arrays.
    """
    if transport not in TRANSPORTS:
        raise ValueError(f"unknown transport {transport!r}; choose one of {', '.join(TRANSPORTS)}")
    name = backend.name
    host_mpi = name == "numpy" or (name == "torch" and not _torch_on_cuda(backend))
    on_cuda = name == "cupy" or _torch_on_cuda(backend)
    if transport == "auto":
        if host_mpi:
            return "mpi"
        if name == "cupy" and nccl_module() is not None:
            return "nccl"
        if on_cuda and _cuda_aware_declared():
            return "cuda-mpi"
        if on_cuda:
            warnings.warn(f"nnx.distributed: no NCCL for {name} and no CUDA-aware MPI declared "
                          "(NNX_CUDA_AWARE_MPI=1); gradients go through host memory",
                          RuntimeWarning, stacklevel=3)
        return "host"
    if transport == "mpi" and not host_mpi:
        raise ValueError(f"transport 'mpi' needs host arrays (numpy, torch on cpu); the "
                         f"{name} backend on {backend.device} needs 'nccl', 'cuda-mpi' or 'host'")
    if transport == "nccl" and name != "cupy":
        raise ValueError(f"transport 'nccl' is for the cupy backend; got {name!r}")
    if transport == "nccl" and nccl_module() is None:
        raise ValueError("transport 'nccl': this CuPy has no usable NCCL (cupy.cuda.nccl); "
                         "install NCCL for your CUDA version or use transport='cuda-mpi'/'host'")
    if transport == "cuda-mpi" and not on_cuda:
        raise ValueError(f"transport 'cuda-mpi' is for arrays on a CUDA device; got {name!r}")
    return transport


def all_reducer(backend: Any, comm: Any, transport: str = "auto") -> Callable[[Any], Any]:
    """A function ``buf -> sum of buf over comm's ranks`` for flat arrays of ``backend``.

    The result is ``buf`` itself, reduced in place, except on the ``"host"`` transport
    (a new array on the device). ``comm`` is an ``mpi4py.MPI.Comm``.
    """
    from mpi4py import MPI

    kind = choose_transport(backend, transport)
    SUM, IN_PLACE = MPI.SUM, MPI.IN_PLACE
    if kind == "mpi":
        if backend.name == "torch":
            def reduce_torch_cpu(buf: Any) -> Any:
                comm.Allreduce(IN_PLACE, buf.numpy(), op=SUM)   # shares the tensor's memory
                return buf
            return reduce_torch_cpu

        def reduce_host(buf: Any) -> Any:
            comm.Allreduce(IN_PLACE, buf, op=SUM)
            return buf
        return reduce_host
    if kind == "cuda-mpi":
        def reduce_cuda_aware(buf: Any) -> Any:
            backend.synchronize()          # MPI does not know the library's stream
            comm.Allreduce(IN_PLACE, buf, op=SUM)
            return buf
        return reduce_cuda_aware
    if kind == "nccl":
        return _nccl_reducer(backend, comm)

    def reduce_through_host(buf: Any) -> Any:
        host = np.ascontiguousarray(backend.to_numpy(buf))
        comm.Allreduce(IN_PLACE, host, op=SUM)
        return backend.from_numpy(host)
    return reduce_through_host


def nccl_dtype(nccl: Any, dtype: Any) -> Any:
    """The NCCL data type constant for a float32/float64 array dtype."""
    name = np.dtype(dtype).name
    table = {"float32": nccl.NCCL_FLOAT32, "float64": nccl.NCCL_FLOAT64}
    if name not in table:
        raise ValueError(f"nnx.distributed reduces float32 or float64 gradients; got {name}")
    return table[name]


def _nccl_reducer(backend: Any, comm: Any) -> Callable[[Any], Any]:
    import cupy

    nccl = nccl_module()
    rank, size = comm.Get_rank(), comm.Get_size()
    uid = nccl.get_unique_id() if rank == 0 else None
    uid = comm.bcast(uid, root=0)
    with backend.device:
        ncomm = nccl.NcclCommunicator(size, uid, rank)

    def reduce_nccl(buf: Any) -> Any:
        stream = cupy.cuda.get_current_stream()
        ncomm.allReduce(buf.data.ptr, buf.data.ptr, buf.size, nccl_dtype(nccl, buf.dtype),
                        nccl.NCCL_SUM, stream.ptr)
        stream.synchronize()  # so a rank that never joins is caught by the watchdog here
        return buf
    reduce_nccl.communicator = ncomm  # type: ignore[attr-defined]
    return reduce_nccl


#: the environment variables through which a user sizes the CPU thread pools.
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def limit_host_threads(backend: Any, threads: int) -> list[str]:
    """Cap this process's CPU thread pools at ``threads``; returns the pools capped.

    BLAS and OpenMP pools through threadpoolctl (when installed), and PyTorch's intra-op
    pool on the torch backend. Several ranks on one node would otherwise each start one
    thread per core, and spinning BLAS threads on oversubscribed cores are many times
    slower than one thread each.
    """
    capped = []
    try:
        import threadpoolctl
    except ImportError:
        threadpoolctl = None
    if threadpoolctl is not None:
        threadpoolctl.threadpool_limits(threads)
        capped += [info["internal_api"] for info in threadpoolctl.threadpool_info()]
    if backend.name == "torch":
        import torch

        torch.set_num_threads(threads)
        capped.append("torch")
    return capped
