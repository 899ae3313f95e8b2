"""Every demo runs headless at its small size through the CLI entry point, writes its PNG,
and prints numbers that agree with closed forms."""

from __future__ import annotations

import math
import re
import sys
import types

import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("sklearn")

from nnx import cli  # noqa: E402
from nnx.demos import DEMOS  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def sigmoid(z):
    return 1.0 / (1.0 + math.exp(-z))


def run_demo(name, tmp_path, capsys, *extra):
    code = cli.main(["demo", name, "--quick", "--out", str(tmp_path), *extra])
    out = capsys.readouterr().out
    assert code == 0, out
    png = tmp_path / f"{name}.png"
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    assert png.stat().st_size > 10_000           # a real figure, not an empty canvas
    assert f"wrote {png}" in out
    return out


def number(pattern, text):
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not found in:\n{text}"
    return float(match.group(1))


def test_every_demo_is_tested():
    tested = {name[len("test_demo_"):] for name in globals() if name.startswith("test_demo_")}
    assert set(DEMOS) <= tested


def test_demo_perceptron(tmp_path, capsys):
    out = run_demo("perceptron", tmp_path, capsys)
    assert re.search(r"AND: converged after \d+ epochs", out)
    assert re.search(r"OR : converged after \d+ epochs", out)
    assert "XOR: did NOT converge after 10 epochs" in out
    assert "predictions [0, 0, 0, 1] (targets [0, 0, 0, 1])" in out


def test_demo_xor(tmp_path, capsys):
    out = run_demo("xor", tmp_path, capsys)
    # No line separates XOR: the best single sigmoid unit is p = 0.5 everywhere, loss ln 2.
    single = number(r"single layer \(no hidden layer\)\s+loss ([\d.]+)", out)
    assert single == pytest.approx(math.log(2), abs=2e-3)
    assert re.search(r"single layer .*accuracy (50|75)%", out)
    assert re.search(r"2 layers .*accuracy 100%", out)
    assert number(r"2 layers \(4 tanh hidden units\)\s+loss ([\d.]+)", out) < 0.05


def test_demo_activations(tmp_path, capsys):
    out = run_demo("activations", tmp_path, capsys)
    rows = {}
    row = re.compile(r"(\w[\w ()=.α]*?)\s+(-?[\d.]+)\s+(-?[\d.]+)\s+\[.*\]"
                     r"\s+([\d.]+)\s+([\d.e+-]+)$")
    for line in out.splitlines():
        m = row.match(line)
        if m:
            rows[m.group(1).split(" (")[0]] = [float(v) for v in m.group(2, 3, 4, 5)]
    # f(0), f'(0) and max f' in closed form: σ(0) = ½, σ'(0) = ¼; tanh'(0) = 1; GELU'(0) = Φ(0).
    # The quick grid is 80 points on [-5, 5]; it straddles 0, nearest at ±5/79.
    grid = [-5 + 10 * i / 79 for i in range(80)]
    max_sigma = max(sigmoid(z) * (1 - sigmoid(z)) for z in grid)
    max_tanh = max(1 - math.tanh(z) ** 2 for z in grid)
    assert rows["sigmoid"][:3] == pytest.approx([0.5, 0.25, max_sigma], abs=1e-4)
    assert rows["tanh"][:3] == pytest.approx([0.0, 1.0, max_tanh], abs=1e-4)
    assert rows["GELU"][:2] == pytest.approx([0.0, 0.5], abs=1e-4)
    assert rows["leaky ReLU"][1] == pytest.approx(0.1)
    assert rows["step"][1:3] == [0.0, 0.0]
    assert all(r[3] < 1e-6 for r in rows.values())          # backprop f' = finite differences
    assert len(rows) == 7
    probs = [math.exp(v) for v in (2.0, 1.0, 0.1, -1.0)]
    expected = [round(p / sum(probs), 4) for p in probs]
    assert f"softmax([2, 1, 0.1, -1]) = {expected}" in out


def test_demo_activations_on_array_api_strict(tmp_path, capsys):
    out = run_demo("activations", tmp_path, capsys, "--backend", "array_api_strict")
    assert "backend: array_api_strict" in out


