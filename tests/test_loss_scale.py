"""Loss scaling (nnx.loss_scale) against torch.amp.GradScaler, run here on the CPU.

The same tiny network trains in PyTorch under ``GradScaler(device="cpu")`` and in nnx
under :class:`LossScaler`, on a pattern of steps whose scaled gradients overflow (an
initial scale far too large, growth after a short interval, inf and NaN injected into
a gradient on chosen steps): the scales, the skipped steps, the unscaled gradients and
the weights must agree.
"""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

import nnx
from nnx.loss_scale import LossScaler, resolve
from nnx.trainer import Trainer
from nnx.training import TrainingDivergedError

torch = pytest.importorskip("torch")

#: step -> what is written into the first weight gradient after backward
INJECT = {6: math.nan, 13: math.inf}
STEPS = 24


def _data(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((8, 3)).astype(np.float32)
    Y = (300.0 * rng.standard_normal((8, 2))).astype(np.float32)  # large errors: large grads
    return X, Y


def _torch_net(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2))


def _nnx_net(net):
    model = nnx.MLP([3, 5, 2], activation="tanh", seed=0)
    for layer, lin in zip(model.dense_layers, (net[0], net[2])):
        layer.W = nnx.asarray(lin.weight.detach().numpy())
        layer.b = nnx.asarray(lin.bias.detach().numpy())
    return model


def _torch_run(kw, steps=STEPS, lr=1e-4, inject=INJECT):
    """GradScaler's loop; per step: scale after update, skipped?, unscaled gradients (and
    the losses, after the weights)."""
    X, Y = map(torch.from_numpy, _data())
    net = _torch_net()
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    scaler = torch.amp.GradScaler("cpu", **kw)
    scales, skips, grads, losses = [], [], [], []
    for i in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(net(X), Y)
        losses.append(loss.item())
        scaler.scale(loss).backward()
        if i in inject:
            net[0].weight.grad[0, 0] = inject[i]
        scaler.unscale_(opt)
        grads.append([p.grad.numpy().copy() for p in net.parameters()])
        before = scaler.get_scale()
        scaler.step(opt)
        scaler.update()
        scales.append(scaler.get_scale())
        skips.append(scales[-1] < before)   # GradScaler backs off exactly when it skips
    weights = [p.detach().numpy().copy() for p in net.parameters()]
    return scales, skips, grads, weights, losses


def _nnx_run(kw, steps=STEPS, lr=1e-4):
    X, Y = (nnx.asarray(a) for a in _data())
    model = _nnx_net(_torch_net())
    opt = nnx.optim.SGD(lr)
    scaler = LossScaler(**kw)
    scales, skips, grads = [], [], []
    for i in range(steps):
        loss, dout = nnx.losses.mse(model.forward(X), Y)
        model.backward(scaler.scale_gradient(dout), input_grad=False)
        if i in INJECT:   # first weight gradient, element [0, 0]
            mask = np.zeros((5, 3), np.float32)
            mask[0, 0] = INJECT[i]
            layer = model.dense_layers[0]
            layer.dW += nnx.asarray(mask)   # in place (a flat buffer's view stays one)
        found = scaler.unscale_(model)
        grads.append([nnx.to_numpy(g).copy() for d in model.dense_layers for g in (d.dW, d.db)])
        skipped = scaler.update(found)
        if not skipped:
            opt.step(model)
        scales.append(scaler.scale)
        skips.append(skipped)
    weights = [nnx.to_numpy(p) for d in model.dense_layers for p in (d.W, d.b)]
    return scales, skips, grads, weights, scaler


#: Overflow must be unambiguous to be reproducible: whether a sum overflows near float32's
#: top depends on its order (PyTorch's and NumPy's differ), so the scales stay far from
#: the edge. Here max|δ| ≥ 2⁵·⁵ and every partial sum of the backward pass is ≤ 2⁷·⁶ (for
#: S = 1, measured): S = 2¹²⁴ overflows δ itself, S ≤ 2¹¹² overflows nothing. The second
#: setting (GradScaler's factors) overflows only where inf/NaN are injected.
OVERFLOWING = dict(init_scale=2.0**124, growth_factor=2.0**12, backoff_factor=2.0**-12,
                   growth_interval=3)
