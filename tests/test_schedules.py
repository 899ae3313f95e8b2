"""Learning-rate schedules: the same rates as torch.optim.lr_scheduler, applied on both paths."""

from __future__ import annotations

import math

import numpy as np
import pytest

import nnx
from nnx.callbacks import LambdaCallback
from nnx.schedules import CosineAnnealing, LearningRateScheduler, ReduceLROnPlateau, StepLR

torch = pytest.importorskip("torch")
sched = torch.optim.lr_scheduler

X = np.random.default_rng(1).standard_normal((8, 3))
Y = np.stack([np.cos(X[:, 0]), X[:, 1] - X[:, 2]], axis=1)


def _torch_rates(make, epochs, lr, metrics=None):
    """The rate of each epoch under a torch scheduler stepped once after every epoch."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    scheduler = make(opt)
    rates = []
    for e in range(epochs):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step() if metrics is None else scheduler.step(metrics[e])
    return rates


def _nnx_rates(callback, epochs, lr, metrics=None):
    script = [] if metrics is None else [
        LambdaCallback(on_epoch_end=lambda e, logs: logs.__setitem__("val_loss", metrics[e]))]
    model = nnx.MLP([3, 4, 2], activation="tanh", seed=0)
    history = model.fit(X, Y, loss="mse", optimizer=nnx.optim.SGD(lr=lr), epochs=epochs,
                        batch_size=4, seed=0, progress=False, callbacks=[*script, callback],
                        validation_data=(X[:2], Y[:2]))
    return history.lr


@pytest.mark.parametrize("step_size, gamma", [(1, 0.5), (3, 0.1), (4, 0.9)])
def test_step_lr_matches_torch(step_size, gamma):
    ours = _nnx_rates(StepLR(step_size, gamma), 13, 0.2)
    theirs = _torch_rates(lambda o: sched.StepLR(o, step_size, gamma), 13, 0.2)
    np.testing.assert_allclose(ours, theirs, rtol=1e-13, atol=0)


@pytest.mark.parametrize("T_max, eta_min", [(10, 0.0), (7, 0.01), (1, 0.05)])
def test_cosine_annealing_matches_torch(T_max, eta_min):
    epochs = 3 * T_max + 2                 # past T_max the cosine rises again, as torch's
    ours = _nnx_rates(CosineAnnealing(T_max, eta_min), epochs, 0.1)
    theirs = _torch_rates(lambda o: sched.CosineAnnealingLR(o, T_max, eta_min), epochs, 0.1)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)
    closed = [eta_min + (0.1 - eta_min) * (1 + math.cos(math.pi * e / T_max)) / 2
              for e in range(epochs)]
    np.testing.assert_allclose(ours, closed, rtol=1e-15, atol=0)


PLATEAU = [1.0, 0.9, 0.9, 0.91, 0.9, 0.8, 0.8, 0.8, 0.8, 0.7999, 0.81, 0.85, 0.6, 0.6, 0.6,
           0.6, 0.6, 0.6, 0.6, 0.6, 0.59995, 0.6, 0.6, 0.5, 0.5, 0.5]


@pytest.mark.parametrize("kwargs", [
    dict(patience=1),
    dict(patience=2, factor=0.5),
    dict(patience=0, factor=0.5, cooldown=2),
    dict(patience=1, threshold=0.02, threshold_mode="abs"),
    dict(patience=1, threshold=0.0),
    dict(patience=0, factor=0.3, min_lr=0.01),
    dict(patience=0, factor=0.99999999, eps=1e-8),           # changes below eps are skipped
    dict(patience=1, mode="max"),
    dict(patience=1, mode="max", threshold=0.05, threshold_mode="abs", cooldown=1),
])
def test_reduce_lr_on_plateau_matches_torch(kwargs):
    n = len(PLATEAU)
    ours = _nnx_rates(ReduceLROnPlateau(**kwargs), n, 0.1, metrics=PLATEAU)
    theirs = _torch_rates(lambda o: sched.ReduceLROnPlateau(o, **kwargs), n, 0.1, PLATEAU)
    assert ours == theirs
    assert len(set(theirs)) > 1 or kwargs.get("eps")          # the case does reduce


def test_rates_reach_both_optimizer_paths(backend):
    """Epoch 2 at half the rate equals a second fit at half the rate: SGD and Adam, on the
    flat buffer (numpy, torch) and per array (jax, array-api-strict)."""
    for make in (lambda lr: nnx.optim.SGD(lr=lr, momentum=0.9), lambda lr: nnx.optim.Adam(lr)):
        kw = dict(loss="mse", batch_size=3, shuffle=False, progress=False)
        a = nnx.MLP([3, 4, 2], seed=0)
        a.fit(X, Y, optimizer=make(0.05), epochs=2, callbacks=[StepLR(1, 0.5)], **kw)
        b = nnx.MLP([3, 4, 2], seed=0)
        opt = make(0.05)
        b.fit(X, Y, optimizer=opt, epochs=1, **kw)
        opt.lr = 0.025
        b.fit(X, Y, optimizer=opt, epochs=1, **kw)
        c = nnx.MLP([3, 4, 2], seed=0)                      # no schedule: other weights
        c.fit(X, Y, optimizer=make(0.05), epochs=2, **kw)
        for name, p in a.parameters().items():
            assert np.array_equal(nnx.to_numpy(p), nnx.to_numpy(b.parameters()[name])), name
            assert not np.array_equal(nnx.to_numpy(p), nnx.to_numpy(c.parameters()[name]))


def test_a_zero_rate_freezes_the_weights(backend):
    model = nnx.MLP([3, 4, 2], seed=0)
    seen = []
    freeze = LearningRateScheduler(lambda epoch, lr: lr if epoch == 0 else 0.0)
    keep = LambdaCallback(on_epoch_end=lambda e, logs: seen.append(
        nnx.to_numpy(model.parameters()["0.W"]).copy()))
    history = model.fit(X, Y, loss="mse", optimizer="sgd", epochs=3, batch_size=3, seed=0,
                        progress=False, callbacks=[freeze, keep])
    assert history.lr == [0.01, 0.0, 0.0]
    assert not np.array_equal(seen[0], nnx.to_numpy(nnx.MLP([3, 4, 2], seed=0).layers[0].W))
    assert np.array_equal(seen[0], seen[2])


def test_each_fit_starts_the_schedule_from_the_optimizer_rate():
    opt = nnx.optim.SGD(lr=0.1)
    step = StepLR(1, 0.5)
    model = nnx.MLP([3, 4, 2], seed=0)
    h1 = model.fit(X, Y, loss="mse", optimizer=opt, epochs=3, progress=False, callbacks=[step])
    h2 = model.fit(X, Y, loss="mse", optimizer=opt, epochs=2, progress=False, callbacks=[step])
    assert h1.lr == [0.1, 0.05, 0.025] and h2.lr == [0.025, 0.0125]


def test_bad_arguments():
    with pytest.raises(ValueError, match="step_size"):
        StepLR(0)
    with pytest.raises(ValueError, match="gamma"):
        StepLR(2, gamma=-1.0)
    with pytest.raises(ValueError, match="T_max"):
        CosineAnnealing(0)
    with pytest.raises(ValueError, match="factor"):
        ReduceLROnPlateau(factor=1.0)
    with pytest.raises(ValueError, match="threshold_mode"):
        ReduceLROnPlateau(threshold_mode="relative")
    with pytest.raises(ValueError, match="patience"):
        ReduceLROnPlateau(patience=-1)
    with pytest.raises(TypeError, match="callable"):
        LearningRateScheduler(0.1)
    model = nnx.MLP([3, 4, 2], seed=0)
    with pytest.raises(ValueError, match="scheduled rate"):
        model.fit(X, Y, loss="mse", optimizer="sgd", epochs=1, progress=False,
                  callbacks=[LearningRateScheduler(lambda e, lr: -1.0)])
