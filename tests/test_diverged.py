"""fit never returns non-finite weights: a parameter check after every epoch, not per step."""

from __future__ import annotations

import numpy as np
import pytest

import nnx
from nnx import trainer as trainer_module
from nnx.callbacks import LambdaCallback
from nnx.training import TrainingDivergedError

pytestmark = pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning",
                                        "ignore:invalid:RuntimeWarning")

RNG = np.random.default_rng(0)
X = RNG.standard_normal((16, 3))
Y = 1e3 * RNG.standard_normal((16, 2))       # large targets: large gradients


def _finite(model):
    return all(np.isfinite(nnx.to_numpy(p)).all() for p in model.parameters().values())


def test_weights_overflowing_on_the_last_step_raise(backend):
    """One full batch, one epoch: the loss is computed before the step, so it is finite
    while the step itself sends the weights to inf. Without the check fit returned."""
    model = nnx.MLP([3, 8, 2], seed=0)
    with pytest.raises(TrainingDivergedError,
                       match=r"parameters became NaN or infinite during epoch 1 .*0\.W.*"
                             r"loss was still finite.*smaller learning rate than 1e\+37"):
        model.fit(X, Y, loss="mse", optimizer=nnx.optim.SGD(lr=1e37), epochs=1,
                  progress=False)
    assert not _finite(model)                     # the model keeps the diverged weights


def test_divergence_mid_training_names_its_epoch(backend):
    """A rate raised at the start of epoch 3 (counted from 1) blows the weights up there."""
    boost = LambdaCallback(on_epoch_begin=lambda e, logs: setattr(boost.optimizer, "lr", 1e37)
                           if e == 2 else None)
    seen = []
    model = nnx.MLP([3, 8, 2], seed=0)
    with pytest.raises(TrainingDivergedError, match="during epoch 3 "):
        model.fit(X, Y, loss="mse", optimizer=nnx.optim.SGD(lr=1e-6), epochs=6, progress=False,
                  callbacks=[boost, LambdaCallback(on_epoch_end=lambda e, logs: seen.append(e))])
    assert seen == [0, 1]                         # no callback saw the broken epoch


@pytest.mark.parametrize("lr", [1e-3, 1.0, 1e3, 1e8, 1e20, 1e37])
@pytest.mark.parametrize("batch_size", [None, 5])
def test_fit_either_returns_finite_weights_or_raises(lr, batch_size):
    model = nnx.MLP([3, 8, 2], seed=0)
    try:
        history = model.fit(X, Y, loss="mse", optimizer=nnx.optim.SGD(lr=lr), epochs=4,
                            batch_size=batch_size, seed=0, progress=False)
    except TrainingDivergedError:
        return
    assert _finite(model) and all(np.isfinite(history.loss))


def test_inputs_with_inf_never_return_broken_weights():
    """An inf input that a ReLU zeroes keeps the loss finite while dW = δᵀX turns NaN
    (0 · inf). Whether the inputs are refused up front (ValueError) or the weights are
    caught after the epoch, fit does not return."""
    Xi = np.abs(RNG.standard_normal((8, 2)))
    Xi[-1, 0] = np.inf
    model = nnx.Sequential(nnx.Dense(2, 1, init="zeros"), nnx.ReLU(), nnx.Dense(1, 1))
    model.layers[0].W = -np.ones((1, 2))           # the inf row lands at -inf: ReLU gives 0
    with pytest.raises((TrainingDivergedError, ValueError)):
        model.fit(Xi, np.ones(8), loss="mse", optimizer="sgd", epochs=1, batch_size=8,
                  shuffle=False, progress=False)


def test_huge_but_finite_weights_are_not_divergence(backend):
    """Weights near the float32 limit on an input column that is always 0: their sum
    overflows (the one-reduction check says NaN) but each is finite, the loss too."""
    Xz = X.copy()
    Xz[:, 0] = 0.0
    model = nnx.MLP([3, 8, 2], activation="tanh", seed=0)
    W = nnx.to_numpy(model.layers[0].W).copy()
    W[:, 0] = 3e38
    model.layers[0].W = nnx.asarray(W)
    history = model.fit(Xz, Y / 1e3, loss="mse", optimizer="sgd", epochs=2, batch_size=4,
                        seed=0, progress=False)
    assert _finite(model) and all(np.isfinite(history.loss))
    assert np.all(nnx.to_numpy(model.layers[0].W)[:, 0] == np.float32(3e38))


def test_the_check_runs_once_per_epoch(monkeypatch):
    calls = []
    real = trainer_module.Trainer._parameter_sum

    def counting(self):
        calls.append(1)
        return real(self)

    monkeypatch.setattr(trainer_module.Trainer, "_parameter_sum", counting)
    nnx.MLP([3, 4, 2], seed=0).fit(X, Y / 1e3, loss="mse", optimizer="sgd", epochs=3, batch_size=2,
                                   progress=False)
    assert len(calls) == 3                        # 8 steps per epoch, one check


def test_the_check_sums_the_flat_buffer_where_there_is_one(backend):
    model = nnx.MLP([3, 4, 2], seed=0)
    t = trainer_module.Trainer(model, X, Y, loss="mse", optimizer="sgd")
    t.epoch()
    if model.flat is not None:
        assert model.flat.ready()
    expected = sum(np.sum(nnx.to_numpy(p), dtype=np.float64)
                   for p in model.parameters().values())
    assert float(t._parameter_sum()) == pytest.approx(expected, rel=1e-5)
