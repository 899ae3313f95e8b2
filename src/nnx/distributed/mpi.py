"""Data-parallel training over MPI: every rank trains on its shard of each global batch.

    # train.py — run with:  mpiexec -n 4 python train.py
    model = nnx.MLP([64, 128, 10], seed=0)
    history = model.fit(X, y, loss="softmax_cross_entropy", optimizer="adam",
                        epochs=10, batch_size=256, seed=0, distributed=True)
    if nnx.distributed.is_root():
        nnx.save(model, "model.safetensors")          # only rank 0 writes

or, for every ``fit`` inside a block: ``with nnx.distributed.data_parallel(): ...``
(:mod:`nnx.distributed.job`: the ranks, the block, and what ``distributed=`` means).

What each rank does, per global batch of rows [a, b) (n = b − a):

1. takes its contiguous shard of n_r ≈ n / N rows (every rank holds the same X, y and
   shuffles them with the same seed, so the global batches are those of one process);
2. runs forward, loss and backward on the shard: g_r = ∇ (mean loss over the shard);
3. packs every layer's gradient and the loss into one flat buffer (or a few buckets,
   :mod:`nnx.distributed.buckets`) scaled by n_r / n, and sums it over the ranks with one
   all-reduce: Σ_r (n_r / n) g_r is exactly the gradient of the global batch's mean
   loss, even when N does not divide n;
4. steps the optimizer on the summed gradient — the same update on every rank, so the
   weights stay identical (they are broadcast from rank 0 once, when ``fit`` starts).

Failures: once a multi-rank ``fit`` has started, an uncaught exception on any rank
prints its traceback and calls ``MPI_Abort``, which stops every rank at once (an
exception leaving a ``data_parallel`` block does so even if a caller catches it later;
an exception every rank catches, such as a divergence all ranks see, stops nothing).
A rank killed outright is noticed by the launcher (MPICH's ``mpiexec`` then kills the
others). A rank that hangs, or leaves the training loop while the others wait, is
caught by a watchdog thread: a rank that waits longer than ``timeout`` seconds
(``NNX_DISTRIBUTED_TIMEOUT``, default 300) in one collective call aborts the job with
a message saying so.

Cost: each rank holds the whole X, y (and permutes it every epoch); every rank
evaluates ``validation_data`` in full. Only the minibatch arithmetic is divided.

Device buffers: :mod:`nnx.backends._comm` chooses how the buffer travels (in-place MPI
for NumPy and CPU PyTorch, NCCL on the device for CuPy, a host copy for JAX).
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from typing import Any

from . import failsafe as _failsafe
from .buckets import FlatGradientBuckets, GradientBuckets, layout_for

Array = Any


__all__ = ["DataParallel", "DEFAULT_TIMEOUT", "ABORT_GRACE_S"]

#: seconds a rank may wait in one collective call before the watchdog aborts the job.
DEFAULT_TIMEOUT = 300.0


def _mpi() -> Any:
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ImportError(f"nnx.distributed needs mpi4py and an MPI library ({exc}); "
                          "install both (mpi4py and the mpich wheel) with: pip install "
                          "'nnx-fundamentals[mpi]' (from a checkout of nnx: pip install -e "
                          "'.[mpi]')") from None
    return MPI

def _env_timeout() -> float:
    text = os.environ.get("NNX_DISTRIBUTED_TIMEOUT", "").strip()
    if not text:
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"NNX_DISTRIBUTED_TIMEOUT must be a number of seconds; "
                         f"got {text!r}") from None
    if not value > 0:
        raise ValueError(f"NNX_DISTRIBUTED_TIMEOUT must be positive; got {text!r}")
    return value


#: seconds between printing why a job aborts and ``MPI_Abort``, for the launcher to forward it.
ABORT_GRACE_S = 0.2


class DataParallel:
    """One MPI communicator's worth of data-parallel training (see the module docstring).

    Args:
        comm: an ``mpi4py.MPI.Comm``; ``MPI.COMM_WORLD`` when None.
        timeout: seconds one rank may wait in a collective before the job is aborted;
            ``NNX_DISTRIBUTED_TIMEOUT`` or 300 when None.
        bucket_bytes: bound on one all-reduce buffer; None sends all gradients at once.
        transport: ``"auto"``, ``"mpi"``, ``"nccl"``, ``"cuda-mpi"`` or ``"host"``
            (:mod:`nnx.backends._comm`).

    ``comm_seconds`` / ``pack_seconds`` accumulate the time spent in the all-reduce
    (waiting for slower ranks included) and in packing, for benchmarks.
    """

    def __init__(self, comm: Any = None, *, timeout: float | None = None,
                 bucket_bytes: int | None = None, transport: str = "auto") -> None:
        from ..backends import _comm

        if transport not in _comm.TRANSPORTS:
            raise ValueError(f"unknown transport {transport!r}; choose one of "
                             f"{', '.join(_comm.TRANSPORTS)}")
        self.comm = _mpi().COMM_WORLD if comm is None else comm
        self.rank: int = self.comm.Get_rank()
        self.size: int = self.comm.Get_size()
        if timeout is not None and not (isinstance(timeout, (int, float)) and timeout > 0):
            raise ValueError(f"timeout must be a positive number of seconds; got {timeout!r}")
        self.timeout = float(timeout) if timeout is not None else _env_timeout()
        self.bucket_bytes = bucket_bytes
        self.transport = transport
        self._reducers: dict[int, Any] = {}
        self._layout: GradientBuckets | FlatGradientBuckets | None = None
        self._cores_shared = False
        self._watchdog = _failsafe.Watchdog(self) if self.size > 1 else None
        self.comm_seconds = 0.0
        self.pack_seconds = 0.0
        self.steps = 0

    def __repr__(self) -> str:
        return (f"DataParallel(rank={self.rank}, size={self.size}, timeout={self.timeout:g}, "
                f"transport={self.transport!r})")

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    # -- failure handling --------------------------------------------------------------------
    def abort(self, message: str, code: int = 1, *, then: Any = None) -> None:
        """Print ``message`` to stderr (then whatever ``then()`` prints: a traceback, say)
        and stop every rank of the job (``MPI_Abort``).

        The headline goes first and the launcher gets ``ABORT_GRACE_S`` to forward it: an
        abort tears the job down at once, and output still in a pipe can be lost with it
        (seen with MPICH's mpiexec, which cut a traceback short)."""
        sys.stderr.write(f"\nnnx.distributed: {message}; aborting all {self.size} ranks\n")
        sys.stderr.flush()
        if then is not None:
            then()
            sys.stderr.flush()
        time.sleep(ABORT_GRACE_S)
        self.comm.Abort(code)

    def _collective(self, what: str, fn: Any, *args: Any) -> Any:
        wd = self._watchdog
        if wd is None:
            return fn(*args)
        wd.arm(what)
        try:
            return fn(*args)
        finally:
            wd.disarm()

    # -- the training-loop hooks (nnx.extensions.DataParallelHooks, called by nnx.trainer) --
    def start(self, model: Any, *, n: int, n_batches: int, seed: Any) -> Any:
        """Before the first step: check that every rank holds the same problem, copy rank 0's
        weights to all ranks, build the gradient buckets; returns the seed all ranks use."""
        if self.size > 1:
            _failsafe.install_excepthook(self)
        dense = model.dense_layers
        backend = dense[0].backend
        shapes = [(name, tuple(int(d) for d in p.shape)) for name, p in model.parameters().items()]
        mine = (n, n_batches, dense[0].dtype, backend.name, shapes)
        every = self._collective("checking that all ranks train the same problem",
                                 self.comm.allgather, mine)
        if any(other != every[0] for other in every):
            lines = "\n".join(f"  rank {r}: {n_r} rows, {b_r} batches, {d_r}, {be_r}, {s_r}"
                              for r, (n_r, b_r, d_r, be_r, s_r) in enumerate(every))
            raise ValueError("nnx.distributed: the ranks disagree on the data or the model; "
                             "every rank must pass the same X, y, batch_size and model:\n"
                             + lines)
        self._share_cores(backend)
        self._broadcast_parameters(model)
        if seed is None and self.rank == 0:
            seed = secrets.randbits(128)
        seed = self._collective("agreeing on the shuffling seed", self.comm.bcast, seed, 0)
        self._layout = layout_for(model, bucket_bytes=self.bucket_bytes)
        key = id(backend)
        if key not in self._reducers:
            from ..backends import _comm

            self._reducers[key] = _comm.all_reducer(backend, self.comm, self.transport)
        self._reduce = self._reducers[key]
        return seed

    def _share_cores(self, backend: Any) -> None:
        """Once: with k ranks on a node of c cores, cap each rank's CPU thread pools at c // k
        unless the user sized them (OMP_NUM_THREADS, ...), as torchrun does."""
        if self._cores_shared:
            return
        self._cores_shared = True
        from ..backends import _comm

        if self.size == 1:
            return
        local = self._collective("finding the ranks on this node", self.comm.Split_type,
                                 _mpi().COMM_TYPE_SHARED)
        ranks_here = local.Get_size()
        local.Free()
        if ranks_here < 2 or any(v in os.environ for v in _comm.THREAD_VARS):
            return
        if backend.name not in ("numpy", "torch", "array_api_strict"):
            return
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
            os.cpu_count() or 1)
        threads = max(1, cores // ranks_here)
        capped = _comm.limit_host_threads(backend, threads)
        if capped and self.rank == 0:
            sys.stderr.write(f"nnx.distributed: {ranks_here} ranks share {cores} cores on this "
                             f"node: {', '.join(sorted(set(capped)))} threads per rank capped "
                             f"at {threads} (set OMP_NUM_THREADS to choose)\n")

    def _broadcast_parameters(self, model: Any) -> None:
        for layer in model.dense_layers:
            backend = layer.backend
            for name in layer.param_names:
                p = getattr(layer, name)
                if p is None:
                    continue
                host = backend.to_numpy(p)
                self._collective("broadcasting rank 0's weights", self.comm.Bcast, host, 0)
                if self.rank != 0:
                    setattr(layer, name, backend.from_numpy(host))

    def shard(self, a: int, b: int) -> tuple[int, int]:
        """This rank's rows [lo, hi) of the global batch [a, b): near-equal contiguous parts,
        the first (b − a) mod N ranks one row longer (possibly empty for tiny batches)."""
        q, rem = divmod(b - a, self.size)
        lo = a + self.rank * q + min(self.rank, rem)
        return lo, lo + q + (1 if self.rank < rem else 0)

    def all_reduce(self, value: Array | None, n_local: int, n_global: int) -> Array:
        """Replace every gradient by the global batch's and return the global batch's loss.

        ``value`` is the loss over this rank's ``n_local`` rows (None when it has none);
        gradients are weighted by ``n_local / n_global`` and summed over the ranks.
        """
        layout = self._layout
        if layout is None:
            raise RuntimeError("DataParallel.all_reduce before start(): call start() first")
        weight = n_local / n_global
        loss = None
        for k in range(len(layout.buckets)):
            t0 = time.perf_counter()
            buf = layout.pack(k, weight=weight, loss=value)
            t1 = time.perf_counter()
            buf = self._collective("the gradient all-reduce", self._reduce, buf)
            t2 = time.perf_counter()
            out = layout.unpack(k, buf)
            loss = out if out is not None else loss
            self.pack_seconds += (t1 - t0) + (time.perf_counter() - t2)
            self.comm_seconds += t2 - t1
        self.steps += 1
        return loss

    def reset_stats(self) -> None:
        self.comm_seconds = self.pack_seconds = 0.0
        self.steps = 0
