"""nnx.export_onnx: onnxruntime (CPUExecutionProvider) predicts what nnx predicts.

Every activation and output head, float32 and float64, every installed backend, a dynamic
batch dimension, the digits data, the Perceptron, the scikit-learn estimators; and what
cannot be exported is refused by name.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import nnx

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

HIDDEN = ["identity", "step", "sigmoid", "tanh", "relu", "leaky_relu", "gelu", "gelu_tanh"]
HEADS = [None, "sigmoid", "softmax", "tanh"]


def _session(proto):
    used = {name for node in proto.graph.node for name in node.input}
    assert {t.name for t in proto.graph.initializer} <= used, "an initializer nothing reads"
    return ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])


def _tolerance(dtype: str, exact_gelu: bool = False) -> dict:
    """Float rounding of the model's dtype (onnxruntime's erf is float32 only)."""
    if dtype == "float32" or exact_gelu:
        return {"rtol": 2e-6 if dtype == "float64" else 1e-5, "atol": 1e-6}
    return {"rtol": 1e-12, "atol": 1e-13}


def _nnx_predict(model, X, backend):
    return nnx.to_numpy(model.predict(nnx.asarray(X, backend=backend)))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_mlp_matches_onnxruntime(backend, hidden, head, dtype):
    model = nnx.MLP([6, 9, 8, 4], activation=hidden, output_activation=head, seed=3,
                    dtype=dtype)
    proto = nnx.export_onnx(model)
    session = _session(proto)
    X = np.random.default_rng(0).standard_normal((37, 6)).astype(dtype)
    (Y,) = session.run(None, {"X": X})
    expected = _nnx_predict(model, X, backend)
    assert Y.dtype == np.dtype(dtype) and Y.shape == (37, 4)
    np.testing.assert_allclose(Y, expected, **_tolerance(dtype, hidden == "gelu"))
    if head == "softmax":
        np.testing.assert_allclose(Y.sum(axis=1), 1.0, rtol=1e-5)


def test_the_graph_is_opset_17_with_a_symbolic_batch():
    model = nnx.MLP([3, 5, 2], seed=0)
    proto = nnx.export_onnx(model)
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", 17)]
    assert proto.ir_version == 8 == nnx.export.IR_VERSION and nnx.export.OPSET == 17
    (x,), (y,) = proto.graph.input, proto.graph.output
    assert [d.dim_param or d.dim_value for d in x.type.tensor_type.shape.dim] == ["batch", 3]
    assert [d.dim_param or d.dim_value for d in y.type.tensor_type.shape.dim] == ["batch", 2]
    session = _session(proto)
    for n in (1, 2, 513):
        X = np.random.default_rng(n).standard_normal((n, 3)).astype("float32")
        (Y,) = session.run(None, {"X": X})
        np.testing.assert_allclose(Y, nnx.to_numpy(model.predict(X)), rtol=1e-5, atol=1e-6)


def test_against_a_float64_numpy_forward_pass():
    """The graph computes the closed form, not just whatever nnx computes."""
    model = nnx.MLP([4, 6, 3], activation="tanh", output_activation="softmax", seed=5,
                    dtype="float64")
    W1, b1, W2, b2 = (nnx.to_numpy(p) for p in model.parameters().values())
    X = np.random.default_rng(1).standard_normal((20, 4))
    z = np.tanh(X @ W1.T + b1) @ W2.T + b2
    expected = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    (Y,) = _session(nnx.export_onnx(model)).run(None, {"X": X})
    np.testing.assert_allclose(Y, expected, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("alpha", [0.25, 0.1])   # 0.1 is not a float32: exact in float64
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_leaky_relu_slope_and_layers_without_bias_nested(dtype, alpha):
    inner = nnx.Sequential(nnx.Dense(5, 7, bias=False, dtype=dtype, seed=1),
                           nnx.LeakyReLU(alpha))
    model = nnx.Sequential(inner, nnx.Dense(7, 2, dtype=dtype, seed=2), nnx.GELU("tanh"))
    X = np.random.default_rng(2).standard_normal((16, 5)).astype(dtype)
    (Y,) = _session(nnx.export_onnx(model)).run(None, {"X": X})
    np.testing.assert_allclose(Y, nnx.to_numpy(model.forward(X)), **_tolerance(dtype))


def test_mixed_dtypes_cast_as_the_forward_pass_does():
    model = nnx.Sequential(nnx.Dense(3, 4, dtype="float64", seed=1), nnx.ReLU(),
                           nnx.Dense(4, 2, dtype="float32", seed=2))
    proto = nnx.export_onnx(model)
    X = np.random.default_rng(3).standard_normal((8, 3))
    (Y,) = _session(proto).run(None, {"X": X})
    assert Y.dtype == np.float32
    np.testing.assert_allclose(Y, nnx.to_numpy(model.predict(X)), rtol=1e-6, atol=1e-7)


@pytest.fixture(scope="module", params=["float32", "float64"])
def digits_model(request, tmp_path_factory):
    """A digits classifier trained on NumPy, saved; each test loads it on its backend."""
    datasets = pytest.importorskip("sklearn.datasets")
    dtype = request.param
    X, y = datasets.load_digits(return_X_y=True)
    X = (X / 16.0).astype(dtype)
    model = nnx.MLP([64, 32, 10], activation="relu", seed=0, dtype=dtype, backend="numpy")
    model.fit(X, np.eye(10, dtype=dtype)[y], loss="softmax_cross_entropy",
              optimizer=nnx.optim.Adam(0.01), epochs=5, batch_size=64, seed=0, progress=False)
    path = tmp_path_factory.mktemp("digits") / f"digits-{dtype}.safetensors"
    nnx.save(model, path)
    return path, X, y


def test_digits_classifier_on_each_backend(backend, digits_model):
    path, X, y = digits_model
    model = nnx.load(path, backend=backend)
    head = nnx.Sequential(*model.layers, nnx.Softmax())   # probabilities out
    (P,) = _session(nnx.export_onnx(head)).run(None, {"X": X})
    expected = _nnx_predict(head, X, backend)
    np.testing.assert_allclose(P, expected, **_tolerance(str(X.dtype)))
    assert (P.argmax(axis=1) == expected.argmax(axis=1)).mean() > 0.999
    assert (P.argmax(axis=1) == y).mean() > 0.9   # it did learn


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_perceptron_label_and_decision(backend, dtype):
    rng = np.random.default_rng(4)
    X = rng.standard_normal((40, 3))
    y = (X @ np.array([1.0, -2.0, 0.5]) + 0.3 > 0).astype(int)
    p = nnx.Perceptron(3, seed=0, dtype=dtype)
    on = nnx.asarray
    assert p.fit(on(X, backend=backend), on(y, backend=backend), max_epochs=200).epochs > 1
    Xt = rng.standard_normal((50, 3)).astype(dtype)
    label, decision = _session(nnx.export_onnx(p)).run(["label", "decision"], {"X": Xt})
    assert label.dtype == np.int64 and label.shape == (50,)
    np.testing.assert_array_equal(label, nnx.to_numpy(p.predict(on(Xt, backend=backend))))
    np.testing.assert_allclose(decision,
                               nnx.to_numpy(p.decision_function(on(Xt, backend=backend))),
                               **_tolerance(dtype))


def test_file_written_and_read_back(tmp_path):
    model = nnx.MLP([2, 3, 1], output_activation="sigmoid", seed=0)
    path = tmp_path / "model.onnx"
    proto = nnx.export_onnx(model, path)
    assert onnx.load(str(path)) == proto
    assert list(tmp_path.iterdir()) == [path]          # no temporary file left behind
    X = np.array([[0.0, 1.0], [1.0, 1.0]], dtype=np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"X": X})[0], nnx.to_numpy(model.predict(X)),
                               rtol=1e-6)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        nnx.export_onnx(model, tmp_path / "missing" / "model.onnx")


class Swish(nnx.Layer):
    def forward(self, x):
        return x / (1 + np.exp(-x))


class MyReLU(nnx.ReLU):
    pass


@pytest.mark.parametrize("custom", [Swish(), MyReLU()])
def test_custom_layers_are_refused_by_name(custom):
    model = nnx.Sequential(nnx.Dense(2, 3, seed=0), custom, nnx.Dense(3, 1, seed=1))
    with pytest.raises(TypeError, match=rf"layer 1 of the model, .*{type(custom).__name__}"):
        nnx.export_onnx(model)
    with pytest.raises(TypeError, match="expected an nnx Sequential"):
        nnx.export_onnx(lambda x: x)


def test_import_nnx_does_not_import_onnx():
    code = "import sys, nnx; print(sorted(m for m in sys.modules if 'onnx' in m))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_without_onnx_the_error_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)   # as if not installed
    with pytest.raises(ImportError, match="pip install onnx"):
        nnx.export_onnx(nnx.MLP([2, 1], seed=0))


# -- the scikit-learn estimators ---------------------------------------------------------------
#: a few iterations suffice to test the export; scikit-learn warns that they did not converge
short_fit = pytest.mark.filterwarnings("ignore:Stochastic Optimizer:UserWarning")


def _digits(dtype="float64"):
    datasets = pytest.importorskip("sklearn.datasets")
    X, y = datasets.load_digits(return_X_y=True)
    return (X / 16.0).astype(dtype), y


@short_fit
@pytest.mark.parametrize("activation", ["identity", "logistic", "tanh", "relu"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_classifier_multiclass_string_labels(dtype, activation):
    from nnx.sklearn import MLPClassifier

    X, y = _digits(dtype)
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                      "nine"])[y]
    clf = MLPClassifier((24,), activation=activation, max_iter=15, random_state=0,
                        dtype=dtype).fit(X[:900], names[:900])
    label, proba = _session(nnx.export_onnx(clf)).run(["label", "probabilities"], {"X": X})
    np.testing.assert_allclose(proba, clf.predict_proba(X), **_tolerance(dtype))
    np.testing.assert_array_equal(label, clf.predict(X))
    assert (label == names).mean() > 0.5   # labels, not noise


@short_fit
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_classifier_binary_and_multilabel(dtype):
    from nnx.sklearn import MLPClassifier

    X, y = _digits(dtype)
    for target in (np.where(y % 2 == 1, 7, -3),                      # binary, int labels
                   np.stack([y % 2, (y > 4).astype(int), (y == 0)], axis=1)):  # multi-label
        clf = MLPClassifier((16,), activation="tanh", max_iter=10, random_state=1,
                            dtype=dtype).fit(X[:500], target[:500])
        label, proba = _session(nnx.export_onnx(clf)).run(["label", "probabilities"], {"X": X})
        np.testing.assert_allclose(proba, clf.predict_proba(X), **_tolerance(dtype))
        np.testing.assert_array_equal(label, clf.predict(X))
        assert proba.shape == (len(X), 2 if target.ndim == 1 else 3)


@short_fit
@pytest.mark.parametrize("loss", ["squared_error", "poisson"])
@pytest.mark.parametrize("outputs", [1, 2])
def test_regressor_predictions(backend, loss, outputs):
    """Trained on each backend (coefs_ are host arrays: the export is the same code)."""
    from nnx.sklearn import MLPRegressor

    X, y = _digits()
    Y = np.stack([y / 9.0, (y % 3) / 2.0], axis=1)[:, :outputs]
    reg = MLPRegressor(loss, hidden_layer_sizes=(20, 12), activation="relu", max_iter=5,
                       random_state=0, backend=backend.name).fit(X[:300], Y[:300].squeeze())
    (pred,) = _session(nnx.export_onnx(reg)).run(None, {"X": X})
    assert pred.shape == reg.predict(X).shape == ((len(X),) if outputs == 1 else (len(X), 2))
    np.testing.assert_allclose(pred, reg.predict(X), **_tolerance("float64"))


@short_fit
def test_scikit_learns_own_estimators_export_too():
    neural_network = pytest.importorskip("sklearn.neural_network")
    X, y = _digits()
    clf = neural_network.MLPClassifier((16,), max_iter=20, random_state=0).fit(X, y)
    label, proba = _session(nnx.export_onnx(clf)).run(["label", "probabilities"], {"X": X})
    np.testing.assert_allclose(proba, clf.predict_proba(X), rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(label, clf.predict(X))


def test_an_unfitted_estimator_is_refused():
    from nnx.sklearn import MLPRegressor

    with pytest.raises(ValueError, match="not fitted yet"):
        nnx.export_onnx(MLPRegressor())
