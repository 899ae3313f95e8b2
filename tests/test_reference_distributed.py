"""Data-parallel weighting, in one process: N ranks as N threads summing their buffers.

Each rank takes its shard of a global batch, runs forward and backward on it, and
:meth:`DataParallel.all_reduce` weights its gradients and loss by n_r / n before the sum.
Whatever N — one rank, shards of unequal length, empty shards — every rank must end with
the gradient and loss of the whole batch in one process, here written out in NumPy float64.
(``tests/test_distributed.py`` runs real ``mpiexec`` jobs; this needs no MPI.)
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from fake_comm import FakeComm

import nnx
from nnx.distributed import DataParallel
from nnx.distributed.buckets import layout_for


class _World:
    """An all-reduce over threads: every rank's buffer, summed in rank order."""

    def __init__(self, size: int, backend) -> None:
        self.size, self.backend = size, backend
        self.barrier = threading.Barrier(size, timeout=60)
        self.parts: list = [None] * size

    def reducer(self, rank: int):
        def reduce(buf):
            self.parts[rank] = self.backend.to_numpy(buf).astype(np.float64)
            self.barrier.wait()
            total = sum(self.parts[1:], self.parts[0].copy())
            self.barrier.wait()
            return self.backend.from_numpy(total.astype(self.backend.to_numpy(buf).dtype))
        return reduce


def _reference(params, x, y, loss):
    """Loss and gradients (W₀, b₀, W₁, b₁) of tanh MLP over all rows of x, NumPy float64."""
    W0, b0, W1, b1 = params
    h = np.tanh(x @ W0.T + b0)
    z = h @ W1.T + b1
    if loss == "mse":
        value = np.mean((z - y) ** 2)
        g = 2 * (z - y) / z.size
    else:
        e = np.exp(z - z.max(1, keepdims=True))
        p = e / e.sum(1, keepdims=True)
        value = -np.mean(np.log(p[np.arange(len(y)), y]))
        g = (p - np.eye(z.shape[1])[y]) / len(y)
    dz = (g @ W1) * (1 - h * h)
    return value, [dz.T @ x, dz.sum(0), g.T @ h, g.sum(0)]


@pytest.mark.parametrize("loss", ["mse", "softmax_cross_entropy"])
@pytest.mark.parametrize("ranks, batch", [(1, (0, 7)), (2, (3, 10)), (3, (0, 7)), (3, (5, 7)),
                                          (5, (1, 8))],
                         ids=["1-rank", "2-ranks-4+3", "3-ranks-3+2+2", "3-ranks-1+1+0",
                              "5-ranks-2+2+1+1+1"])
def test_weighted_sum_over_ranks_is_the_full_batch_gradient(backend, loss, ranks, batch):
    rng = np.random.default_rng(ranks)
    X = rng.standard_normal((12, 4))
    Y = rng.standard_normal((12, 3)) if loss == "mse" else rng.integers(0, 3, 12)
    a, b = batch
    world = _World(ranks, backend)
    models = [nnx.MLP([4, 5, 3], activation="tanh", dtype="float64", seed=9)
              for _ in range(ranks)]
    results: list = [None] * ranks
    errors: list = []

    def rank_main(r: int) -> None:
        try:
            model, dp = models[r], DataParallel(FakeComm(r, ranks))
            dp._watchdog = None                     # no MPI job to abort from a thread
            dp._layout = layout_for(model)
            dp._reduce = world.reducer(r)
            lo, hi = dp.shard(a, b)
            value = None
            if hi > lo:
                value, g = getattr(nnx.losses, loss)(model.forward(backend.from_numpy(X[lo:hi])),
                                                     backend.from_numpy(Y[lo:hi]))
                model.backward(g, input_grad=False)
            results[r] = (hi - lo, dp.all_reduce(value, hi - lo, b - a))
        except BaseException as exc:  # noqa: BLE001 - reported below, in the test's thread
            errors.append(exc)
            world.barrier.abort()

    threads = [threading.Thread(target=rank_main, args=(r,)) for r in range(ranks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    assert sum(n for n, _ in results) == b - a       # the shards tile the batch
    params = [nnx.to_numpy(p) for p in models[0].parameters().values()]
    want_loss, want = _reference(params, X[a:b], Y[a:b], loss)
    for r, model in enumerate(models):
        assert float(results[r][1]) == pytest.approx(want_loss, rel=1e-12), r
        got = [nnx.to_numpy(getattr(d, g)) for d in model.dense_layers for g in ("dW", "db")]
        for k, (mine, ref) in enumerate(zip(got, want, strict=True)):
            np.testing.assert_allclose(mine, ref, rtol=1e-11, atol=1e-15,
                                       err_msg=f"rank {r}, gradient {k}")
