"""The documentation site (mkdocs.yml, docs/): complete, buildable, and its code runs.

* every name in the ``__all__`` of a public package is rendered by an API page
  (a ``::: package.name`` line under docs/api/), so a new public name cannot be
  forgotten;
* ``mkdocs build --strict`` succeeds (a broken link, a reference to a name that does
  not exist or a docstring Griffe cannot parse fails it) and the built reference has
  an entry for each of those names;
* the Python blocks of the guide pages run and print what the pages say they print.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
API = DOCS / "api"
PUBLIC = ("nnx", "nnx.sklearn", "nnx.distributed", "nnx.benchmark")
#: where a new name of each package belongs, for the failure message.
HOME = {
    "nnx": "the page of docs/api/ that fits it (backends, layers, models, functions, "
           "training, files; see docs/api/index.md)",
    "nnx.sklearn": "docs/api/sklearn.md",
    "nnx.distributed": "docs/api/distributed.md",
    "nnx.benchmark": "docs/api/benchmark.md",
}
DIRECTIVE = re.compile(r"^::: *([\w.]+) *$", re.MULTILINE)
DOCS_TOOLS = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python")


def public_names() -> list[str]:
    names = []
    for package in PUBLIC:
        module = importlib.import_module(package)
        names += [f"{package}.{name}" for name in module.__all__]
    return names


def rendered_names() -> dict[str, Path]:
    """Each ``::: identifier`` of the API pages, with its page."""
    found = {}
    for page in sorted(API.glob("*.md")):
        for identifier in DIRECTIVE.findall(page.read_text(encoding="utf-8")):
            found.setdefault(identifier, page)
    return found


def test_every_public_name_has_an_api_entry():
    rendered = rendered_names()
    missing = [name for name in public_names() if name not in rendered]
    lines = [
        f"  {name} is in {name.rpartition('.')[0]}.__all__ but no API page renders it: "
        f"add the line '::: {name}' to {HOME[name.rpartition('.')[0]]}"
        for name in missing
    ]
    assert not missing, "the API reference misses public names:\n" + "\n".join(lines)


def test_api_pages_render_only_public_names():
    """A page entry for a name that is not public (or no longer exists) is caught here
    with a clear message, before mkdocs reports it."""
    public = set(public_names()) | set(PUBLIC)
    stray = {name: page.name for name, page in rendered_names().items() if name not in public}
    assert not stray, (
        f"API pages render names outside the public packages' __all__: {stray}; remove "
        "the entry or add the name to its package's __all__"
    )


def _docs_tools_missing() -> str | None:
    for name in DOCS_TOOLS:
        try:
            if importlib.util.find_spec(name) is None:
                return name
        except ModuleNotFoundError:
            return name
    return None


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    missing = _docs_tools_missing()
    if missing:
        pytest.skip(f"{missing} is not installed: the docs extra is missing "
                    "(python -m pip install '.[docs]')")
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    run = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
         str(ROOT / "mkdocs.yml"), "--site-dir", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )
    assert run.returncode == 0, f"mkdocs build --strict failed:\n{run.stdout}\n{run.stderr}"
    return out


def test_site_builds_strictly_with_an_entry_for_every_public_name(site):
    html = "\n".join(p.read_text(encoding="utf-8") for p in (site / "api").rglob("*.html"))
    missing = [name for name in public_names() if f'id="{name}"' not in html]
    assert not missing, f"the built API reference has no entry for: {missing}"
    for page in ("index", "getting-started", "chapter", "backends", "training", "sklearn",
                 "model-files", "scaling-out", "benchmarks"):
        built = site / ("index.html" if page == "index" else f"{page}/index.html")
        assert built.is_file(), f"{page}.md was not built"


def test_site_shows_the_demo_pictures_and_benchmark_figures(site):
    chapter = (site / "chapter" / "index.html").read_text(encoding="utf-8")
    for picture in sorted((DOCS / "img").glob("*.png")):
        assert f"img/{picture.name}" in chapter, f"the chapter page does not show {picture.name}"
        assert (site / "img" / picture.name).is_file()
    for figure in ("cpu.png", "gpu.png"):
        assert (site / "bench" / "results" / figure).is_file()


# -- the pages' code ------------------------------------------------------------------

FENCE = re.compile(r"^```(\S*)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
OUTPUT = re.compile(r"#\s*prints:\s*(.*)$", re.MULTILINE)


def python_blocks(page: str) -> list[str]:
    """The page's ```python blocks, in order (``{.python .no-run}`` blocks excluded:
    those need mpiexec, a cluster or files the reader has)."""
    text = (DOCS / page).read_text(encoding="utf-8")
    return [code for lang, code in FENCE.findall(text) if lang == "python"]


GUIDES = sorted(p.name for p in DOCS.glob("*.md") if python_blocks(p.name))


@pytest.mark.parametrize("page", GUIDES)
def test_guide_code_runs_and_prints_what_the_page_says(page, tmp_path, monkeypatch):
    """Each page's Python blocks run in order in one namespace, in a fresh folder, on
    NumPy. A block's ``# prints: TEXT`` comment is checked against its printed lines."""
    blocks = python_blocks(page)
    code = "\n".join(line.split("#")[0] for b in blocks for line in b.splitlines())
    for module in ("sklearn", "matplotlib", "dask", "torch", "jax"):
        if any(used in code for used in (f"import {module}", f"from {module}",
                                         f"nnx.{module}", f'backend="{module}"')) \
                and importlib.util.find_spec(module) is None:
            pytest.skip(f"{page} needs {module}, which is not installed")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__main__"}
    import nnx
    with nnx.use_backend("numpy"):
        for i, code in enumerate(blocks):
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(compile(code, f"{page}[block {i}]", "exec"), namespace)  # noqa: S102
            expected = OUTPUT.findall(code)
            printed = out.getvalue().splitlines()
            assert [line.strip() for line in printed[len(printed) - len(expected):]] == \
                [line.strip() for line in expected], (
                    f"{page} block {i} printed {printed}, the page says {expected}")