CONFIGS = [OVERFLOWING, dict(init_scale=2.0**16, growth_interval=3)]


@pytest.mark.filterwarnings("ignore:(overflow|invalid value) encountered:RuntimeWarning")
@pytest.mark.parametrize("kw", CONFIGS, ids=["overflowing", "default-factors"])
def test_training_follows_grad_scaler(backend, kw):
    t_scales, t_skips, t_grads, t_weights, _ = _torch_run(kw)
    n_scales, n_skips, n_grads, n_weights, scaler = _nnx_run(kw)
    assert n_scales == t_scales                 # the same float32 scale after every step
    assert n_skips == t_skips
    # the pattern exercises it all: growth, overflow (after growth), both injected values
    assert all(t_skips[i] for i in INJECT)
    grown = [b > a for a, b in zip(t_scales, t_scales[1:])]
    assert sum(grown) >= 3 and sum(t_skips) >= (5 if kw is OVERFLOWING else 2)
    assert scaler.skipped == sum(t_skips)
    for i, (tg, ng) in enumerate(zip(t_grads, n_grads)):
        for t, n in zip(tg, ng):
            if t_skips[i]:   # both non-finite at the same places
                np.testing.assert_array_equal(np.isfinite(n), np.isfinite(t))
            else:
                np.testing.assert_allclose(n, t, rtol=2e-5, atol=1e-4)
    for t, n in zip(t_weights, n_weights):
        np.testing.assert_allclose(n, t, rtol=1e-5, atol=1e-6)


def _grad_scaler_step(ref, opt, p, bad=None):
    """One step of PyTorch's GradScaler ``ref`` on the loss Σp, the last gradient set to
    ``bad`` (inf or NaN) when given."""
    opt.zero_grad()
    ref.scale(p.sum()).backward()
    if bad is not None:
        p.grad[-1] = bad
    ref.step(opt)
    ref.update()


def test_update_follows_grad_scaler_rounding():
    """Factors that are not powers of two round S to float32 exactly as GradScaler does;
    growth stops short of float32's overflow."""
    rng = np.random.default_rng(3)
    for kw in (dict(init_scale=1234.567, growth_factor=1.7, backoff_factor=0.3,
                    growth_interval=2),
               dict(init_scale=2.0**120, growth_factor=3.1, backoff_factor=0.9,
                    growth_interval=1)):
        p = torch.zeros(2, requires_grad=True)
        opt = torch.optim.SGD([p], lr=0.1)
        ref = torch.amp.GradScaler("cpu", **kw)
        ours = LossScaler(**kw)
        for _ in range(300):
            bad = bool(rng.random() < 0.3)
            _grad_scaler_step(ref, opt, p, math.nan if bad else None)
            ours.update(bad)
            assert ours.scale == ref.get_scale()
            assert ours.state_dict()["_growth_tracker"] == ref.state_dict()["_growth_tracker"]
    top = LossScaler(2.0**127, growth_interval=1)
    top.update(False)
    assert top.scale == 2.0**127    # 2¹²⁸ is inf in float32: GradScaler keeps S


def test_state_dict_round_trips_with_grad_scaler():
    ref = torch.amp.GradScaler("cpu", init_scale=512.0, growth_interval=5)
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.1)
    for bad in (False, True, False, False):
        _grad_scaler_step(ref, opt, p, math.inf if bad else None)
    ours = LossScaler()
    ours.load_state_dict(ref.state_dict())          # GradScaler's five entries
    assert (ours.scale, ours.growth_tracker, ours.growth_interval) == (256.0, 2, 5)
    assert ours.dynamic
    back = torch.amp.GradScaler("cpu")
    back.load_state_dict(ours.state_dict())
    assert back.get_scale() == 256.0 and back.state_dict()["_growth_tracker"] == 2
    again = pickle.loads(pickle.dumps(ours))
    assert again.state_dict() == ours.state_dict()
    with pytest.raises(ValueError, match="_growth_tracker"):
        ours.load_state_dict({**ours.state_dict(), "_growth_tracker": 5})
    with pytest.raises(ValueError, match="lacks scale"):
        ours.load_state_dict({"growth_factor": 2.0})
    with pytest.raises(ValueError, match="growth_factor"):
        ours.load_state_dict({**ours.state_dict(), "growth_factor": 0.5})
    assert ours.scale == 256.0                       # a refused state changes nothing


