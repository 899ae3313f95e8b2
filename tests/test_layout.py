"""The tree is the architecture: the core at the top of nnx, the tools above it, no cycles.

The core is every module at the top level of ``src/nnx`` (the chapter made executable,
the training loop and model files) except the package's ``__init__`` and the ``cli``;
the tools are the subpackages ``benchmark``, ``distributed``, ``sklearn``, ``demos`` and
the ``cli``. Imports run tools → core → backends. These tests read the sources (every
import, including those inside functions) and import every module in a fresh
interpreter of its own.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "nnx"
BACKENDS = ROOT / "backends"
TOOLS = ("nnx.benchmark", "nnx.distributed", "nnx.sklearn", "nnx.export", "nnx.demos", "nnx.cli")
MAX_LINES = 300
#: the third-party library an optional module needs; importing it alone may fail without it.
OPTIONAL = {"nnx.backends.cupy": "cupy", "nnx.backends.torch": "torch",
            "nnx.backends.torch_reference": "torch", "nnx.backends.jax": "jax",
            "nnx.backends.array_api_strict": "array_api_strict"}


def _modules() -> dict[str, Path]:
    """Every module of the installed package ``nnx`` → its source file."""
    found = {}
    for base, package in ((SRC, "nnx"), (BACKENDS, "nnx.backends")):
        for path in sorted(base.rglob("*.py")):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([package, *parts])] = path
    return found


MODULES = _modules()
CORE = sorted(m for m in MODULES if m.count(".") == 1 and m != "nnx.cli"
              and not m.startswith("nnx.backends") and not (SRC / m[4:] / "__init__.py").exists())


def _is_package(name: str) -> bool:
    return MODULES.get(name, Path()).name == "__init__.py"


def _imports(name: str) -> set[str]:
    """The nnx modules that module ``name`` imports anywhere in its source."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    package = name if _is_package(name) else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "nnx"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if target.split(".")[0] != "nnx":
                continue
            for alias in node.names:  # `from pkg import submodule` imports the submodule
                sub = f"{target}.{alias.name}"
                out.add(sub if sub in MODULES else target)
    return {m for m in out if m in MODULES and m != name}


GRAPH = {name: _imports(name) for name in MODULES}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_layout_has_what_the_readme_promises():
    assert {"nnx.layers", "nnx.activations", "nnx.activation_layers", "nnx.losses", "nnx.init",
            "nnx.sequential", "nnx.perceptron", "nnx.gradcheck", "nnx.optim", "nnx.training",
            "nnx.io", "nnx.backend"} <= set(CORE)
    for tool in TOOLS[:-1]:
        assert _is_package(tool), f"{tool} should be a subpackage"
    # the chapter's modules, the training machinery and the precision policy: a reader
    # should take in the top level at a glance (subpackages hold the tools)
    assert len(CORE) <= 28, CORE


def test_the_graph_reader_sees_known_edges():
    # a check of the checker: a lazy import inside a function, a relative import two levels
    # up, and `from . import submodule` all count as edges
    assert "nnx.training" in GRAPH["nnx.sequential"]
    assert "nnx.trainer" in GRAPH["nnx.sklearn._stochastic"]
    assert "nnx.backends.torch_reference" in GRAPH["nnx.benchmark.cases"]
    assert "nnx.distributed.failsafe" in GRAPH["nnx.distributed.mpi"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("module", CORE)
def test_core_module_imports_no_tool(module):
    tools = sorted(m for m in GRAPH[module] if m.startswith(TOOLS))
    assert not tools, f"{module} (core) imports {tools}; tools import the core, never back"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("nnx.backends")))
def test_backends_import_nothing_of_the_core(module):
    above = sorted(m for m in GRAPH[module] if not m.startswith("nnx.backends"))
    assert not above, f"{module} imports {above}; the backends sit beside the core, below it"


def test_no_import_cycles():
    assert _cycles(GRAPH) == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_size(module):
    """≤ 300 lines, or the module's docstring says in one line why it is longer."""
    path = MODULES[module]
    lines = path.read_text(encoding="utf-8").count("\n")
    if lines > MAX_LINES:
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        assert "Longer than 300 lines:" in doc, (
            f"{path.relative_to(ROOT)} has {lines} lines; split it or give a one-line reason "
            "in its docstring ('Longer than 300 lines: ...')")


def test_every_module_imports_alone_in_a_fresh_interpreter():
    """One interpreter per module, all started at once; each imports only that module."""
    env = {**os.environ, "PYTHONWARNINGS": "error::DeprecationWarning:nnx"}
    names = sorted(m for m in MODULES if not m.endswith("__main__"))
    procs = {m: subprocess.Popen([sys.executable, "-c", f"import {m}"], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for m in names}
    failed = {}
    for m, p in procs.items():
        out, _ = p.communicate(timeout=120)
        if p.returncode == 0:
            continue
        lib = OPTIONAL.get(m)
        if lib is not None and f"No module named '{lib}" in out:
            continue  # its library is not installed here: failing to import is right
        failed[m] = out.strip().splitlines()[-1] if out.strip() else f"exit {p.returncode}"
    assert not failed, failed
    assert len(names) > 50


def test_python_dash_m_nnx_benchmark_runs():
    out = subprocess.run([sys.executable, "-m", "nnx.benchmark", "--help"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "matrix-product floor" in out.stdout and "--quick" in out.stdout


def test_public_paths_keep_working():
    import pickle

    import nnx
    import nnx.benchmark
    import nnx.training
    from nnx.distributed import data_parallel, is_root

    assert nnx.distributed.data_parallel is data_parallel and is_root() in (True, False)
    assert callable(nnx.benchmark.main) and callable(nnx.benchmark.run)
    assert issubclass(nnx.training.TrainingDivergedError, FloatingPointError)
    assert nnx.training.Trainer.__name__ == "Trainer"
    pytest.importorskip("sklearn")
    from nnx.sklearn import MLPClassifier, MLPRegressor

    for cls in (MLPClassifier, MLPRegressor):
        assert b"nnx.sklearn\x94" in pickle.dumps(cls(), protocol=4)  # the public path


def test_the_core_reaches_the_tools_only_through_registered_hooks(monkeypatch):
    import numpy as np

    import nnx
    from nnx import extensions

    assert extensions._resolve_data_parallel is nnx.distributed.resolve
    assert [p for _, p in extensions._predictors] == [nnx.distributed.dask_predict.predict]
    monkeypatch.setattr(extensions, "_resolve_data_parallel", None)   # as if never imported
    monkeypatch.setattr(extensions, "_predictors", [])
    X = np.zeros((4, 2), dtype=np.float32)
    y = np.zeros((4, 1), dtype=np.float32)
    model = nnx.MLP([2, 3, 1], seed=0)
    assert model.fit(X, y, loss="mse", optimizer="sgd", epochs=1, progress=False).epochs == 1
    assert model.predict(X).shape == (4, 1)
    with pytest.raises(RuntimeError, match="needs nnx.distributed"):
        model.fit(X, y, loss="mse", optimizer="sgd", epochs=1, distributed=True)
