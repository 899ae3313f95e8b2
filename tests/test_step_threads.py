"""fit's BLAS thread policy on NumPy (Backend.step_threads, backends/numpy.py).

Steps whose every matrix product has at most ONE_THREAD_MACS multiply-adds run with one
BLAS thread; larger ones keep the configured count; the setting is restored after each
epoch, also when the epoch raises. Backends without a host BLAS pool change nothing.
"""

from __future__ import annotations

import numpy as np
import pytest
from nnx.backends import numpy as numpy_adapter

import nnx
from nnx import trainer

threadpoolctl = pytest.importorskip("threadpoolctl")


def _blas_threads():
    """The thread counts, now, of the BLAS pools nnx steers: those loaded with NumPy (a
    BLAS that another library brings in later, SciPy's say, is not NumPy's products')."""
    steered = {p["filepath"] for p in numpy_adapter._blas_controller().info()}
    return [p["num_threads"] for p in threadpoolctl.threadpool_info()
            if p["user_api"] == "blas" and p["filepath"] in steered]


@pytest.fixture
def two_blas_threads():
    """The BLAS pools at two threads for the test (as on the 2-core CI machine)."""
    if not _blas_threads():
        pytest.skip("no BLAS thread pool that threadpoolctl can see")
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        yield


def _seen_in_epochs(monkeypatch):
    seen = []
    original = trainer.Trainer._epoch

    def spy(self):
        seen.append((self.step_macs, _blas_threads()))
        return original(self)

    monkeypatch.setattr(trainer.Trainer, "_epoch", spy)
    return seen


def _fit(sizes, batch, n=None, **kw):
    rng = np.random.default_rng(0)
    n = n or batch
    X = rng.standard_normal((n, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], n)
    model = nnx.MLP(sizes, seed=0)
    return model.fit(X, y, loss="softmax_cross_entropy", optimizer="sgd", epochs=2,
                     batch_size=batch, progress=False, **kw)


def test_a_small_network_trains_with_one_thread_and_gets_its_threads_back(
        monkeypatch, two_blas_threads):
    seen = _seen_in_epochs(monkeypatch)
    _fit([64, 256, 128, 10], 32, n=64)
    assert seen == [(32 * 256 * 128, [1] * len(_blas_threads()))] * 2   # its largest product
    assert _blas_threads() == [2] * len(_blas_threads())


@pytest.mark.parametrize("over", [0, 1])
def test_the_bound_is_the_largest_product(monkeypatch, two_blas_threads, over):
    """A step whose largest product is ONE_THREAD_MACS (+1) multiply-adds."""
    monkeypatch.setattr(numpy_adapter, "ONE_THREAD_MACS", 4 * 8 * 16 - over)
    seen = _seen_in_epochs(monkeypatch)
    _fit([8, 16, 3], 4)
    want = 2 if over else 1
    assert seen[0] == (4 * 8 * 16, [want] * len(_blas_threads()))


def test_the_threads_come_back_when_an_epoch_raises(monkeypatch, two_blas_threads):
    def boom(self):
        assert _blas_threads()[0] == 1
        raise RuntimeError("boom")

    monkeypatch.setattr(trainer.Trainer, "_epoch", boom)
    with pytest.raises(RuntimeError, match="boom"):
        _fit([4, 5, 2], 4)
    assert _blas_threads() == [2] * len(_blas_threads())


def test_training_gives_the_same_numbers_with_either_thread_count(monkeypatch, rng):
    """The policy changes speed, and the numbers at most by rounding: a BLAS may split a
    product's sums differently over two threads."""
    X = rng.standard_normal((64, 16)).astype(np.float32)
    y = rng.integers(0, 4, 64)
    params = []
    for bound in (1 << 25, -1):         # the policy on; off (every step keeps its threads)
        monkeypatch.setattr(numpy_adapter, "ONE_THREAD_MACS", bound)
        model = nnx.MLP([16, 32, 4], seed=1)
        model.fit(X, y, loss="softmax_cross_entropy", optimizer="adam", epochs=3,
                  batch_size=16, seed=0, progress=False)
        params.append(np.concatenate([np.ravel(nnx.to_numpy(a))
                                      for a in model.parameters().values()]))
    np.testing.assert_allclose(*params, rtol=1e-5, atol=1e-6)


def test_only_numpy_limits_the_blas_threads(backend, two_blas_threads):
    outside = _blas_threads()
    with backend.step_threads(1):
        inside = _blas_threads()
    assert inside == ([1] * len(outside) if backend.name == "numpy" else outside)
    assert _blas_threads() == outside