def test_static_scale_never_changes_and_still_skips():
    s = LossScaler(1024.0, dynamic=False)
    assert [s.update(b) for b in (False, True, False, False, True)] == \
        [False, True, False, False, True]
    assert s.scale == 1024.0 and s.growth_tracker == 0 and s.skipped == 2
    assert resolve(1024, []).state_dict()["dynamic"] is False


def test_unscale_misuse():
    model = nnx.MLP([2, 3, 1], seed=0)
    s = LossScaler()
    with pytest.raises(ValueError, match="no gradients"):
        s.unscale_(model)
    with pytest.raises(RuntimeError, match="no found_inf"):
        s.update()
    loss, d = nnx.losses.mse(model.forward(np.ones((4, 2), np.float32)),
                             np.zeros((4, 1), np.float32))
    model.backward(s.scale_gradient(d))
    s.unscale_(model)
    with pytest.raises(RuntimeError, match="already called"):
        s.unscale_(model)
    assert s.update() is False          # the stored verdict
    with pytest.raises(TypeError, match="network, a layer"):
        LossScaler().unscale_(3)


@pytest.mark.parametrize("kw, match", [
    (dict(init_scale=0), "init_scale"), (dict(init_scale=-1.0), "init_scale"),
    (dict(init_scale=math.inf), "init_scale"), (dict(init_scale=math.nan), "init_scale"),
    (dict(init_scale=1e39), "float32"), (dict(init_scale=1e-50), "float32"),
    (dict(init_scale=True), "init_scale"), (dict(init_scale="2"), "init_scale"),
    (dict(growth_factor=1.0), "growth_factor"), (dict(growth_factor=0.5), "growth_factor"),
    (dict(backoff_factor=1.0), "backoff_factor"), (dict(backoff_factor=0.0), "backoff_factor"),
    (dict(growth_interval=0), "growth_interval"), (dict(growth_interval=1.5), "growth_interval"),
    (dict(growth_interval=True), "growth_interval"), (dict(dynamic="yes"), "dynamic"),
])
def test_arguments_are_validated(kw, match):
    with pytest.raises(ValueError, match=match):
        LossScaler(**kw)


# -- fit(loss_scale=...) ---------------------------------------------------------------

def test_fit_follows_grad_scaler(backend):
    """fit with a LossScaler, one full batch per epoch, is GradScaler's loop: the same
    scales, the same skipped steps (none raises), the same loss and weights."""
    kw = OVERFLOWING
    t_scales, t_skips, _, t_weights, t_losses = _torch_run(kw, inject={})
    X, Y = _data()
    model = _nnx_net(_torch_net())
    scaler = LossScaler(**kw)
    h = model.fit(X, Y, loss="mse", optimizer=nnx.optim.SGD(1e-4), epochs=STEPS,
                  progress=False, loss_scale=scaler)
    assert h.loss_scale == t_scales and scaler.scale == t_scales[-1]
    assert h.skipped == [int(s) for s in t_skips]
    assert t_skips[0] and sum(t_skips) >= 4   # overflows after growth too
    np.testing.assert_allclose(h.loss, t_losses, rtol=1e-5)   # skipped epochs: their loss
    weights = [nnx.to_numpy(p) for d in model.dense_layers for p in (d.W, d.b)]
    for t, n in zip(t_weights, weights):
        np.testing.assert_allclose(n, t, rtol=1e-5, atol=1e-6)


def test_fit_static_power_of_two_scale_changes_nothing(backend):
    """Scaling by a power of two is exact: the weights equal those of unscaled training."""
    X, Y = _data()
    Y = Y / 300.0
    runs = []
    for loss_scale in (False, 1024.0, LossScaler(2.0**10, growth_interval=1)):
        model = nnx.MLP([3, 5, 2], activation="tanh", seed=1)
        h = model.fit(X, Y, loss="mse", optimizer="adam", epochs=3, batch_size=3, seed=0,
                      progress=False, loss_scale=loss_scale)
        runs.append(([nnx.to_numpy(p) for p in model.parameters().values()], h))
    for weights, _ in runs[1:]:
        for a, b in zip(runs[0][0], weights):
            np.testing.assert_array_equal(a, b)
    assert runs[0][1].loss_scale == [] and runs[0][1].skipped == []
    assert runs[1][1].loss_scale == [1024.0] * 3 and runs[1][1].skipped == [0, 0, 0]
    assert runs[2][1].loss_scale == [2.0**13, 2.0**16, 2.0**19]   # ×2 a step, 3 an epoch
    assert runs[2][1].loss == runs[0][1].loss


