"""Backend selection, the registry's errors, conversions and seeded draws."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

import nnx
from nnx import backends as registry


def test_available_lists_known_names_numpy_first():
    names = nnx.available_backends()
    assert names[0] == "numpy"
    assert set(names) <= set(registry.NAMES)
    assert "array_api_strict" in names  # installed by the test extra


def test_default_backend_is_numpy():
    code = "import nnx; print(nnx.get_backend().name)"
    env = {k: v for k, v in os.environ.items() if k != "NNX_BACKEND"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "numpy"


def test_env_variable_picks_default():
    code = "import nnx; print(nnx.get_backend().name)"
    env = {**os.environ, "NNX_BACKEND": "array_api_strict"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "array_api_strict"


def test_env_variable_unknown_warns_once_and_falls_back_to_numpy():
    code = "import nnx, nnx.backend, nnx.cli; print(nnx.get_backend().name)"
    env = {**os.environ, "NNX_BACKEND": "tensorflow"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "numpy"
    assert out.stderr.count("RuntimeWarning") == 1, out.stderr
    assert "NNX_BACKEND='tensorflow'" in out.stderr
    assert "set NNX_BACKEND to one of numpy" in out.stderr and "unset it" in out.stderr


def test_cli_help_runs_with_an_unknown_env_backend():
    env = {**os.environ, "NNX_BACKEND": "bogus"}
    out = subprocess.run([sys.executable, "-m", "nnx.cli", "--help"], env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage: nnx")
    assert "NNX_BACKEND='bogus'" in out.stderr


def test_available_backends_imports_no_library():
    code = ("import sys, nnx; names = nnx.available_backends(); "
            "print(','.join(names)); "
            "print(','.join(m for m in ('torch', 'jax', 'array_api_strict', 'cupy') "
            "if m in sys.modules))")
    env = {k: v for k, v in os.environ.items() if k != "NNX_BACKEND"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    listed, imported = out.stdout.splitlines()
    assert listed.split(",")[0] == "numpy"
    assert imported == ""  # cupy alone would be imported, and only where it is installed


def test_listed_backends_load(backend):
    assert backend.name in nnx.available_backends()
    assert registry.load(backend.name).name == backend.name


def test_installed_library_that_fails_to_import_says_why(tmp_path):
    fake = tmp_path / "jax"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('this jax is broken on purpose')\n")
    code = ("import nnx\nassert 'jax' in nnx.available_backends()\n"
            "try:\n    nnx.set_backend('jax')\nexcept ValueError as exc:\n    print(exc)\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    env.pop("NNX_BACKEND", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "installed but failed to import" in out.stdout
    assert "this jax is broken on purpose" in out.stdout
    assert "pip install 'nnx-fundamentals[jax]'" in out.stdout


def test_missing_library_names_the_extra(monkeypatch):
    monkeypatch.setitem(registry.LIBRARY, "jax", "nnx_no_such_module")
    monkeypatch.setattr(registry, "_cache", {})
    reason = registry.why_unavailable("jax")
    assert reason is not None and "not installed" in reason
    assert "pip install 'nnx-fundamentals[jax]'" in reason
    assert "pip install -e '.[jax]'" in reason
    assert "jax" not in nnx.available_backends()
    with pytest.raises(ValueError, match="nnx-fundamentals"):
        nnx.set_backend("jax")


def test_get_backend_has_name_xp_device(backend):
    b = nnx.get_backend()
    assert b.name == backend.name
    x = b.xp.ones((2, 3), dtype=b.xp.float32, device=b.device)
    assert b.owns(x)
    assert tuple(x.shape) == (2, 3)


def test_set_backend_switches_and_returns():
    before = nnx.get_backend()
    try:
        b = nnx.set_backend("array_api_strict")
        assert nnx.get_backend() is b and b.name == "array_api_strict"
        assert nnx.Dense(2, 3, seed=0).backend.name == "array_api_strict"
    finally:
        nnx.set_backend(before)
    assert nnx.get_backend() is before


def test_use_backend_restores_on_exception():
    before = nnx.get_backend()
    with pytest.raises(RuntimeError, match="boom"):
        with nnx.use_backend("array_api_strict"):
            assert nnx.get_backend().name == "array_api_strict"
            raise RuntimeError("boom")
    assert nnx.get_backend() is before


def test_unknown_backend_lists_usable_ones():
    with pytest.raises(ValueError) as info:
        nnx.set_backend("tensorflow")
    message = str(info.value)
    assert "tensorflow" in message
    for name in nnx.available_backends():
        assert name in message


def test_unavailable_backend_names_pip_extra():
    reason = registry.why_unavailable("cupy")
    if reason is None:
        pytest.skip("cupy runs here: a CUDA device answered")
    with pytest.raises(ValueError) as info:
        nnx.set_backend("cupy")
    message = str(info.value)
    # either the library is missing (pip hint) or no CUDA device answered: never a traceback
    assert "nnx-fundamentals[cupy]" in message or "CUDA device" in message
    assert "numpy" in message


def test_backend_argument_type_error():
    with pytest.raises(TypeError, match="backend must be a name"):
        nnx.set_backend(3)


def test_same_seed_same_bits_on_every_backend():
    draws = {}
    for name in nnx.available_backends():
        b = registry.load(name)
        draws[name] = (nnx.to_numpy(b.normal((5, 7), seed=42, dtype="float32")),
                       nnx.to_numpy(nnx.Dense(7, 5, seed=3, backend=name).W))
    ref_normal, ref_w = draws["numpy"]
    for name, (normal, w) in draws.items():
        assert normal.dtype == np.float32
        np.testing.assert_array_equal(normal, ref_normal, err_msg=name)
        np.testing.assert_array_equal(w, ref_w, err_msg=name)


def test_host_round_trip(backend):
    a = np.arange(12, dtype=np.float64).reshape(3, 4)
    x = backend.from_numpy(a)
    assert backend.owns(x)
    back = backend.to_numpy(x)
    np.testing.assert_array_equal(back, a)
    back[0, 0] = 99.0  # a copy: the device array is untouched
    assert float(backend.to_numpy(x)[0, 0]) == 0.0


def test_erf_matches_math(backend):
    import math

    z = np.linspace(-4, 4, 33)
    got = backend.to_numpy(backend.erf(backend.from_numpy(z)))
    np.testing.assert_allclose(got, [math.erf(v) for v in z], rtol=1e-12, atol=1e-15)


def test_synchronize_waits_for_the_arrays_then_the_device(backend):
    """``synchronize(*arrays)`` hands the arrays to the adapter's ``wait`` (where it has one)
    and then blocks on the device; with no arrays, or no ``wait``, only on the device."""
    calls = []
    spy = SimpleNamespace(wait=lambda arrays: calls.append(("wait", arrays)),
                          synchronize=lambda device: calls.append(("device", device)))
    b = dataclasses.replace(backend, adapter=spy, ops=backend.ops)
    x = b.xp.ones((2, 2), device=b.device)
    assert b.synchronize(x) is None
    assert [c[0] for c in calls] == ["wait", "device"]
    assert len(calls[0][1]) == 1 and calls[0][1][0] is x and calls[1][1] is backend.device
    calls.clear()
    b.synchronize()
    assert [c[0] for c in calls] == ["device"]
    calls.clear()
    dataclasses.replace(backend, adapter=SimpleNamespace(synchronize=spy.synchronize),
                        ops=backend.ops).synchronize(x)
    assert [c[0] for c in calls] == ["device"]
    # the real adapter: an asynchronous result (JAX) is computed once synchronize returns
    y = backend.xp.ones((256, 256), device=backend.device)
    y = y @ y
    backend.synchronize(y)
    if hasattr(y, "is_ready"):
        assert y.is_ready()
    assert float(backend.to_numpy(y)[0, 0]) == 256.0


def test_mixing_backends_is_a_clear_error():
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match="different backends"):
        nnx.losses.mse(torch.zeros(3), np.zeros(3))
    layer = nnx.Dense(3, 2, seed=0, backend="numpy")
    with pytest.raises(ValueError, match="torch array.*numpy"):
        layer.forward(torch.zeros((4, 3)))


def test_asarray_converts_across_backends_on_purpose():
    src = nnx.asarray([[1.0, 2.0]], backend="numpy", dtype="float32")
    for name in nnx.available_backends():
        x = nnx.asarray(src, backend=name)
        assert registry.load(name).owns(x)
        np.testing.assert_array_equal(nnx.to_numpy(x), [[1.0, 2.0]])


def test_backend_of_array(backend):
    x = backend.xp.zeros(3, device=backend.device)
    assert registry.backend_of(x).name == backend.name
