"""Careless inputs at the public entry points: a clear ValueError/TypeError, or the right answer.

Each case is one way a user can hand nnx something odd (an integer prediction, a list as
a gradient, data with infinities, a learning rate of 400 digits...). Answers are checked
against closed forms, NumPy in float64 or PyTorch, never against nnx itself.
"""

from __future__ import annotations

import numpy as np
import pytest

import nnx
from nnx import init, losses, optim


def _np(x):
    return np.asarray(nnx.to_numpy(x), dtype=np.float64)


# -- losses ------------------------------------------------------------------------------
def test_mse_promotes_an_integer_prediction(backend):
    xp = backend.xp
    pred = xp.asarray([[1], [2]], device=backend.device)            # int64
    target = xp.asarray([[0.5], [0.5]], dtype=xp.float32, device=backend.device)
    loss, grad = losses.mse(pred, target)
    assert float(loss) == pytest.approx(((1 - 0.5) ** 2 + (2 - 0.5) ** 2) / 2)   # 1.25
    np.testing.assert_allclose(_np(grad), [[0.5], [1.5]])          # 2 (p − y) / N
    assert xp.isdtype(grad.dtype, "real floating")


def test_mse_of_two_integer_arrays_uses_the_default_float(backend):
    xp = backend.xp
    pred = xp.asarray([[3], [0]], device=backend.device)
    target = xp.asarray([[0], [0]], device=backend.device)
    loss, grad = losses.mse(pred, target)
    info = xp.__array_namespace_info__().default_dtypes(device=backend.device)
    assert loss.dtype == info["real floating"] and grad.dtype == info["real floating"]
    assert float(loss) == 4.5
    np.testing.assert_array_equal(_np(grad), [[3.0], [0.0]])


def test_mse_mixed_floats_promote_to_the_wider():
    pred = np.array([[0.1]], dtype=np.float32)
    target = np.array([[0.3]], dtype=np.float64)
    loss, grad = losses.mse(pred, target)
    assert loss.dtype == np.float64 and grad.dtype == np.float64
    assert float(loss) == pytest.approx((np.float64(np.float32(0.1)) - 0.3) ** 2, rel=1e-15)


@pytest.mark.parametrize("name", ["mse", "binary_cross_entropy",
                                  "sigmoid_binary_cross_entropy", "softmax_cross_entropy"])
def test_losses_refuse_empty_inputs(backend, name):
    xp = backend.xp
    empty = xp.zeros((0, 2), dtype=xp.float32, device=backend.device)
    with pytest.raises(ValueError, match="empty|n, k ≥ 1"):
        losses.get(name)(empty, empty)


@pytest.mark.parametrize("p", [1.5, -0.25, float("nan")])
def test_bce_refuses_probabilities_outside_0_1(backend, p):
    xp = backend.xp
    prob = xp.asarray([[0.5], [p]], dtype=xp.float64, device=backend.device)
    target = xp.asarray([[1.0], [1.0]], dtype=xp.float64, device=backend.device)
    with pytest.raises(ValueError, match=r"probabilities must lie in \[0, 1\]"):
        losses.binary_cross_entropy(prob, target)


def test_bce_integer_prediction_matches_torch():
    torch = pytest.importorskip("torch")
    prob = np.array([[1], [0]])                      # int64 probabilities 1 and 0
    target = np.array([[1.0], [0.25]])
    loss, grad = losses.binary_cross_entropy(prob, target)
    want = torch.nn.functional.binary_cross_entropy(
        torch.tensor(prob, dtype=torch.float64), torch.tensor(target))
    assert float(loss) == pytest.approx(float(want)) == pytest.approx(12.5)  # (0 + 0.25·100)/2
    assert grad.dtype == np.float64


@pytest.mark.parametrize("labels", [[0, 1], [1, 0], [0, 0]])
def test_softmax_cross_entropy_of_extreme_logits_matches_torch(backend, labels):
    torch = pytest.importorskip("torch")
    big = 1.7e308
    z = np.array([[big, -big], [-big, big]])
    want = torch.nn.functional.cross_entropy(torch.tensor(z), torch.tensor(labels))
    xp = backend.xp
    if not hasattr(xp, "float64") or backend.name == "jax" and \
            xp.asarray(1.0, dtype=xp.float64).dtype != xp.float64:
        pytest.skip("no float64 here")
    logits = backend.from_numpy(z)
    for y in (backend.from_numpy(np.array(labels)), backend.from_numpy(np.eye(2)[labels])):
        loss, grad = losses.softmax_cross_entropy(logits, y)
        assert float(loss) == float(want)            # 0, or inf where torch says inf
        assert np.isfinite(_np(grad)).all()


