"""model.summary(): counts against closed forms and PyTorch's numel, bytes against itemsize."""

from __future__ import annotations

import pytest

import nnx
from nnx.summary import summarize

SIZES = [64, 256, 128, 10]


def _closed_form(sizes, bias=True):
    return [i * o + (o if bias else 0) for i, o in zip(sizes, sizes[1:])]


def test_counts_follow_the_closed_form(backend):
    s = summarize(nnx.MLP(SIZES, seed=0))
    dense = [r.params for r in s.rows if r.kind == "Dense"]
    assert dense == _closed_form(SIZES) == [16640, 32896, 1290]
    assert [r.params for r in s.rows if r.kind == "ReLU"] == [0, 0]
    assert s.total_params == s.trainable_params == sum(_closed_form(SIZES)) == 50826
    assert s.param_bytes == s.grad_bytes == 4 * 50826
    assert s.backend == backend.name


def test_counts_equal_pytorch_numel():
    torch = pytest.importorskip("torch")
    sizes = [7, 13, 5, 3]
    net = torch.nn.Sequential(torch.nn.Linear(7, 13), torch.nn.Tanh(),
                              torch.nn.Linear(13, 5, bias=False), torch.nn.ReLU(),
                              torch.nn.Linear(5, 3), torch.nn.Sigmoid()).double()
    ours = nnx.Sequential(nnx.Dense(7, 13, dtype="float64"), nnx.Tanh(),
                          nnx.Dense(13, 5, bias=False, dtype="float64"), nnx.ReLU(),
                          nnx.Dense(5, 3, dtype="float64"), nnx.Sigmoid())
    s = summarize(ours)
    theirs = [sum(p.numel() for p in m.parameters()) for m in net]
    assert [r.params for r in s.rows] == theirs == [104, 0, 65, 0, 18, 0]
    assert s.total_params == sum(p.numel() for p in net.parameters())
    assert s.param_bytes == sum(p.numel() * p.element_size() for p in net.parameters())
    assert [r.bytes for r in s.rows] == [8 * n for n in theirs]
    assert _closed_form(sizes[:2]) == [104]
    assert [r.output_shape for r in s.rows] == [(None, 13)] * 2 + [(None, 5)] * 2 + [
        (None, 3)] * 2


def test_optimizer_state_memory():
    model = nnx.MLP([3, 4, 2], dtype="float64", seed=0)
    n = 3 * 4 + 4 + 4 * 2 + 2
    assert summarize(model).state_bytes == 0
    assert summarize(model).optimizer is None
    cases = {"adam": 2, "sgd": 0, nnx.optim.SGD(lr=0.1, momentum=0.9): 1,
             nnx.optim.Adam(lr=1e-2): 2, nnx.optim.SGD(lr=0.1): 0}
    for opt, slots in cases.items():
        s = summarize(model, optimizer=opt)
        assert (s.optimizer_slots, s.state_bytes) == (slots, slots * 8 * n)
        assert s.total_bytes == (2 + slots) * 8 * n
        assert f"{s.optimizer} state:" in str(s)
    assert "state:" not in str(summarize(model))


def test_shapes_with_and_without_a_batch_size():
    model = nnx.MLP(SIZES, seed=0)
    assert summarize(model).input_shape == (None, 64)
    s = summarize(model, batch_size=32)
    assert s.input_shape == (32, 64)
    assert [r.output_shape for r in s.rows] == [(32, 256), (32, 256), (32, 128), (32, 128),
                                                (32, 10)]
    assert "(32, 256)" in str(s) and "None" not in str(s)
    with pytest.raises(ValueError, match="batch_size"):
        summarize(model, batch_size=0)


def test_the_table():
    s = summarize(nnx.MLP([2, 3, 1], activation="tanh", seed=0, backend="numpy"),
                  optimizer="adam")
    assert str(s) == """\
MLP [2, 3, 1] (numpy on cpu, float32); input (None, 2)
--------------------------------------------
#  Layer         Output shape  Params  Bytes
--------------------------------------------
0  Dense(2 → 3)  (None, 3)          9     36
1  Tanh          (None, 3)          0      0
2  Dense(3 → 1)  (None, 1)          4     16
--------------------------------------------
Total params:  13 (52 B), all trainable
Gradients:     52 B
Adam state:    104 B (2 buffers per parameter)
Total memory:  208 B"""
    assert repr(s) == "<Summary of MLP [2, 3, 1]: 3 layers, 13 parameters, 208 B>"


def test_the_method_prints_and_returns(capsys):
    model = nnx.MLP([2, 3, 1], seed=0)
    out = model.summary()
    assert capsys.readouterr().out == str(out) + "\n"
    lines = []
    assert str(model.summary(print_fn=lines.append)) == lines[0]
    assert model.summary(print_fn=None).total_params == 13
    assert capsys.readouterr().out == ""


def test_nested_mixed_dtypes_and_custom_layers():
    inner = nnx.Sequential(nnx.Dense(3, 2, dtype="float64"), nnx.LeakyReLU(alpha=0.2))
    s = summarize(nnx.Sequential(nnx.Dense(4, 3, bias=False), nnx.GELU(), inner))
    assert [r.index for r in s.rows] == ["0", "1", "2.0", "2.1"]
    assert [r.bytes for r in s.rows] == [4 * 12, 0, 8 * 8, 0]
    assert s.dtypes == ["float32", "float64"]
    assert "Dense(4 → 3, no bias)" in str(s) and "LeakyReLU(alpha=0.2)" in str(s)

    class Doubler(nnx.Layer):
        def forward(self, x):
            return x * 2

    s = summarize(nnx.Sequential(nnx.Dense(2, 3), Doubler(), nnx.ReLU(), nnx.Dense(3, 1)))
    assert [r.output_shape for r in s.rows] == [(None, 3), None, None, (None, 1)]


def test_perceptron_and_bad_models():
    s = summarize(nnx.Perceptron(5))
    assert (s.total_params, s.param_bytes, s.grad_bytes) == (6, 24, 0)
    with pytest.raises(TypeError, match="Sequential, MLP or Perceptron"):
        summarize(object())
    with pytest.raises(ValueError, match="unknown optimizer"):
        summarize(nnx.MLP([2, 1]), optimizer="rmsprop")