def test_penalty_is_added_to_unscaled_gradients(backend):
    """The Trainer's penalty (nnx.sklearn's L2 term) comes after the unscaling: with a
    power-of-two scale, training is bitwise the same as without scaling."""
    def l2(model, n_batch):
        total = 0.0
        for d in model.dense_layers:
            d.dW += (0.5 / n_batch) * d.W
            total = total + nnx.get_backend().xp.sum(d.W * d.W)
        return total * (0.25 / n_batch)

    X, Y = _data()
    runs = []
    for loss_scale in (False, 2.0**12):
        model = nnx.MLP([3, 5, 2], activation="tanh", seed=2)
        trainer = Trainer(model, X, Y / 300.0, loss="mse", optimizer="sgd", batch_size=4,
                          seed=0, penalty=l2, loss_scale=loss_scale)
        losses = [trainer.epoch() for _ in range(3)]
        runs.append((losses, [nnx.to_numpy(p) for p in model.parameters().values()]))
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1]):
        np.testing.assert_array_equal(a, b)


def test_one_rank_data_parallel_fit_scales_alike(backend):
    """distributed=True (an MPI singleton): the gradients are unscaled and checked after
    the all-reduce, and the run equals the plain one (scales, skips, weights)."""
    pytest.importorskip("mpi4py")
    X, Y = _data()
    out = []
    for dist in (False, True):
        model = _nnx_net(_torch_net())
        h = model.fit(X, Y, loss="mse", optimizer=nnx.optim.SGD(1e-4), epochs=10, batch_size=3,
                      seed=0, progress=False, distributed=dist,
                      loss_scale=LossScaler(**OVERFLOWING))
        out.append(([nnx.to_numpy(p) for p in model.parameters().values()], h))
    (plain, hp), (dist, hd) = out
    assert hd.loss_scale == hp.loss_scale and hd.skipped == hp.skipped and sum(hp.skipped) > 2
    for a, b in zip(dist, plain):
        np.testing.assert_array_equal(a, b)


def test_fit_skipped_steps_do_not_raise():
    """An epoch whose every step overflows: dynamic scaling records the loss and goes on;
    a static scale that overflows every step raises, saying what to do."""
    X, Y = _data()
    model = nnx.MLP([3, 5, 2], activation="tanh", seed=0)
    h = model.fit(X, Y, loss="mse", optimizer="sgd", epochs=3, progress=False,
                  loss_scale=LossScaler(2.0**127))
    assert h.skipped == [1, 1, 1] and h.loss_scale == [2.0**126, 2.0**125, 2.0**124]
    assert h.loss[0] == h.loss[1] == h.loss[2] and math.isfinite(h.loss[0])   # unchanged
    with pytest.raises(TrainingDivergedError, match="static loss scale"):
        model.fit(X, Y, loss="mse", optimizer="sgd", epochs=1, progress=False,
                  loss_scale=2.0**127)


def test_fit_loss_scale_choices():
    model = nnx.MLP([3, 5, 2], seed=0)
    assert resolve(None, model.dense_layers) is None          # float32: no scaling
    assert resolve(False, model.dense_layers) is None
    assert resolve(True, model.dense_layers).dynamic
    given = LossScaler()
    assert resolve(given, model.dense_layers) is given
    X, Y = _data()
    for bad, err in (("dynamic", TypeError), ([1.0], TypeError), (0, ValueError),
                     (-2.0, ValueError), (math.inf, ValueError)):
        with pytest.raises(err, match="loss_scale"):
            model.fit(X, Y, loss="mse", optimizer="sgd", epochs=1, progress=False,
                      loss_scale=bad)