def test_loss_prediction_must_be_an_array():
    with pytest.raises(TypeError, match="must be an array"):
        losses.mse([[1.0]], np.ones((1, 1)))


@pytest.mark.parametrize("target", [np.array([["1"]]), np.ones((1, 1), dtype=complex)])
def test_loss_refuses_strings_and_complex_targets(target):
    with pytest.raises(ValueError, match="numeric|real, integer or boolean"):
        losses.mse(np.ones((1, 1)), target)


# -- layers --------------------------------------------------------------------------------
def _dense_pair(backend):
    layer = nnx.Dense(3, 2, seed=0, dtype="float32")
    x = backend.from_numpy(np.arange(6, dtype=np.float32).reshape(2, 3))
    return layer, x


@pytest.mark.parametrize("form", ["list", "int", "float64", "bool"])
def test_dense_backward_casts_lists_and_other_real_dtypes(backend, form):
    layer, x = _dense_pair(backend)
    dy_np = np.array([[1, -2], [0, 3]])
    layer.forward(x)
    dy = {"list": dy_np.tolist(), "int": backend.from_numpy(dy_np),
          "float64": backend.from_numpy(dy_np.astype(np.float64)),
          "bool": backend.from_numpy(dy_np != 0)}[form]
    dx = layer.backward(dy)
    dy_ref = (dy_np != 0).astype(np.float64) if form == "bool" else dy_np.astype(np.float64)
    W = _np(layer.W)
    x64 = _np(x)
    assert layer.dW.dtype == layer.W.dtype and dx.dtype == layer.W.dtype
    np.testing.assert_allclose(_np(layer.dW), dy_ref.T @ x64, rtol=1e-6)
    np.testing.assert_allclose(_np(layer.db), dy_ref.sum(axis=0), rtol=1e-6)
    np.testing.assert_allclose(_np(dx), dy_ref @ W, rtol=1e-6)


@pytest.mark.parametrize("dy", [np.ones((2, 2), dtype=np.complex64), [["a", "b"], ["c", "d"]],
                                "1.0", [[1, 2], [3]]])
def test_dense_backward_refuses_what_is_not_real_numbers(dy):
    layer, x = _dense_pair(nnx.backend.resolve_backend("numpy"))
    layer.forward(x)
    with pytest.raises(ValueError, match=r"dL/dZ given to Dense\(3, 2"):
        layer.backward(dy)


@pytest.mark.parametrize("x", [[["1", "2", "3"]], np.array([[10**400, 1, 2]], dtype=object),
                               [[10**400, 1, 2]], np.ones((1, 3), dtype=complex)])
def test_dense_forward_refuses_strings_objects_complex(x):
    with pytest.raises(ValueError, match="the input of Dense") as info:
        nnx.Dense(3, 2, seed=0).forward(x)
    assert len(str(info.value)) < 400                # never a 400-digit number echoed


def test_activation_layers_cast_integers_and_refuse_complex(backend):
    xp = backend.xp
    z = xp.asarray([[-2, 0, 3]], device=backend.device)
    a = nnx.ReLU().forward(z)
    info = xp.__array_namespace_info__().default_dtypes(device=backend.device)
    assert a.dtype == info["real floating"]
    np.testing.assert_array_equal(_np(a), [[0.0, 0.0, 3.0]])
    layer = nnx.Tanh()
    layer.forward(backend.from_numpy(np.zeros((1, 2), dtype=np.float32)))
    with pytest.raises(ValueError, match="real, integer or boolean"):
        layer.backward(np.ones((1, 2), dtype=complex) if backend.name == "numpy"
                       else backend.xp.asarray([[1j, 1j]]))
    with pytest.raises(ValueError, match="must be numeric"):
        nnx.Sigmoid().forward(np.array([["1"]]))