def test_demo_backprop(tmp_path, capsys):
    out = run_demo("backprop", tmp_path, capsys)
    a = sigmoid(6.0)
    assert number(r"z = w x\s+= ([\d.e+-]+)", out) == 6.0
    assert number(r"a = σ\(z\)\s+= ([\d.e+-]+)", out) == pytest.approx(a, rel=1e-11)
    assert number(r"L = ½\(a − y\)²\s+= ([\d.e+-]+)", out) == pytest.approx(
        0.5 * (a - 1) ** 2, rel=1e-6)
    assert number(r"dL/da = a − y\s+= ([\d.e+-]+)", out) == pytest.approx(a - 1, rel=1e-9)
    assert number(r"da/dz = a\(1 − a\)\s+= ([\d.e+-]+)", out) == pytest.approx(a * (1 - a),
                                                                             rel=1e-9)
    grad = (a - 1) * a * (1 - a) * 2.0                    # the chapter's chain rule
    assert number(r"dL/dw \(nnx backprop\) = ([\d.e+-]+)", out) == pytest.approx(grad, rel=1e-9)
    assert number(r"dL/dw \(finite diff\.\) = ([\d.e+-]+)", out) == pytest.approx(grad, rel=1e-5)
    assert grad == pytest.approx(-1.2197e-5, rel=1e-4)    # the chapter's "≈ −1.24e−5", unrounded
    chain = [(int(d), float(g), float(p)) for d, g, p in re.findall(
        r"depth\s+(\d+): \|dL/dw1\| = ([\d.e+-]+)\s+Π σ'\(z\) = ([\d.e+-]+)", out)]
    assert [d for d, _, _ in chain] == [1, 2, 3, 4, 5]
    assert all(p <= 0.25 ** d for d, _, p in chain)       # σ' ≤ ¼ at every layer
    assert chain[0][1] == pytest.approx(abs(grad), rel=1e-3)
    grads = [g for _, g, _ in chain[1:]]
    assert all(b < a / 2 for a, b in zip(grads, grads[1:]))  # vanishing with depth
    first_last = {act: number(act + r"\s.*\(first/last = ([\d.e+-]+)\)", out)
                  for act in ("sigmoid", "relu")}
    assert first_last["sigmoid"] < 1e-2 < first_last["relu"]


def test_demo_init(tmp_path, capsys):
    out = run_demo("init", tmp_path, capsys)
    rows = {f"{act}+{init}": [float(v) for v in values.split()] for act, init, values in
            re.findall(r"(tanh|relu)\s+\+ (zeros|Xavier|He)\s*: ([\d.e+\- ]+)", out)}
    assert len(rows) == 6
    assert rows["tanh+zeros"] == rows["relu+zeros"] == [0.0] * 4      # W = 0 → a = f(0) = 0
    # ReLU + Xavier (Var w = 1/n here) keeps half the second moment per layer: ~2^-19 by 20.
    assert rows["relu+Xavier"][3] < 1e-3 * rows["relu+Xavier"][0]
    assert 0.2 < rows["relu+He"][3] < 5.0                  # He keeps it of order one
    assert rows["tanh+He"][3] > rows["tanh+Xavier"][3] > 1e-3


def test_demo_uat(tmp_path, capsys):
    out = run_demo("uat", tmp_path, capsys)
    mse = {int(w): float(e) for w, e in re.findall(r"width\s+(\d+): mse ([\d.e+-]+)", out)}
    assert list(mse) == [1, 4, 16]
    assert mse[1] > mse[4] > mse[16]
    assert mse[16] < mse[1] / 10


def test_demo_digits(tmp_path, capsys):
    out = run_demo("digits", tmp_path, capsys)
    assert number(r"test accuracy: ([\d.]+)%", out) > 80.0   # the quick run: 8 epochs, 32 units
    assert "reloaded, it predicts the same" in out
    assert (tmp_path / "digits.safetensors").exists()
    rows = re.findall(r"^\s+\d: ((?:\s*\d+){10})$", out, flags=re.M)
    assert len(rows) == 10 and sum(sum(map(int, r.split())) for r in rows) == 450


# -- the command line itself -------------------------------------------------------------------
def test_unknown_demo_lists_the_valid_ones(tmp_path, capsys):
    assert cli.main(["demo", "mnist", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown demo 'mnist'" in err
    for name in DEMOS:
        assert name in err
    assert list(tmp_path.iterdir()) == []


def test_list_and_help(capsys):
    assert cli.main(["demo", "list"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in DEMOS)
    assert cli.main(["--help"]) == 0
    assert "demo" in capsys.readouterr().out
    assert cli.main([]) == 2
    assert cli.main(["demo", "xor", "--backend", "nonesuch"]) == 2
    assert "nonesuch" in capsys.readouterr().err


def test_bench_delegates_to_nnx_benchmark(monkeypatch):
    seen = []
    fake = types.ModuleType("nnx.benchmark")
    fake.main = lambda argv: seen.append(argv) or 0
    monkeypatch.setitem(sys.modules, "nnx.benchmark", fake)
    import nnx

    monkeypatch.setattr(nnx, "benchmark", fake, raising=False)
    assert cli.main(["bench", "--sizes", "64", "--help"]) == 0
    assert seen == [["--sizes", "64", "--help"]]


def test_bench_without_the_module_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "nnx.benchmark", None)   # makes the import fail
    import nnx

    monkeypatch.delattr(nnx, "benchmark", raising=False)
    assert cli.main(["bench"]) == 1
    assert "nnx.benchmark is not available" in capsys.readouterr().err


def test_missing_matplotlib_names_the_extra(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    assert cli.main(["demo", "activations", "--quick", "--out", str(tmp_path)]) == 1
    assert "pip install 'nnx-fundamentals[demo]'" in capsys.readouterr().err