def test_custom_init_is_checked():
    with pytest.raises(ValueError, match=r"returned shape \(5, 5\).*\(3, 2\)"):
        nnx.Dense(2, 3, init=lambda shape, **kw: np.zeros((5, 5)))
    with pytest.raises(ValueError, match="NaN or infinite"):
        nnx.Dense(2, 3, init=lambda shape, **kw: np.full(shape, np.nan))
    with pytest.raises(ValueError, match="numeric"):
        nnx.Dense(2, 3, init=lambda shape, **kw: np.full(shape, "1"))
    layer = nnx.Dense(2, 3, init=lambda shape, **kw: np.arange(6).reshape(shape))
    assert layer.W.dtype == np.float32
    np.testing.assert_array_equal(layer.W, np.arange(6).reshape(3, 2))


def test_second_backward_says_what_happened_and_standalone_layers_keep_their_cache():
    net = nnx.MLP([2, 3, 1], seed=0)
    x, dy = np.ones((4, 2), dtype=np.float32), np.ones((4, 1), dtype=np.float32)
    net.forward(x)
    net.backward(dy)
    with pytest.raises(RuntimeError, match="called twice for one forward.*forward\\(\\) again"):
        net.backward(dy)
    with pytest.raises(RuntimeError, match="before forward"):
        nnx.MLP([2, 3, 1], seed=0).backward(dy)
    dense = nnx.Dense(2, 1, seed=0)                  # alone: nothing releases its cache
    dense.forward(x)
    first = np.array(dense.backward(dy))
    np.testing.assert_array_equal(dense.backward(dy), first)
    net.forward(x)                                   # a new forward: backward works again
    net.backward(dy)


def test_nested_sequential_follows_retain_cache():
    inner = nnx.MLP([2, 3, 2], seed=0)
    outer = nnx.Sequential(inner, nnx.Dense(2, 1, seed=1))
    x, dy = np.ones((4, 2), dtype=np.float32), np.ones((4, 1), dtype=np.float32)
    outer.forward(x)
    first = np.array(outer.backward(dy, retain_cache=True))
    np.testing.assert_array_equal(outer.backward(dy), first)   # kept, then released
    with pytest.raises(RuntimeError, match="called twice"):
        outer.backward(dy)


# -- numbers: optimizers, initializers, layers ------------------------------------------
@pytest.mark.parametrize("make", [
    lambda: optim.SGD(lr=10**400), lambda: optim.Adam(eps=10**400),
    lambda: optim.SGD(lr=True), lambda: optim.Adam(betas=(True, 0.9)),
    lambda: optim.SGD(lr=0.1, momentum=float("inf")), lambda: optim.Adam(lr=-10**400),
    lambda: init.normal((2, 2), std=True), lambda: init.normal((2, 2), std=10**400),
    lambda: init.he_normal((True, 2)), lambda: init.zeros((2, 0)), lambda: init.zeros(3),
    lambda: init.xavier_uniform((2, 2), dtype="float16"),
    lambda: nnx.LeakyReLU(alpha=True), lambda: nnx.LeakyReLU(alpha=float("nan")),
    lambda: nnx.Dense(True, 2), lambda: nnx.Dense(2, 2.0), lambda: nnx.Dense(2, 2, bias="no"),
    lambda: nnx.MLP([2, True]), lambda: nnx.Perceptron(2, lr=True),
    lambda: nnx.Perceptron(2, lr=10**400),
])
def test_bad_numbers_raise_short_value_errors(make):
    with pytest.raises(ValueError) as info:
        make()
    assert len(str(info.value)) < 300 and "Exceeds the limit" not in str(info.value)


def test_numpy_scalars_are_numbers():
    opt = optim.SGD(lr=np.float32(0.5), momentum=np.float64(0.25))
    assert opt.lr == 0.5 and opt.momentum == 0.25
    assert nnx.Dense(np.int64(2), np.int32(3)).W.shape == (3, 2)


def test_step_refuses_what_is_not_a_model():
    with pytest.raises(TypeError, match="takes a model"):
        optim.SGD(lr=0.1).step("abc")
    with pytest.raises(TypeError, match="takes a model"):
        optim.Adam().step(5)


# -- fit and predict ---------------------------------------------------------------------------
@pytest.mark.parametrize("where, bad", [("X", np.inf), ("X", np.nan), ("y", -np.inf),
                                        ("y", np.nan), ("X", 1e300)])
def test_fit_refuses_non_finite_data_before_training(backend, where, bad):
    model = nnx.MLP([2, 3, 1], seed=0)
    W0 = _np(model[0].W)
    X, y = np.ones((4, 2)), np.zeros(4)
    (X if where == "X" else y)[1] = bad              # 1e300 is infinite in float32
    with pytest.raises(ValueError, match=f"fit: {where} contains NaN or infinity"):
        model.fit(X, y, loss="mse", optimizer="sgd", epochs=2, progress=False)
    np.testing.assert_array_equal(_np(model[0].W), W0)    # not trained


def test_fit_refuses_non_finite_validation_data():
    model = nnx.MLP([2, 3, 1], seed=0)
    with pytest.raises(ValueError, match="X_val contains NaN"):
        model.fit(np.ones((4, 2)), np.zeros(4), loss="mse", optimizer="sgd", epochs=1,
                  progress=False, validation_data=(np.full((2, 2), np.nan), np.zeros(2)))


@pytest.mark.parametrize("X, y", [(np.array([["1", "2"]] * 3), np.zeros(3)),
                                  (np.ones((3, 2)), np.array(["1", "0", "1"])),
                                  ([["1", "2"]] * 3, np.zeros(3))])
def test_fit_and_predict_refuse_numeric_strings(X, y):
    model = nnx.MLP([2, 3, 1], seed=0)
    with pytest.raises(ValueError, match="must be numeric"):
        model.fit(X, y, loss="mse", optimizer="sgd", epochs=1, progress=False)
    if isinstance(X, np.ndarray) and X.dtype.kind == "U":
        with pytest.raises(ValueError, match="must be numeric"):
            model.predict(X)


def test_perceptron_refuses_non_finite_inputs():
    with pytest.raises(ValueError, match="NaN or infinity"):
        nnx.Perceptron(2).fit(np.array([[np.inf, 0.0], [0.0, 1.0]]), np.array([0, 1]))


# -- the scikit-learn estimators: as scikit-learn -----------------------------------------------
def test_sklearn_parameters_fail_at_fit_as_scikit_learn():
    sk = pytest.importorskip("sklearn.neural_network")
    from sklearn.utils._param_validation import InvalidParameterError

    from nnx.sklearn import MLPRegressor
    X = np.random.default_rng(0).normal(size=(12, 2))
    y = X[:, 0]
    est = MLPRegressor(verbose="x", max_iter=2)      # accepted at construction, as sklearn
    with pytest.raises(InvalidParameterError, match="'verbose' parameter"):
        est.fit(X, y)
    with pytest.raises(InvalidParameterError, match="'verbose' parameter"):
        sk.MLPRegressor(verbose="x", max_iter=2).fit(X, y)
    for sizes in [(2.5,), (True,), ("a",)]:          # scikit-learn: TypeError too
        with pytest.raises(TypeError):
            MLPRegressor(hidden_layer_sizes=sizes, max_iter=2).fit(X, y)
    fitted = MLPRegressor(hidden_layer_sizes=(3,), max_iter=2, random_state=0).fit(X, y)
    for bad in (np.array([["1", "2"]]), np.array([[np.inf, 0.0]])):
        with pytest.raises(ValueError) as ours:
            fitted.predict(bad)
        theirs = sk.MLPRegressor(hidden_layer_sizes=(3,), max_iter=2).fit(X, y)
        with pytest.raises(ValueError) as want:
            theirs.predict(bad)
        assert str(ours.value) == str(want.value)


def test_messages_never_hold_python_internals():
    with pytest.raises(ValueError) as info:
        nnx.MLP([2, 2]).fit(np.ones((2, 2)), np.ones((2, 2)), loss="mse", optimizer="sgd",
                            epochs=-10**5000, progress=False)
    assert "epochs must be a positive integer; got an integer of about 5001 digits" \
        in str(info.value)


def test_activation_functions_cast_integers_and_refuse_complex_and_lists():
    from nnx import activations as F
    z = np.array([[-1, 0, 2]])
    np.testing.assert_allclose(F.sigmoid(z), 1 / (1 + np.exp(-z.astype(np.float64))))
    np.testing.assert_array_equal(F.relu_derivative(np.array([True, False])), [1.0, 0.0])
    assert F.identity(z).dtype == np.float64
    for f, df in F.ACTIVATIONS.values():
        with pytest.raises(ValueError, match="real, integer or boolean"):
            f(np.ones((1, 2), dtype=complex))
        with pytest.raises(TypeError, match="takes an array"):
            df([[1.0, 2.0]])
